"""Recurring polls (`every:week|2w|month`): the series a poll belongs to, when each period opens
and closes, and stopping it.

Periods are local wall-clock times in the channel's zone, computed from the first poll: period k
opens on the first poll's local opening day moved k weeks (two weeks, months) on, at the same
local time, and closes as many local days later, at the same local time, as the first poll did.
A daylight-saving change therefore never moves a pulse by an hour, and a monthly pulse opened on
the 31st opens on the last day of shorter months (each period is reckoned from the first, so it
comes back to the 31st). Opening each period's poll is the scheduler's (`bot/polls/pulses.py`).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from bot.context import Actor
from bot.errors import Conflict, UsageError
from bot.timeparse import wall_clock, zone
from storage.db import UnitOfWork
from storage.models import Channel, Poll, PollSeries

EVERY_WORDS = {"week": "week", "2w": "two weeks", "month": "month"}
MAX_CATCH_UP = 10_000
"""Periods looked through at most when working out the one due now (a weekly pulse stopped for
two centuries); more is a broken clock, not a schedule."""


def start(
    session: UnitOfWork, actor: Actor, *, every: str, opens: datetime, closes: datetime
) -> PollSeries:
    """A new series anchored on its first poll, in the channel's zone (UTC if it has none)."""
    channel = session.get(Channel, (actor.workspace, actor.channel))
    series = PollSeries(
        workspace=actor.workspace,
        channel=actor.channel,
        every=every,
        tz=(channel.tz if channel and channel.tz else None) or "UTC",
        opens_at=opens,
        closes_at=closes,
        created_by=actor.user,
        created_at=opens,
    )
    session.add(series)
    return series


def every_of(poll: Poll) -> str | None:
    """How often the poll's series opens a new one, or None (not recurring, or stopped)."""
    if poll.series_id is None or poll.series is None or poll.series.stopped_at is not None:
        return None
    return poll.series.every


def stop(session: UnitOfWork, actor: Actor, poll: Poll, value: str, *, now: datetime) -> None:
    """`edit P-n every:off`: no further periods open; the polls already open stay open."""
    if value.lower() not in ("off", "none", "stop"):
        raise UsageError(
            "every: on edit only stops a recurring poll: every:off. Start a new one with "
            "`poll … closes:… every:week`.",
            verb="edit",
        )
    series = poll.series if poll.series_id is not None else None
    if series is None:
        raise Conflict(f"P-{poll.number} does not recur; there is nothing to stop.")
    if series.stopped_at is not None:
        raise Conflict(f"P-{poll.number} no longer recurs; its series was stopped already.")
    series.stopped_at = now
    series.stopped_by = actor.user


def _moved(day: date, every: str, k: int) -> date:
    if every == "week":
        return day + timedelta(weeks=k)
    if every == "2w":
        return day + timedelta(weeks=2 * k)
    months = day.month - 1 + k
    year, month = day.year + months // 12, months % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def bounds(series: PollSeries, k: int) -> tuple[datetime, datetime]:
    """When period k (0 = the first poll) opens and closes, in UTC."""
    tz = zone(series.tz)
    first_open = series.opens_at.astimezone(tz)
    first_close = series.closes_at.astimezone(tz)
    day = _moved(first_open.date(), series.every, k)
    opens = wall_clock(day, first_open.time(), tz)
    closes = wall_clock(day + (first_close.date() - first_open.date()), first_close.time(), tz)
    return opens, max(closes, opens)


def due(series: PollSeries, last: int, now: datetime) -> int | None:
    """The latest period after `last` that has opened by `now`, or None. Periods missed while
    nothing ran are passed over: only the latest one is opened (if it is still open)."""
    k = last + 1
    if bounds(series, k)[0] > now:
        return None
    while k - last < MAX_CATCH_UP and bounds(series, k + 1)[0] <= now:
        k += 1
    return k


__all__ = ["EVERY_WORDS", "bounds", "due", "every_of", "start", "stop"]
