"""Recurring polls (`every:week|2w|month` with `closes:`): each period the scheduler opens a new
poll, linked to the last, once however many processes tick, and queues it for the channel as a
live message; `results` and `show` give the trend; `edit P-n every:off` stops it. Periods keep
their local time in the channel's zone across daylight-saving changes. Time is the FakeClock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from adapters.bootstrap import App, build
from adapters.console.render import render
from bot.clock import FakeClock
from bot.effects import Posted, from_json
from bot.polls.recurrence import bounds
from storage.models import PollSeries
from tests.conftest import Chat, make_settings
from tests.time.helpers import Recorder, deliver, outbox_rows, runs, tick

PULSE = 'poll "How was the week?" "Good" "Meh" "Bad" closes:2d every:week'


def berlin(chat: Chat) -> None:
    """Give the channel a zone (it is set with the digest) and no digest."""
    chat.ok("digest weekly mon 09:00 tz:Europe/Berlin")
    chat.ok("digest off")


def test_a_weekly_pulse_opens_a_new_poll_each_week_linked_to_the_last(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    start = clock.now()
    opened = chat.ok(PULSE)
    assert opened.data["series"]["every"] == "week"
    assert opened.data["series"]["next_opens"] == (start + timedelta(weeks=1)).isoformat()
    chat.ok("vote P-1 1 | calm week", user="ana")
    chat.ok("vote P-1 1", user="ben")
    chat.ok("vote P-1 3", user="cai")

    clock.set(start + timedelta(days=2))
    assert tick(app).closed == 1
    clock.set(start + timedelta(weeks=1) - timedelta(minutes=1))
    assert tick(app).pulses == 0
    clock.set(start + timedelta(weeks=1))
    assert tick(app).pulses == 1
    assert tick(app).pulses == 0  # claimed: once
    (row,) = outbox_rows(app, kind="poll")
    assert from_json(row.payload["effects"]) == (Posted("P-2"),)  # it becomes the live message
    assert row.payload["text"] == "P-2 is open: How was the week? (every week, after P-1)"

    second = chat.ok("results P-2")
    assert second.data["options"] == ["Good", "Meh", "Bad"]
    assert second.data["series"] == {
        "every": "week",
        "stopped": False,
        "period": 2,
        "previous": "P-1",
        "next": None,
        "next_opens": (start + timedelta(weeks=2)).isoformat(),
    }
    show = chat.ok("show P-2")
    assert show.data["history"][0]["actor"] == "pm"  # opened in its creator's name
    assert chat.ok("vote P-2 2", user="ana").ok
    assert chat.ok("results P-1").data["series"]["next"] == "P-2"
    closes = datetime.fromisoformat(chat.ok("show P-2").data["history"][0]["after"]["closes"])
    assert closes == start + timedelta(weeks=1, days=2)

    # The trend: each period's winner and its share, as bars and in the JSON.
    trend = chat.ok("results P-2").data["trend"]
    assert [(p["id"], p["winner"], p["counts"], p["closed"]) for p in trend] == [
        ("P-1", "Good", {"Good": 2, "Meh": 0, "Bad": 1}, True),
        ("P-2", "Meh", {"Good": 0, "Meh": 1, "Bad": 0}, False),
    ]
    text = render(chat.ok("show P-2")).splitlines()
    at = text.index("Every week · period 2 · previous P-1 · next opens Wed 2026-12-09 09:00 UTC")
    assert text[at + 1 : at + 4] == [
        "  P-1 · 2026-11-25  █████████████░░░░░░░ Good 2 of 3",
        "  P-2 · 2026-12-02  ████████████████████ Meh 1 of 1",
        "Trend: each period's winner and its share of the votes.",
    ]

    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 2
    assert console.texts == [
        "P-1 closed: Good",
        "P-2 is open: How was the week? (every week, after P-1)",
    ]


def test_every_off_stops_the_series_from_any_of_its_polls(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    start = clock.now()
    chat.ok(PULSE)
    clock.set(start + timedelta(weeks=1))
    assert tick(app).pulses == 1
    assert chat.fails("edit P-1 every:off", user="ana").error == (
        "Only <@pm> or a workspace admin can edit P-1."
    )
    stopped = chat.ok("edit P-1 every:off")  # P-1 is closed; its series is what changes
    assert stopped.text == "Edited P-1: every"
    assert chat.ok("results P-2").data["series"]["stopped"] is True
    assert "stopped" in render(chat.ok("show P-2"))
    assert chat.fails("edit P-2 every:off").error == (
        "P-2 no longer recurs; its series was stopped already."
    )
    clock.set(start + timedelta(weeks=5))
    assert tick(app).pulses == 0
    assert len(outbox_rows(app, kind="poll")) == 1


def test_missed_periods_open_only_the_latest_and_a_closed_one_is_skipped(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    start = clock.now()
    chat.ok(PULSE)
    clock.set(start + timedelta(weeks=3, hours=1))  # nothing ran for three weeks
    report = tick(app)
    assert (report.pulses, report.pulses_skipped) == (1, 0)
    latest = chat.ok("results P-2").data["series"]
    assert (latest["period"], latest["previous"]) == (4, "P-1")  # weeks 1 and 2 passed over
    clock.set(start + timedelta(weeks=4, days=2, hours=1))  # week 4 has come and gone
    report = tick(app)
    assert (report.pulses, report.pulses_skipped) == (0, 1)
    assert [(r.period, r.status) for r in runs(app, "poll-series")] == [
        ("S1#3", "opened"),
        ("S1#4", "skipped"),
    ]
    assert chat.fails("show P-3").error == "P-3 not found in this channel."


def test_a_weekly_pulse_keeps_its_berlin_time_across_the_march_change(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    berlin(chat)
    clock.set(datetime(2027, 3, 24, 8, 0, tzinfo=UTC))  # Wednesday 09:00 CET
    chat.ok('poll "Pulse" "Up" "Down" closes:"fri 17:00" every:week')
    due = datetime(2027, 3, 31, 7, 0, tzinfo=UTC)  # Wednesday 09:00 CEST, an hour earlier in UTC
    clock.set(due - timedelta(minutes=1))
    assert tick(app).pulses == 0
    clock.set(due)
    assert tick(app).pulses == 1
    closes = datetime.fromisoformat(chat.ok("show P-2").data["history"][0]["after"]["closes"])
    assert closes == datetime(2027, 4, 2, 15, 0, tzinfo=UTC)  # Friday 17:00 CEST


def test_periods_are_local_days_and_months_clamp_to_their_last_day() -> None:
    series = PollSeries(
        every="month",
        tz="Europe/Berlin",
        opens_at=datetime(2027, 1, 31, 8, 0, tzinfo=UTC),  # 09:00 CET
        closes_at=datetime(2027, 2, 3, 16, 0, tzinfo=UTC),  # three days later, 17:00
    )
    assert bounds(series, 1) == (
        datetime(2027, 2, 28, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 3, 16, 0, tzinfo=UTC),
    )
    assert bounds(series, 2) == (  # back on the 31st, in summer time
        datetime(2027, 3, 31, 7, 0, tzinfo=UTC),
        datetime(2027, 4, 3, 15, 0, tzinfo=UTC),
    )
    assert bounds(series, 12)[0] == datetime(2028, 1, 31, 8, 0, tzinfo=UTC)
    fortnight = PollSeries(
        every="2w",
        tz="Europe/Berlin",
        opens_at=datetime(2026, 10, 20, 7, 0, tzinfo=UTC),  # Tuesday 09:00 CEST
        closes_at=datetime(2026, 10, 21, 7, 0, tzinfo=UTC),
    )
    assert bounds(fortnight, 1) == (  # 09:00 CET after the October change
        datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 4, 8, 0, tzinfo=UTC),
    )


def test_two_scheduler_processes_open_each_period_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    apps = [build(make_settings(migrated_db_url), clock=clock)]
    apps.append(build(make_settings(migrated_db_url), clock=clock, migrate=False))
    try:
        start = clock.now()
        for channel in ("a", "b", "c"):
            Chat(apps[0], channel=channel).ok(PULSE)
        clock.set(start + timedelta(weeks=1))
        barrier = threading.Barrier(2)
        reports: list[int] = []

        def process(app: App) -> None:
            barrier.wait()
            reports.append(tick(app).pulses)

        threads = [threading.Thread(target=process, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(reports) == 3
        rows = outbox_rows(apps[0], kind="poll")
        assert sorted(r.channel for r in rows) == ["a", "b", "c"]
        for number, channel in enumerate(("a", "b", "c"), start=1):
            first = Chat(apps[1], channel=channel).ok(f"show P-{number}").data
            assert first["series"]["next"] in ("P-4", "P-5", "P-6")
    finally:
        for app in apps:
            app.db.dispose()


def test_the_trend_hides_an_open_hidden_period_and_shows_ranked_winners_with_turnout(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    start = clock.now()
    chat.ok('poll "Focus?" "Speed" "Quality" results:hidden closes:1d every:2w')
    chat.ok('poll "Order?" "A" "B" "C" mode:ranked closes:1d every:week anonymous')
    chat.ok("vote P-1 2", user="ana")
    chat.ok("vote P-2 3 1", user="ana")
    chat.ok("vote P-2 3", user="ben")
    clock.set(start + timedelta(weeks=2))
    assert tick(app).pulses == 2  # P-1's second period, and P-2's third (its second passed over)
    chat.ok("vote P-3 1", user="ana")
    hidden = chat.ok("results P-3").data  # P-3 continues P-1
    assert hidden["hidden"] is True
    assert hidden["trend"] == [
        {
            "id": "P-1",
            "opened": start.isoformat(),
            "closed": True,
            "voted": 1,
            "eligible": 3,
            "method": "plurality",
            "winner": "Quality",
            "tied": [],
            "ballots": 1,
            "counts": {"Speed": 0, "Quality": 1},
        },
        {
            "id": "P-3",
            "opened": (start + timedelta(weeks=2)).isoformat(),
            "closed": False,
            "voted": 1,
            "eligible": 3,
            "hidden": True,
        },
    ]
    text = render(chat.ok("show P-3"))
    assert "P-3 · 2026-12-09  ░░░░░░░░░░░░░░░░░░░░ hidden until it closes" in text
    assert "Every two weeks · period 2 · previous P-1" in text
    ranked = render(chat.ok("show P-4"))
    assert "P-2 · 2026-11-25  █████████████░░░░░░░ C · 2 of 3 voted" in ranked
    assert "Trend: each period's winner; the bar is the turnout." in ranked
