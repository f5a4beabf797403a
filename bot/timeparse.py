"""Times as people type them in chat, read in the channel's time zone.

Accepted: `2026-12-01`, `2026-12-01T17:00` (or with a space), `fri`, `friday 17:00`, `17:00`,
`today`, `tomorrow`, and durations `30m`, `48h`, `3d`, `2w`. A day without a time means 17:00
that day — the end of the working day, which is what "due Friday" means to a team. The grammar is
small and fixed, so a general natural-language date library would only add ambiguity.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import UsageError

END_OF_DAY = time(17, 0)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|mins|h|hr|hrs|d|day|days|w|wk|wks|weeks?)$", re.I)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2}))?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")

TIME_HELP = "Use a date (2026-12-01), a day (fri, friday 17:00), a time (17:00) or 3d, 48h, 2w."


def zone(name: str | None) -> ZoneInfo:
    """A time zone by IANA name; unknown names are a user error, not a crash."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"`{name}` is not a time zone; use a name like Europe/Berlin.") from exc


def weekday(word: str) -> int | None:
    """Monday=0 from `mon`, `Monday`, `tues`…; None if it isn't a day."""
    word = word.lower()
    if len(word) < 3:
        return None
    for index, name in enumerate(WEEKDAYS):
        if name.startswith(word) or (word.endswith("s") and name.startswith(word[:-1])):
            return index
    return None


def parse_clock(text: str) -> time | None:
    match = _CLOCK.match(text.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_when(text: str, *, now: datetime, tz: str | None, verb: str | None = None) -> datetime:
    """A moment in UTC from what the user typed, relative to `now` in zone `tz`."""
    raw = text.strip()
    local_zone = zone(tz)
    local_now = now.astimezone(local_zone)
    lowered = raw.lower()

    match = _DURATION.match(lowered)
    if match:
        amount, unit = int(match.group(1)), match.group(2)[0]
        delta = {
            "m": timedelta(minutes=amount),
            "h": timedelta(hours=amount),
            "d": timedelta(days=amount),
            "w": timedelta(weeks=amount),
        }[unit]
        return (now + delta).astimezone(UTC)

    match = _DATE.match(raw)
    if match:
        year, month, day = (int(match.group(i)) for i in (1, 2, 3))
        clock = END_OF_DAY
        if match.group(4) is not None:
            clock_or_none = parse_clock(f"{match.group(4)}:{match.group(5)}")
            if clock_or_none is None:
                raise UsageError(f"`{raw}` has no such time of day. {TIME_HELP}", verb=verb)
            clock = clock_or_none
        try:
            day_date = date(year, month, day)
        except ValueError as exc:
            raise UsageError(f"`{raw}` is not a date. {TIME_HELP}", verb=verb) from exc
        return _at(day_date, clock, local_zone)

    parts = lowered.split()
    clock = parse_clock(parts[-1]) if parts else None
    day_words = parts[:-1] if clock else parts
    if clock and not day_words:
        candidate = _at(local_now.date(), clock, local_zone)
        if candidate <= now:
            candidate = _at(local_now.date() + timedelta(days=1), clock, local_zone)
        return candidate
    if len(day_words) == 1:
        word = day_words[0]
        if word == "today":
            return _at(local_now.date(), clock or END_OF_DAY, local_zone)
        if word == "tomorrow":
            return _at(local_now.date() + timedelta(days=1), clock or END_OF_DAY, local_zone)
        wanted = weekday(word)
        if wanted is not None:
            ahead = (wanted - local_now.weekday()) % 7
            candidate = _at(
                local_now.date() + timedelta(days=ahead), clock or END_OF_DAY, local_zone
            )
            if candidate <= now:
                candidate = _at(
                    local_now.date() + timedelta(days=ahead + 7), clock or END_OF_DAY, local_zone
                )
            return candidate
    raise UsageError(f"I can't read `{raw[:40]}` as a time. {TIME_HELP}", verb=verb)


def _at(day: date, clock: time, local_zone: ZoneInfo) -> datetime:
    """Local wall-clock time to UTC; a time skipped by DST moves forward like a wall clock does."""
    local = datetime.combine(day, clock, tzinfo=local_zone)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(local_zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        as_utc = (local + timedelta(hours=1)).astimezone(UTC)
    return as_utc


def format_local(moment: datetime, tz: str | None, *, with_zone: bool = True) -> str:
    local = moment.astimezone(zone(tz))
    text = local.strftime("%a %Y-%m-%d %H:%M")
    return f"{text} {local.tzname()}" if with_zone else text
