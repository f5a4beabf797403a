"""Times as people type them, read in the channel's time zone — forwards (`due:`, `closes:`) and
backwards (`since:`). Now is Wednesday 2026-11-25 09:00 UTC unless a case says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.common import day
from bot.errors import UsageError
from bot.timeparse import format_local, parse_since, parse_when, zone

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # Wednesday; Berlin is UTC+1 in winter


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


WHEN = [
    # (typed, zone, expected UTC)
    ("2026-12-01", "UTC", utc(2026, 12, 1, 17, 0)),  # a day alone means 17:00
    ("2026-12-01", "Europe/Berlin", utc(2026, 12, 1, 16, 0)),
    ("2026-12-01T17:00", "Europe/Berlin", utc(2026, 12, 1, 16, 0)),
    ("2026-12-01 08:30", "America/New_York", utc(2026, 12, 1, 13, 30)),
    ("fri", "UTC", utc(2026, 11, 27, 17, 0)),
    ("Friday 17:00", "Europe/Berlin", utc(2026, 11, 27, 16, 0)),
    ("friday 9:15", "UTC", utc(2026, 11, 27, 9, 15)),
    ("wed", "UTC", utc(2026, 11, 25, 17, 0)),  # today, still ahead
    ("wed 08:00", "UTC", utc(2026, 12, 2, 8, 0)),  # today but past: next week
    ("17:00", "UTC", utc(2026, 11, 25, 17, 0)),  # later today
    ("08:00", "UTC", utc(2026, 11, 26, 8, 0)),  # past today: tomorrow
    ("17:00", "Europe/Berlin", utc(2026, 11, 25, 16, 0)),
    ("today", "UTC", utc(2026, 11, 25, 17, 0)),
    ("tomorrow 10:00", "Europe/Berlin", utc(2026, 11, 26, 9, 0)),
    ("3d", "UTC", utc(2026, 11, 28, 9, 0)),
    ("48h", "UTC", utc(2026, 11, 27, 9, 0)),
    ("2w", "Europe/Berlin", utc(2026, 12, 9, 9, 0)),
    ("30m", "UTC", utc(2026, 11, 25, 9, 30)),
]


@pytest.mark.parametrize(("typed", "tz", "expected"), WHEN, ids=[f"{c[0]}@{c[1]}" for c in WHEN])
def test_when(typed: str, tz: str, expected: datetime) -> None:
    assert parse_when(typed, now=NOW, tz=tz) == expected


# Berlin moves to summer time on Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST.
FRIDAY_BEFORE_DST = utc(2026, 3, 27, 8, 0)  # Friday 09:00 in Berlin


def test_a_day_count_keeps_the_wall_clock_across_the_dst_change() -> None:
    monday = parse_when("3d", now=FRIDAY_BEFORE_DST, tz="Europe/Berlin")
    assert format_local(monday, "Europe/Berlin") == "Mon 2026-03-30 09:00 CEST"
    assert monday == utc(2026, 3, 30, 7, 0)


def test_an_hour_count_is_elapsed_time_across_the_dst_change() -> None:
    later = parse_when("72h", now=FRIDAY_BEFORE_DST, tz="Europe/Berlin")
    assert later == utc(2026, 3, 30, 8, 0)
    assert format_local(later, "Europe/Berlin") == "Mon 2026-03-30 10:00 CEST"


def test_a_time_skipped_by_dst_moves_forward_like_a_wall_clock() -> None:
    moment = parse_when("2026-03-29T02:30", now=FRIDAY_BEFORE_DST, tz="Europe/Berlin")
    assert format_local(moment, "Europe/Berlin") == "Sun 2026-03-29 03:30 CEST"


def test_a_day_on_the_dst_sunday_means_17_00_summer_time() -> None:
    moment = parse_when("sun", now=FRIDAY_BEFORE_DST, tz="Europe/Berlin")
    assert moment == utc(2026, 3, 29, 15, 0)


SINCE = [
    ("2w", "UTC", utc(2026, 11, 11, 9, 0)),
    ("3d", "Europe/Berlin", utc(2026, 11, 22, 9, 0)),
    ("48h", "UTC", utc(2026, 11, 23, 9, 0)),
    ("mon", "UTC", utc(2026, 11, 23, 0, 0)),  # the last Monday, from its start
    ("monday", "Europe/Berlin", utc(2026, 11, 22, 23, 0)),
    ("wed", "UTC", utc(2026, 11, 25, 0, 0)),  # today is Wednesday
    ("thu", "UTC", utc(2026, 11, 19, 0, 0)),  # last week's
    ("wed 17:00", "UTC", utc(2026, 11, 18, 17, 0)),  # today's 17:00 is ahead: last week's
    ("2026-11-01", "UTC", utc(2026, 11, 1, 0, 0)),  # a date means from its start
    ("2026-11-01", "Europe/Berlin", utc(2026, 10, 31, 23, 0)),
    ("2026-11-25", "UTC", utc(2026, 11, 25, 0, 0)),  # today includes this morning
    ("2026-11-01T10:00", "UTC", utc(2026, 11, 1, 10, 0)),
    ("yesterday", "UTC", utc(2026, 11, 24, 0, 0)),
    ("today", "UTC", utc(2026, 11, 25, 0, 0)),
    ("08:00", "UTC", utc(2026, 11, 25, 8, 0)),
    ("17:00", "UTC", utc(2026, 11, 24, 17, 0)),
]


@pytest.mark.parametrize(("typed", "tz", "expected"), SINCE, ids=[f"{c[0]}@{c[1]}" for c in SINCE])
def test_since(typed: str, tz: str, expected: datetime) -> None:
    assert parse_since(typed, now=NOW, tz=tz) == expected


def test_since_two_weeks_across_dst_counts_wall_clock_days() -> None:
    after_dst = utc(2026, 4, 5, 8, 0)  # Sunday 10:00 CEST
    start = parse_since("2w", now=after_dst, tz="Europe/Berlin")
    assert format_local(start, "Europe/Berlin") == "Sun 2026-03-22 10:00 CET"


BAD = [
    "someday",
    "2026-02-30",
    "2026-12-01T25:00",
    "25:00",
    "next friday",
    "fr",
    "3 fortnights",
    "9999-12-31T23:00",
]


@pytest.mark.parametrize("typed", BAD)
def test_unreadable_times_are_usage_errors(typed: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_when(typed, now=NOW, tz="America/New_York", verb="ask")
    assert "2026-12-01" in caught.value.message  # the hint says what works
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("typed", ["never", "2026-13-01", "next week", "tomorrow"])
def test_unreadable_since_is_a_usage_error(typed: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_since(typed, now=NOW, tz="UTC", verb="decisions")
    assert caught.value.verb in ("decisions", None)


def test_an_unknown_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a time zone"):
        parse_when("fri", now=NOW, tz="Mars/Olympus")


ZONES = ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham"]


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(ZONES),
)
def test_a_moment_reads_as_strftime_writes_it(moment: datetime, tz: str) -> None:
    """format_local and common.day assemble the text from the date's fields (cheaper than
    strftime, once per row of a list): the same text strftime gives, for any moment and zone."""
    local = moment.astimezone(zone(tz))
    expected = local.strftime("%a %Y-%m-%d %H:%M")
    assert format_local(moment, tz, with_zone=False) == expected
    assert format_local(moment, tz) == f"{expected} {local.tzname()}"
    assert day(moment, tz) == expected[4:14]
