"""Polls close on time with the result posted once; a reminder goes to non-voters only, 24 hours
before the close; owners of overdue questions get a nudge in their own morning."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from adapters.bootstrap import App, build
from bot.clock import FakeClock
from storage.models import Profile
from tests.conftest import Chat, make_settings
from tests.time.helpers import Recorder, deliver, outbox_rows, runs, tick


def everyone_says_hi(chat: Chat, *people: str) -> None:
    for person in people:
        chat.ok("help", user=person)  # being seen in the channel makes one eligible


def test_reminder_24h_before_close_goes_to_non_voters_only(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    everyone_says_hi(chat, "ana", "ben", "cai")
    chat.ok('poll "Ship date or scope?" "Date" "Scope" closes:3d')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 2", user="pm")
    closes = clock.now() + timedelta(days=3)
    clock.set(closes - timedelta(hours=24, minutes=1))
    assert tick(app).reminders == 0
    clock.set(closes - timedelta(hours=24))
    assert tick(app).reminders == 1
    assert tick(app).reminders == 0
    (row,) = outbox_rows(app, kind="nudge")
    assert sorted(row.payload["data"]["nudged"]) == ["ben", "cai"]
    assert "<@ana>" not in row.payload["text"] and "<@pm>" not in row.payload["text"]
    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 1
    assert "<@ben>" in console.texts[0]


def test_anonymous_poll_reminders_go_privately_to_non_voters_only(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    everyone_says_hi(chat, "ana", "ben")
    chat.ok('poll "Secret?" "yes" "no" anonymous closes:2d')
    chat.ok("vote P-1 yes", user="ben")
    clock.advance(timedelta(days=1, hours=1))
    assert tick(app).reminders == 1
    # Privately, one message each: nothing in the channel names who has not voted.
    rows = outbox_rows(app, kind="nudge")
    assert sorted(r.payload["direct_to"] for r in rows) == ["ana", "pm"]
    assert all("<@" not in r.payload["text"] for r in rows)
    assert all("nudged" not in r.payload["data"] for r in rows)
    assert "yes" not in rows[0].payload["text"].lower().split("“")[0]
    assert tick(app).reminders == 0  # once


def test_no_reminder_when_everyone_voted_or_the_poll_is_short(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    everyone_says_hi(chat, "ana")
    chat.ok('poll "All in?" "yes" "no" closes:2d')
    chat.ok('poll "Quick?" "yes" "no" closes:12h')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 1")
    clock.advance(timedelta(hours=25))
    assert tick(app).reminders == 0
    assert [(r.period[:3], r.status) for r in runs(app, "poll-reminder")] == [("P-1", "done")]
    assert outbox_rows(app, kind="nudge") == []


def test_a_poll_closes_on_time_and_its_result_is_posted_once(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok('poll "Ship?" "yes" "no" closes:2d')
    chat.ok("vote P-1 yes", user="ana")
    clock.advance(timedelta(days=2))
    assert tick(app).closed == 1
    assert tick(app).closed == 0
    assert len(outbox_rows(app, kind="result")) == 1
    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 1
    result = console.sent[0][1].reply
    assert result.kind == "results"
    assert result.data["winner"] == "yes" and result.data["closed"] is True
    assert result.text == "P-1 closed: yes"
    assert "closed" in chat.fails("vote P-1 no", user="ben").error  # type: ignore[operator]


def test_a_typed_close_answers_with_the_result_and_queues_no_copy(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok('poll "Ship?" "yes" "no"')
    chat.ok("vote P-1 yes")
    reply = chat.ok("close P-1")
    assert reply.data["winner"] == "yes"
    assert outbox_rows(app, kind="result") == []


def test_overdue_question_owner_is_nudged_in_their_own_morning(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("digest weekly mon 09:00 tz:Europe/Berlin")  # the channel's zone
    chat.ok("ask Which regions? owner:@ben due:2026-11-26T17:00")
    chat.ok("ask Budget? owner:@cai due:2026-11-26T17:00")
    with app.db.uow() as session:
        session.add(
            Profile(workspace="local", user="ben", tz="America/New_York", fetched_at=clock.now())
        )
    # Friday 27th: 09:00 in Berlin is 08:00 UTC; 09:00 in New York is 14:00 UTC.
    clock.set(datetime(2026, 11, 27, 7, 59, tzinfo=UTC))
    assert tick(app).nudges == 0
    clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    assert tick(app).nudges == 1  # cai, in the channel's morning
    clock.set(datetime(2026, 11, 27, 13, 59, tzinfo=UTC))
    assert tick(app).nudges == 0
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    assert tick(app).nudges == 1  # ben, in his
    assert tick(app).nudges == 0
    texts = [r.payload["text"] for r in outbox_rows(app, kind="nudge")]
    assert "<@cai>" in texts[0] and "Q-2" in texts[0]
    assert "<@ben>" in texts[1] and "Q-1" in texts[1]
    chat.ok("answer Q-1 EU", user="ben")
    clock.set(datetime(2026, 11, 28, 14, 0, tzinfo=UTC))
    assert tick(app).nudges == 1  # only cai again, the next morning
    assert "<@cai>" in outbox_rows(app, kind="nudge")[-1].payload["text"]


def test_two_scheduler_processes_claim_each_digest_period_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    apps = [build(make_settings(migrated_db_url), clock=clock)]
    apps.append(build(make_settings(migrated_db_url), clock=clock, migrate=False))
    try:
        Chat(apps[0]).ok("digest weekly thu 09:00")
        for channel in ("a", "b", "c"):
            Chat(apps[0], channel=channel).ok("digest weekly thu 09:00")
        clock.set(clock.now() + timedelta(days=1))
        barrier = threading.Barrier(2)
        reports: list[int] = []

        def process(app: App) -> None:
            barrier.wait()
            reports.append(tick(app).digests)

        threads = [threading.Thread(target=process, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(reports) == 4
        digests = outbox_rows(apps[0], kind="digest")
        assert sorted(r.channel for r in digests) == ["a", "b", "c", "general"]
        assert len(runs(apps[0])) == 4
    finally:
        for app in apps:
            app.db.dispose()
