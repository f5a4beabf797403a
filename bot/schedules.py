"""When schedules are due, and claiming a run so it happens once.

Times are local wall-clock times in a named zone, computed with zoneinfo: a Monday 09:00
Europe/Berlin digest goes out at 09:00 in Berlin on both sides of a daylight-saving change. A run
is claimed in `schedule_runs` — a unique (workspace, channel, job, period) inserted with
`ON CONFLICT DO NOTHING` — so several processes on one database run each once. What the jobs do is
`bot/jobs.py`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_

from bot.timeparse import parse_clock, wall_clock, zone
from storage.db import UnitOfWork, dialect_insert
from storage.models import Schedule, ScheduleRun

DIGEST = "digest"


# ---------------------------------------------------------------- local wall-clock arithmetic


def _stored_clock(schedule: Schedule) -> time:
    """A schedule's HH:MM, validated when it was set."""
    clock = parse_clock(schedule.at_time)
    if clock is None:
        raise ValueError(f"schedule {schedule.id} has a bad time {schedule.at_time!r}")
    return clock


def next_weekly(weekday: int, at: time, tz: ZoneInfo, after: datetime) -> datetime:
    """The first weekly occurrence strictly after `after`."""
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    moment = wall_clock(day, at, tz)
    if moment <= after:
        moment = wall_clock(day + timedelta(days=7), at, tz)
    return moment


def last_weekly(weekday: int, at: time, tz: ZoneInfo, upto: datetime) -> datetime:
    """The latest weekly occurrence at or before `upto`."""
    local = upto.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    moment = wall_clock(day, at, tz)
    if moment > upto:
        moment = wall_clock(day - timedelta(days=7), at, tz)
    return moment


def occurrences(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Weekly occurrences in (start, end], oldest first."""
    tz, at = zone(schedule.tz), _stored_clock(schedule)
    out: list[datetime] = []
    moment = last_weekly(schedule.weekday, at, tz, end)
    while moment > start and len(out) < 60:
        out.append(moment)
        moment = last_weekly(schedule.weekday, at, tz, moment - timedelta(seconds=1))
    return out[::-1]


def period_of(moment: datetime, tz: str) -> str:
    """A run's period: its local date (one digest per schedule per day at most)."""
    return moment.astimezone(zone(tz)).date().isoformat()


def next_run(schedule: Schedule, now: datetime) -> datetime:
    return next_weekly(schedule.weekday, _stored_clock(schedule), zone(schedule.tz), now)


# ---------------------------------------------------------------- claiming


def claim_run(
    session: UnitOfWork,
    *,
    workspace: str,
    channel: str,
    job: str,
    period: str,
    status: str,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Claim (channel, job, period) for this transaction: True for the one caller that wins.
    A concurrent claimer on PostgreSQL waits for the winner's commit, then gets False."""
    insert = dialect_insert(session.get_bind().dialect.name)
    stmt = (
        insert(ScheduleRun)
        .values(
            workspace=workspace,
            channel=channel,
            job=job,
            period=period,
            status=status,
            at=now,
            note=note,
        )
        .on_conflict_do_nothing(
            index_elements=[
                ScheduleRun.workspace,
                ScheduleRun.channel,
                ScheduleRun.job,
                ScheduleRun.period,
            ]
        )
        .returning(ScheduleRun.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def claimed(
    session: UnitOfWork, job: str, keys: list[tuple[str, str, str]]
) -> set[tuple[str, str, str]]:
    """Which (workspace, channel, period) of a job are already claimed — read first, so a quiet
    tick writes nothing."""
    found: set[tuple[str, str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(ScheduleRun.workspace, ScheduleRun.channel, ScheduleRun.period).where(
                ScheduleRun.job == job,
                tuple_(ScheduleRun.workspace, ScheduleRun.channel, ScheduleRun.period).in_(chunk),
            )
        ).all()
        found.update((w, c, p) for w, c, p in rows)
    return found


# ---------------------------------------------------------------- listing


def describe(schedule: Schedule, now: datetime) -> dict[str, Any]:
    """A schedule as `digest status` and `align schedule list` show it."""
    upcoming = next_run(schedule, now)
    return {
        "workspace": schedule.workspace,
        "channel": schedule.channel,
        "platform": schedule.platform,
        "kind": schedule.kind,
        "weekday": schedule.weekday,
        "day": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[schedule.weekday],
        "at": schedule.at_time,
        "tz": schedule.tz,
        "enabled": schedule.enabled,
        "next_run_utc": upcoming.isoformat() if schedule.enabled else None,
        "next_run_local": upcoming.astimezone(zone(schedule.tz)).isoformat()
        if schedule.enabled
        else None,
    }


def list_all(session: UnitOfWork, now: datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Schedule).order_by(Schedule.workspace, Schedule.channel, Schedule.kind)
    ).scalars()
    return [describe(s, now) for s in rows]


__all__ = [
    "claim_run",
    "claimed",
    "describe",
    "last_weekly",
    "list_all",
    "next_run",
    "next_weekly",
    "occurrences",
    "wall_clock",
]
