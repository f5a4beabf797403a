"""Times as people type them in chat, read in the channel's time zone.

Accepted: `2026-12-01`, `2026-12-01T17:00` (or with a space), `fri`, `friday 17:00`, `17:00`,
`today`, `tomorrow`, and durations `30m`, `48h`, `3d`, `2w`. A day without a time means 17:00
that day — the end of the working day, which is what "due Friday" means to a team. Days and weeks
count on the wall clock (`3d` from Friday 09:00 is Monday 09:00 even across a DST change); minutes
and hours are elapsed time. The grammar is small and fixed, so a general natural-language date
library would only add ambiguity.

`parse_since` reads the same words looking back, for filters like `since:2w`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import UsageError

END_OF_DAY = time(17, 0)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|mins|h|hr|hrs|d|day|days|w|wk|wks|weeks?)$", re.I)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2}))?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")

TIME_HELP = "Use a date (2026-12-01), a day (fri, friday 17:00), a time (17:00) or 3d, 48h, 2w."
SINCE_HELP = "Use a date (2026-11-01), a day (mon, yesterday) or how long ago (3d, 48h, 2w)."


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

    duration = parse_duration(lowered)
    if duration is not None:
        return shift(now, duration, local_zone)

    match = _DATE.match(raw)
    if match:
        clock = END_OF_DAY
        if match.group(4) is not None:
            clock = _clock_or_fail(f"{match.group(4)}:{match.group(5)}", raw, verb)
        return wall_clock(_date_or_fail(match, raw, verb), clock, local_zone)

    parts = lowered.split()
    given = parse_clock(parts[-1]) if parts else None
    day_words = parts[:-1] if given else parts
    if given and not day_words:
        candidate = wall_clock(local_now.date(), given, local_zone)
        if candidate <= now:
            candidate = wall_clock(local_now.date() + timedelta(days=1), given, local_zone)
        return candidate
    if len(day_words) == 1:
        word = day_words[0]
        if word == "today":
            return wall_clock(local_now.date(), given or END_OF_DAY, local_zone)
        if word == "tomorrow":
            return wall_clock(local_now.date() + timedelta(days=1), given or END_OF_DAY, local_zone)
        wanted = weekday(word)
        if wanted is not None:
            ahead = (wanted - local_now.weekday()) % 7
            candidate = wall_clock(
                local_now.date() + timedelta(days=ahead), given or END_OF_DAY, local_zone
            )
            if candidate <= now:
                candidate = wall_clock(
                    local_now.date() + timedelta(days=ahead + 7), given or END_OF_DAY, local_zone
                )
            return candidate
    raise UsageError(f"I can't read `{raw[:40]}` as a time. {TIME_HELP}", verb=verb)


_MONTHS = re.compile(r"^(\d{1,3})\s*(m|mo|mos|mon|month|months)$", re.I)


def parse_review(text: str, *, now: datetime, tz: str | None, verb: str | None = None) -> datetime:
    """A review date: like `parse_when`, except that `3m` is three months — nobody reviews a
    decision in three minutes. Months count on the calendar (Jan 31 + 1m is Feb 28)."""
    match = _MONTHS.match(text.strip())
    if not match:
        return parse_when(text, now=now, tz=tz, verb=verb)
    local_zone = zone(tz)
    local = now.astimezone(local_zone)
    months = local.month - 1 + int(match.group(1))
    year, month = local.year + months // 12, months % 12 + 1
    if year > 9999:
        raise UsageError(f"That time is out of range. {TIME_HELP}", verb=verb)
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    day = date(year, month, min(local.day, last_day))
    return wall_clock(day, local.time().replace(second=0, microsecond=0), local_zone)


@dataclass(frozen=True)
class Duration:
    """`3d` is three days on the wall clock; `72h` is 72 elapsed hours (they differ across DST)."""

    delta: timedelta
    wall_clock: bool


def parse_duration(text: str) -> Duration | None:
    """`30m`, `48h`, `3d`, `2w`; None if the text is not a duration."""
    match = _DURATION.match(text.strip())
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2)[0].lower()
    units = {"m": timedelta(minutes=1), "h": timedelta(hours=1)}
    units |= {"d": timedelta(days=1), "w": timedelta(weeks=1)}
    return Duration(amount * units[unit], wall_clock=unit in "dw")


def shift(
    moment: datetime, duration: Duration, local_zone: ZoneInfo, *, back: bool = False
) -> datetime:
    """`moment ± duration`: days and weeks on the local wall clock, minutes and hours elapsed."""
    delta = -duration.delta if back else duration.delta
    if not duration.wall_clock:
        return _utc(moment + delta)
    wall = moment.astimezone(local_zone).replace(tzinfo=None) + delta
    return wall_clock(wall.date(), wall.time(), local_zone)


def parse_since(text: str, *, now: datetime, tz: str | None, verb: str | None = None) -> datetime:
    """The start of a look-back window, in UTC: `2w` two weeks ago, `mon` the start of the
    latest Monday (today, if it is Monday), `2026-11-01` the start of that day, `yesterday`,
    `today`, and a date or day with a time at that time."""
    raw = text.strip()
    local_zone = zone(tz)
    duration = parse_duration(raw)
    if duration is not None:
        return shift(now, duration, local_zone, back=True)
    match = _DATE.match(raw)
    if match:
        clock = time(0, 0)
        if match.group(4) is not None:
            clock = _clock_or_fail(f"{match.group(4)}:{match.group(5)}", raw, verb)
        return wall_clock(_date_or_fail(match, raw, verb), clock, local_zone)
    found = _last_day(raw.lower().split(), now=now, local_zone=local_zone)
    if found is None:
        raise UsageError(f"I can't read `{raw[:40]}` as a starting time. {SINCE_HELP}", verb=verb)
    return found


def _last_day(parts: list[str], *, now: datetime, local_zone: ZoneInfo) -> datetime | None:
    """`mon`, `yesterday 9:00`, `17:00` looking back: the latest such moment not after now."""
    clock = parse_clock(parts[-1]) if parts else None
    words = parts[:-1] if clock else parts
    today = now.astimezone(local_zone).date()
    if clock and not words:
        candidate = wall_clock(today, clock, local_zone)
        return (
            candidate
            if candidate <= now
            else wall_clock(today - timedelta(days=1), clock, local_zone)
        )
    if len(words) != 1:
        return None
    back = {"today": 0, "yesterday": 1}.get(words[0])
    wanted = weekday(words[0])
    if back is None and wanted is not None:
        back = (today.weekday() - wanted) % 7
    if back is None:
        return None
    moment = wall_clock(today - timedelta(days=back), clock or time(0, 0), local_zone)
    if moment > now and wanted is not None:  # `wed 17:00` on Wednesday morning: last week's
        moment = wall_clock(today - timedelta(days=back + 7), clock or time(0, 0), local_zone)
    return moment


def _clock_or_fail(text: str, raw: str, verb: str | None) -> time:
    clock = parse_clock(text)
    if clock is None:
        raise UsageError(f"`{raw}` has no such time of day. {TIME_HELP}", verb=verb)
    return clock


def _date_or_fail(match: re.Match[str], raw: str, verb: str | None) -> date:
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise UsageError(f"`{raw}` is not a date. {TIME_HELP}", verb=verb) from exc


def wall_clock(day: date, clock: time, local_zone: ZoneInfo) -> datetime:
    """Local day and time to UTC. A time skipped by a DST jump moves forward like a wall clock;
    an ambiguous one (the repeated hour) means its first occurrence."""
    local = datetime.combine(day, clock, tzinfo=local_zone)
    as_utc = _utc(local)
    if as_utc.astimezone(local_zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        as_utc = _utc(local + timedelta(hours=1))
    return as_utc


def _utc(moment: datetime) -> datetime:
    """To UTC; a moment off the calendar's ends (year 1 or 9999 in some zone) is a user error."""
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise UsageError(f"That time is out of range. {TIME_HELP}") from exc


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""strftime's %a where Align runs: Python sets no LC_TIME locale, so C's English names."""


def format_local(moment: datetime, tz: str | None, *, with_zone: bool = True) -> str:
    """Like "Fri 2026-11-27 16:04 CET". Assembled from the fields rather than with strftime, which
    cost twice as much — once per row of a list (`questions` shows every due time): the same
    text for every year of four digits (strftime does not pad a shorter one, so it keeps it)."""
    local = moment.astimezone(zone(tz))
    if local.year < 1000:
        text = local.strftime("%a %Y-%m-%d %H:%M")
    else:
        text = (
            f"{_DAYS[local.weekday()]} {local.year}-{local.month:02}-{local.day:02} "
            f"{local.hour:02}:{local.minute:02}"
        )
    return f"{text} {local.tzname()}" if with_zone else text
