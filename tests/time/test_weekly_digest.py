"""A weekly digest goes out at its local wall-clock time, across daylight-saving changes, once per
week; missed runs are caught up once within a day and skipped (and recorded) when older."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from adapters.bootstrap import App
from bot.clock import FakeClock
from bot.schedules import next_weekly, wall_clock
from tests.conftest import Chat
from tests.time.helpers import Recorder, deliver, outbox_rows, runs, tick

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _expect_digest_exactly_at(
    app: App, clock: FakeClock, moment: datetime, console: Recorder
) -> None:
    """Nothing a minute before `moment`; one digest at it, delivered; nothing more after."""
    clock.set(moment - timedelta(minutes=1))
    assert tick(app).digests == 0
    clock.set(moment)
    assert tick(app).digests == 1
    assert deliver(app, {"console": console}) == 1
    clock.set(moment + timedelta(minutes=1))
    assert tick(app).digests == 0
    assert deliver(app, {"console": console}) == 0


def test_weekly_digest_keeps_0900_berlin_across_the_october_change(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    clock.set(utc(2026, 10, 14, 12, 0))
    reply = chat.ok("digest weekly mon 09:00 tz:Europe/Berlin")
    assert reply.data["next_run"] == "2026-10-19T07:00:00+00:00"  # 09:00 CEST
    chat.ok("decide Use Postgres")
    console = Recorder("console", clock)

    _expect_digest_exactly_at(app, clock, utc(2026, 10, 19, 7, 0), console)  # CEST, UTC+2
    # Sunday 2026-10-25 the clocks go back: the next Monday 09:00 is 08:00 UTC, not 07:00.
    _expect_digest_exactly_at(app, clock, utc(2026, 10, 26, 8, 0), console)

    local_times = [at.astimezone(BERLIN).strftime("%a %H:%M %Z") for at, _ in console.sent]
    assert local_times == ["Mon 09:00 CEST", "Mon 09:00 CET"]
    first, second = (m.reply for _, m in console.sent)
    assert first.kind == second.kind == "digest"
    assert any(c["id"] == "D-1" for c in first.data["changes"]["decisions_recorded"])
    assert second.data["quiet"] is True  # nothing changed since the first digest
    assert [r.period for r in runs(app)] == ["2026-10-19", "2026-10-26"]


def test_weekly_digest_keeps_0900_berlin_across_the_march_change(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    clock.set(utc(2027, 3, 17, 12, 0))
    chat.ok("digest weekly mon 09:00 tz:Europe/Berlin")
    console = Recorder("console", clock)
    _expect_digest_exactly_at(app, clock, utc(2027, 3, 22, 8, 0), console)  # CET, UTC+1
    # Sunday 2027-03-28 the clocks go forward: Monday 09:00 is now 07:00 UTC.
    _expect_digest_exactly_at(app, clock, utc(2027, 3, 29, 7, 0), console)
    assert [at.astimezone(BERLIN).strftime("%H:%M") for at, _ in console.sent] == [
        "09:00",
        "09:00",
    ]


def test_a_digest_on_the_day_of_the_change_and_in_the_skipped_hour() -> None:
    after = utc(2026, 10, 20)
    # Sunday 25 October 2026, 09:00 in Berlin is already CET.
    assert next_weekly(6, datetime.strptime("09:00", "%H:%M").time(), BERLIN, after) == utc(
        2026, 10, 25, 8, 0
    )
    # 02:30 does not exist on 28 March 2027 in Berlin; a wall clock shows 03:30 CEST then.
    skipped = wall_clock(datetime(2027, 3, 28).date(), datetime(1, 1, 1, 2, 30).time(), BERLIN)
    assert skipped.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_a_run_missed_by_less_than_a_day_goes_out_once_on_start(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("digest weekly mon 09:00")  # Wednesday 2026-11-25; UTC by default
    chat.ok("item SSO lane:now")
    # The process was down over Monday 09:00 and comes back six hours later.
    clock.set(utc(2026, 11, 30, 15, 0))
    assert tick(app).digests == 1
    assert tick(app).digests == 0
    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 1
    assert deliver(app, {"console": console}) == 0
    assert console.sent[0][1].reply.data["now"][0]["id"] == "I-1"
    assert [(r.period, r.status) for r in runs(app)] == [("2026-11-30", "sent")]


def test_a_run_missed_by_more_than_a_day_is_skipped_and_recorded(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("digest weekly mon 09:00")
    clock.set(utc(2026, 12, 8, 10, 0))  # Monday 7 December 09:00 was 25 hours ago
    report = tick(app)
    assert (report.digests, report.skipped) == (0, 2)
    assert tick(app).skipped == 0
    assert outbox_rows(app) == []
    recorded = runs(app)
    assert [(r.period, r.status) for r in recorded] == [
        ("2026-11-30", "skipped"),
        ("2026-12-07", "skipped"),
    ]
    assert "over a day" in (recorded[-1].note or "")
    # The next Monday goes out as usual.
    clock.set(utc(2026, 12, 14, 9, 0))
    assert tick(app).digests == 1


def test_digest_off_stops_it_and_status_shows_the_next_run(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("digest weekly fri 17:30 tz:America/New_York")
    status = chat.ok("digest status")
    assert status.data["schedule"]["next_run_utc"] == "2026-11-27T22:30:00+00:00"
    assert status.data["schedule"]["next_run_local"] == "2026-11-27T17:30:00-05:00"
    assert status.data["failures"] == []
    chat.ok("digest off")
    assert chat.ok("digest status").data["schedule"]["enabled"] is False
    clock.set(utc(2026, 11, 27, 22, 30))
    assert tick(app).digests == 0


def test_digest_now_answers_directly_and_starts_the_next_window(
    chat: Chat, clock: FakeClock
) -> None:
    chat.ok("decide Ship in March")
    chat.ok("item SSO")
    chat.ok("move I-1 now")
    chat.ok("score I-1 reach:100 impact:1 confidence:50% effort:1")
    clock.advance(timedelta(hours=1))
    first = chat.ok("digest")
    assert first.kind == "digest"
    assert first.data["quiet"] is False
    clock.advance(timedelta(minutes=1))
    chat.ok("item Dark mode")
    chat.ok("move I-2 next")
    chat.ok("score I-1 reach:400", user="ben")
    chat.ok("status D-1 rejected")
    chat.ok('poll "Ship?" "yes" "no" closes:3d')
    chat.ok("ask Which regions? owner:@ben due:1h")
    clock.advance(timedelta(hours=2))
    chat.ok("answer Q-1 EU only")
    second = chat.ok("digest now")
    changes = second.data["changes"]
    assert [c["id"] for c in changes["items_added"]] == ["I-2"]  # I-1 was in the first digest
    assert changes["decisions_changed"][0] | {} == {
        "id": "D-1",
        "title": "Ship in March",
        "before": "accepted",
        "after": "rejected",
    }
    assert changes["items_re-scored"][0]["before"] == 50.0
    assert changes["items_re-scored"][0]["after"] > 50.0
    assert [c["id"] for c in changes["polls_opened"]] == ["P-1"]
    assert [c["id"] for c in changes["questions_answered"]] == ["Q-1"]
    assert second.data["closing"][0]["id"] == "P-1"
    assert [i["id"] for i in second.data["now"]] == ["I-1"]
    assert "quiet" not in second.text


def test_a_quiet_week_says_so_in_one_line(chat: Chat) -> None:
    reply = chat.ok("digest")
    assert reply.data["quiet"] is True
    quiet = [b for b in reply.blocks if getattr(b, "text", "").startswith("A quiet week")]
    assert len(quiet) == 1 and "\n" not in quiet[0].text  # type: ignore[union-attr]


def test_digest_verbs_refuse_bad_input(chat: Chat) -> None:
    assert "not a day" in (chat.fails("digest weekly funday 09:00").error or "")
    assert "not a time" in (chat.fails("digest weekly mon 25:00").error or "")
    assert "time zone" in (chat.fails("digest weekly mon 09:00 tz:Mars/Olympus").error or "")
    assert chat.fails("digest sometimes").usage
    assert chat.ok("digest status").data["schedule"] is None
