"""What is due, and when: weekly digests, poll auto-close, reminders before a poll closes, and
the daily nudge to owners of overdue questions.

The engine decides; a scheduler (APScheduler in `adapters/runtime.py`, or the console runtime)
only wakes the process and calls `tick(deps, now)` with the injected clock's time. Every run is
claimed in `schedule_runs` — a unique (workspace, channel, job, period) inserted with
`ON CONFLICT DO NOTHING` — in the same transaction that writes its outbox row, so several
processes on one PostgreSQL database send each digest once, and a crash sends it zero times or
once, never half.

Times are local wall-clock times in a named zone, computed with zoneinfo: a Monday 09:00
Europe/Berlin digest goes out at 09:00 in Berlin on both sides of a daylight-saving change.
A run missed by less than a day (the process was down at 09:00) goes out once when it comes back;
older runs are recorded as skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_

from bot import outbox, polls
from bot.common import when
from bot.context import Actor, Deps, Event, EventListener
from bot.platforms import SYSTEM_USER, platform_of
from bot.timeparse import parse_clock, wall_clock, zone
from bot.views import Actions, Context, Form, Reply, Section, mention
from storage.db import UnitOfWork, dialect_insert
from storage.models import Channel, Poll, Profile, Question, Schedule, ScheduleRun

log = logging.getLogger("align.schedules")

CATCH_UP = timedelta(days=1)
LOOK_BACK = timedelta(weeks=5)
REMIND_BEFORE = timedelta(hours=24)
MORNING = time(9, 0)
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


def _claimed(
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


# ---------------------------------------------------------------- the tick


@dataclass
class TickReport:
    digests: int = 0
    skipped: int = 0
    closed: int = 0
    reminders: int = 0
    nudges: int = 0


def tick(deps: Deps, now: datetime) -> TickReport:
    """Queue everything due at `now`. Safe to call from many processes at once, and often."""
    report = TickReport()
    for step in (_digests, _auto_close, _poll_reminders, _question_nudges):
        try:
            step(deps, now, report)
        except Exception:
            log.exception("scheduler step %s failed; it is retried at the next tick", step.__name__)
    return report


def _digests(deps: Deps, now: datetime, report: TickReport) -> None:
    from bot import digest  # digest imports this module for `digest status`

    with deps.db.uow() as session:
        schedules = list(
            session.execute(
                select(Schedule).where(Schedule.kind == DIGEST, Schedule.enabled.is_(True))
            ).scalars()
        )
        due: list[tuple[Schedule, datetime, str]] = []
        for schedule in schedules:
            start = max(schedule.updated_at, now - LOOK_BACK)
            for moment in occurrences(schedule, start, now):
                due.append((schedule, moment, period_of(moment, schedule.tz)))
        done = _claimed(session, DIGEST, [(s.workspace, s.channel, p) for s, _, p in due])
    latest: dict[int, datetime] = {}
    for schedule, moment, _ in due:
        latest[schedule.id] = max(moment, latest.get(schedule.id, moment))
    for schedule, moment, period in due:
        if (schedule.workspace, schedule.channel, period) in done:
            continue
        send = moment == latest[schedule.id] and now - moment < CATCH_UP
        try:
            with deps.db.uow() as session:
                if not send:
                    late = now - moment
                    if claim_run(
                        session,
                        workspace=schedule.workspace,
                        channel=schedule.channel,
                        job=DIGEST,
                        period=period,
                        status="skipped",
                        now=now,
                        note=f"missed by {_age(late)} (due {moment.isoformat()}); over a day",
                    ):
                        report.skipped += 1
                    continue
                if not claim_run(
                    session,
                    workspace=schedule.workspace,
                    channel=schedule.channel,
                    job=DIGEST,
                    period=period,
                    status="sent",
                    now=now,
                    note=f"due {moment.isoformat()}",
                ):
                    continue
                digest.post(
                    deps,
                    session,
                    workspace=schedule.workspace,
                    channel=schedule.channel,
                    platform=schedule.platform,
                    now=now,
                    key=f"digest:{schedule.workspace}:{schedule.channel}:{period}",
                )
                report.digests += 1
        except Exception:
            log.exception("digest for %s/%s failed", schedule.workspace, schedule.channel)


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def system_actor(workspace: str, channel: str) -> Actor:
    return Actor(
        workspace=workspace, channel=channel, user=SYSTEM_USER, platform=platform_of(workspace)
    )


def _auto_close(deps: Deps, now: datetime, report: TickReport) -> None:
    """Close polls at their `closes:` time. The result is posted by `post_results_at_close`,
    listening to the poll.closed event in the same transaction."""
    with deps.db.uow() as session:
        for poll in polls.close_due(deps, session, now):
            polls.close(
                deps, session, system_actor(poll.workspace, poll.channel), poll, record=False
            )
            report.closed += 1


def post_results_at_close(deps: Deps) -> EventListener:
    """A listener: when the scheduler closes a poll, queue its result for the channel.

    A typed (or clicked) `close` is left out on purpose: its direct reply is the result, posted
    in the channel for everyone, so a second copy through the outbox would only repeat it. The
    poll's `closed_by` tells the two apart (the scheduler closes as SYSTEM_USER)."""

    def listener(session: UnitOfWork, event: Event, now: datetime) -> None:
        if event.name != "poll.closed":
            return
        number = int(str(event.payload["id"]).split("-")[1])
        poll = session.execute(
            select(Poll).where(Poll.workspace == event.workspace, Poll.number == number)
        ).scalar_one_or_none()
        if poll is None or poll.closed_by != SYSTEM_USER:
            return
        actor = system_actor(poll.workspace, poll.channel)
        reply = polls.poll_view(deps, session, actor, poll)
        reply.kind = "results"
        reply.blocks = [b for b in reply.blocks if not isinstance(b, Actions | Form)]
        winner = event.payload.get("winner") or "no winner (a tie or no votes)"
        reply.text = f"P-{poll.number} closed: {winner}"
        reply.blocks.insert(0, Section(f"⏰ *P-{poll.number}* closed on time."))
        outbox.enqueue(
            session,
            workspace=poll.workspace,
            channel=poll.channel,
            platform=actor.platform,
            kind="result",
            reply=reply,
            key=f"poll-result:{poll.workspace}:P-{poll.number}",
            now=now,
        )

    return listener


def _channel_tz(session: UnitOfWork, workspace: str, channel: str) -> str:
    found = session.get(Channel, (workspace, channel))
    return (found.tz if found and found.tz else None) or "UTC"


def _poll_reminders(deps: Deps, now: datetime, report: TickReport) -> None:
    """24 hours before a poll closes, remind the people who have not voted (never those who did;
    anonymous polls know who voted from participation only). Polls opened for less than a day
    get no reminder: everyone has just been asked."""
    with deps.db.uow() as session:
        candidates = list(
            session.execute(
                select(Poll).where(
                    Poll.closed_at.is_(None),
                    Poll.closes_at.is_not(None),
                    Poll.closes_at > now,
                    Poll.closes_at <= now + REMIND_BEFORE,
                )
            ).scalars()
        )
        candidates = [p for p in candidates if p.created_at <= p.closes_at - REMIND_BEFORE]
        keys = [(p.workspace, p.channel, _reminder_period(p)) for p in candidates]
        done = _claimed(session, "poll-reminder", keys)
    for poll in candidates:
        period = _reminder_period(poll)
        if (poll.workspace, poll.channel, period) in done:
            continue
        with deps.db.uow() as session:
            fresh = session.get(Poll, poll.id)
            if fresh is None or fresh.closed_at is not None or fresh.closes_at != poll.closes_at:
                continue
            people = polls.non_voters(deps, session, fresh)
            if not claim_run(
                session,
                workspace=poll.workspace,
                channel=poll.channel,
                job="poll-reminder",
                period=period,
                status="sent" if people else "done",
                now=now,
                note=None if people else "everyone had voted",
            ):
                continue
            if not people:
                continue
            tz = _channel_tz(session, poll.workspace, poll.channel)
            text = (
                f"Reminder: {', '.join(mention(p) for p in people)} — P-{poll.number} "
                f"“{poll.question}” closes {when(poll.closes_at, tz)} and you have not voted yet."
            )
            outbox.enqueue(
                session,
                workspace=poll.workspace,
                channel=poll.channel,
                platform=platform_of(poll.workspace),
                kind="nudge",
                reply=Reply(
                    ok=True,
                    kind="nudge",
                    text=text,
                    blocks=[Section(text), Context(f"Vote with `vote P-{poll.number} …`.")],
                    data={"id": f"P-{poll.number}", "nudged": people},
                ),
                key=f"poll-reminder:{poll.workspace}:P-{poll.number}:{period}",
                now=now,
            )
            report.reminders += 1


def _reminder_period(poll: Poll) -> str:
    assert poll.closes_at is not None
    return f"P-{poll.number}@{poll.closes_at.strftime('%Y%m%dT%H%M')}"


def _question_nudges(deps: Deps, now: datetime, report: TickReport) -> None:
    """Each morning (09:00 in the owner's zone, else the channel's), remind owners of their
    overdue questions — one message per owner and channel per day."""
    with deps.db.uow() as session:
        overdue = list(
            session.execute(
                select(Question)
                .where(
                    Question.status == "open",
                    Question.owner.is_not(None),
                    Question.due_at.is_not(None),
                    Question.due_at < now,
                )
                .order_by(Question.number)
            ).scalars()
        )
        groups: dict[tuple[str, str, str], list[Question]] = {}
        for question in overdue:
            assert question.owner is not None
            groups.setdefault((question.workspace, question.channel, question.owner), []).append(
                question
            )
        plans: list[tuple[str, str, str, str, list[Question], str]] = []
        for (workspace, channel, owner), questions in groups.items():
            profile = session.get(Profile, (workspace, owner))
            tz = (profile.tz if profile and profile.tz else None) or _channel_tz(
                session, workspace, channel
            )
            local = now.astimezone(zone(tz))
            morning = wall_clock(local.date(), MORNING, zone(tz))
            if morning > now:
                morning = wall_clock(local.date() - timedelta(days=1), MORNING, zone(tz))
            due = [q for q in questions if q.due_at is not None and q.due_at <= morning]
            if due:
                period = f"{owner}:{morning.astimezone(zone(tz)).date().isoformat()}"
                plans.append((workspace, channel, owner, period, due, tz))
        done = _claimed(session, "nudge", [(w, c, p) for w, c, _, p, _, _ in plans])
    for workspace, channel, owner, period, questions, tz in plans:
        if (workspace, channel, period) in done:
            continue
        with deps.db.uow() as session:
            if not claim_run(
                session,
                workspace=workspace,
                channel=channel,
                job="nudge",
                period=period,
                status="sent",
                now=now,
            ):
                continue
            listed = "; ".join(
                f"Q-{q.number} “{q.text}” (due {when(q.due_at, tz)})" for q in questions
            )
            text = f"Good morning {mention(owner)} — overdue and waiting for you: {listed}."
            outbox.enqueue(
                session,
                workspace=workspace,
                channel=channel,
                platform=platform_of(workspace),
                kind="nudge",
                reply=Reply(
                    ok=True,
                    kind="nudge",
                    text=text,
                    blocks=[
                        Section(text),
                        Context(f"Answer with `answer Q-{questions[0].number} <text>`."),
                    ],
                    data={"nudged": [owner], "questions": [f"Q-{q.number}" for q in questions]},
                ),
                key=f"nudge:{workspace}:{channel}:{period}",
                now=now,
            )
            report.nudges += 1


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
    "TickReport",
    "claim_run",
    "describe",
    "last_weekly",
    "list_all",
    "next_run",
    "next_weekly",
    "occurrences",
    "post_results_at_close",
    "tick",
    "wall_clock",
]
