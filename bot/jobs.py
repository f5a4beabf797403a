"""The scheduler's jobs: what `tick(deps, now)` queues — weekly digests, polls closed on time
(with their results), the next period of recurring polls (`bot/polls/pulses.py`), reminders
before a poll closes, the daily nudge to owners of overdue questions, consent proposals settled
at their due time, one reminder to approvers who have not answered 24 hours before a proposal is
due, and review reminders to decision owners.

The engine decides; a scheduler (APScheduler in `adapters/runtime.py`) only wakes the process and
calls `tick` with the injected clock's time. Every run is claimed in `schedule_runs`
(`schedules.claim_run`) in the same transaction that writes its outbox row, so several processes
on one PostgreSQL database send each digest once, and a crash sends it zero times or once, never
half. A run missed by less than a day (the process was down at 09:00) goes out once when it comes
back; older runs are recorded as skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot import digest, outbox, polls, postings
from bot.common import when
from bot.context import Actor, Deps
from bot.effects import Changed
from bot.platforms import SYSTEM_USER, platform_of
from bot.polls import batches, pulses, reminding
from bot.schedules import DIGEST, claim_run, claimed, occurrences, period_of
from bot.signoff import asking, rules, settling
from bot.signoff import roles as signoff_roles
from bot.timeparse import wall_clock, zone
from bot.views import Actions, Button, Context, Reply, Section, mention
from storage.db import UnitOfWork
from storage.models import Channel, Decision, Poll, Profile, Question, Schedule

log = logging.getLogger("align.jobs")

CATCH_UP = timedelta(days=1)
LOOK_BACK = timedelta(weeks=5)
REMIND_BEFORE = timedelta(hours=24)
MORNING = time(9, 0)


@dataclass
class TickReport:
    digests: int = 0
    skipped: int = 0
    closed: int = 0
    pulses: int = 0
    """Periods of recurring polls opened."""
    pulses_skipped: int = 0
    reminders: int = 0
    nudges: int = 0
    accepted: int = 0
    held: int = 0
    signoff_reminders: int = 0
    reviews: int = 0
    batches: int = 0
    """Anonymous polls whose pending ballots were counted (bot/polls/batches.py)."""


def tick(deps: Deps, now: datetime) -> TickReport:
    """Queue everything due at `now`. Safe to call from many processes at once, and often."""
    report = TickReport()
    steps = (
        _digests,
        _auto_close,
        _anonymous_batches,
        _pulses,
        _poll_reminders,
        _question_nudges,
        _consent_due,
        _signoff_reminders,
        _reviews,
    )
    for step in steps:
        try:
            step(deps, now, report)
        except Exception:
            log.exception("scheduler step %s failed; it is retried at the next tick", step.__name__)
    return report


def _digests(deps: Deps, now: datetime, report: TickReport) -> None:
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
        done = claimed(session, DIGEST, [(s.workspace, s.channel, p) for s, _, p in due])
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
    """Close polls at their `closes:` time, and queue each result for its channel in the same
    transaction. (A typed `close` answers with the result itself, posted in the channel.)"""
    with deps.db.uow() as session:
        for poll in polls.close_due(deps, session, now):
            actor = system_actor(poll.workspace, poll.channel)
            res = polls.close(deps, session, actor, poll, record=False)
            reply = polls.poll_view(deps, session, actor, poll, ballot=False)
            reply.kind = "results"
            reply.effects = (Changed(f"P-{poll.number}", "close"),)
            winner = res["winner"] or "no winner (a tie or no votes)"
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
            report.closed += 1


def _pulses(deps: Deps, now: datetime, report: TickReport) -> None:
    """Open the next period of each recurring poll that is due (after closing the last one, so
    a period ending as the next begins is closed first)."""
    opened, skipped = pulses.open_due(deps, now)
    report.pulses += opened
    report.pulses_skipped += skipped


def _anonymous_batches(deps: Deps, now: datetime, report: TickReport) -> None:
    """Count the batches of anonymous ballots that are due but that no read has counted yet
    (nobody looked since the fifth vote), and bring their live messages up to date."""
    report.batches += batches.flush_due(
        deps, lambda session, poll: postings.mark_behind(session, "poll", poll.id)
    )


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
        # A poll opened less than a day before it closes gets no reminder.
        candidates = [
            p for p in candidates if p.closes_at and p.created_at <= p.closes_at - REMIND_BEFORE
        ]
        keys = [(p.workspace, p.channel, _reminder_period(p)) for p in candidates]
        done = claimed(session, "poll-reminder", keys)
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
            key = f"poll-reminder:{poll.workspace}:P-{poll.number}:{period}"
            if fresh.anonymous:
                asked = (
                    f"Reminder: P-{poll.number} “{poll.question}” closes "
                    f"{when(poll.closes_at, tz)} and you have not voted yet."
                )
                reminding.privately(session, fresh, people, asked, key=key, now=now)
                report.reminders += 1
                continue
            text = (
                f"Reminder: {', '.join(mention(p) for p in people)} — P-{poll.number} "
                f"“{poll.question}” closes {when(poll.closes_at, tz)} and you have not voted yet."
            )
            reminding.queue(session, fresh, text, key=key, now=now, named=tuple(people))
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
        done = claimed(session, "nudge", [(w, c, p) for w, c, _, p, _, _ in plans])
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


def _moment(moment: datetime | None) -> str:
    assert moment is not None
    return moment.strftime("%Y%m%dT%H%M")


def _lock(session: UnitOfWork, decision_id: int) -> Decision | None:
    """The decision, locked against a stance given at the same moment."""
    return session.execute(
        select(Decision).where(Decision.id == decision_id).with_for_update()
    ).scalar_one_or_none()


def _consent_due(deps: Deps, now: datetime, report: TickReport) -> None:
    """At its due time a consent proposal is accepted unless an objection or a block stands —
    then the channel is told it is held, once. Claimed per proposal and due time, so several
    processes settle it once; a later `edit D-n due:` is a new claim."""
    with deps.db.uow() as session:
        due = list(
            session.execute(
                select(Decision).where(
                    Decision.rule == "consent",
                    Decision.status == "proposed",
                    Decision.due_at.is_not(None),
                    Decision.due_at <= now,
                )
            ).scalars()
        )
        keys = [(d.workspace, d.channel, f"D-{d.number}@{_moment(d.due_at)}") for d in due]
        done = claimed(session, "consent", keys)
    for decision, key in zip(due, keys, strict=True):
        if key in done:
            continue
        try:
            with deps.db.uow() as session:
                fresh = _lock(session, decision.id)
                if (
                    fresh is None
                    or fresh.status != "proposed"
                    or fresh.rule != "consent"
                    or fresh.due_at != decision.due_at
                ):
                    continue
                roles = signoff_roles.load(session, fresh.id)
                current = signoff_roles.standing_map(signoff_roles.stances(session, fresh.id))
                standing = rules.standing("consent", roles.approvers, current, due_passed=True)
                accepted = standing.state == "accepted"
                if not claim_run(
                    session,
                    workspace=fresh.workspace,
                    channel=fresh.channel,
                    job="consent",
                    period=key[2],
                    status="accepted" if accepted else "held",
                    now=now,
                ):
                    continue
                actor = system_actor(fresh.workspace, fresh.channel)
                if accepted:
                    settling.settle(deps, session, actor, fresh, "accepted", how="consent", now=now)
                    report.accepted += 1
                    continue
                ref = f"D-{fresh.number}"
                tz = _channel_tz(session, fresh.workspace, fresh.channel)
                holding = "; ".join(
                    f"{mention(p)} {settling.PAST[current[p]]}" for p in standing.holding
                )
                text = (
                    f"{ref} “{fresh.title}” was due {when(fresh.due_at, tz)} "
                    f"and is held: {holding}."
                )
                outbox.enqueue(
                    session,
                    workspace=fresh.workspace,
                    channel=fresh.channel,
                    platform=actor.platform,
                    kind="signoff",
                    reply=Reply(
                        ok=True,
                        kind="signoff",
                        text=text,
                        blocks=[
                            Section(f"✋ {text}"),
                            Context(
                                f"When the objection is resolved it is accepted by hand: "
                                f"`status {ref} accepted` (its owner or an admin)."
                            ),
                        ],
                        data={"id": ref, "status": "held", "holding": list(standing.holding)},
                    ),
                    key=settling.key("consent-held", fresh.workspace, key[2]),
                    now=now,
                )
                report.held += 1
        except Exception:
            log.exception("settling %s/D-%s failed", decision.workspace, decision.number)


def _signoff_reminders(deps: Deps, now: datetime, report: TickReport) -> None:
    """24 hours before a proposal is due, remind the approvers who have not answered — once.
    Proposals made less than a day before their due time get none: they were just asked."""
    with deps.db.uow() as session:
        candidates = [
            d
            for d in session.execute(
                select(Decision).where(
                    Decision.status == "proposed",
                    Decision.rule.is_not(None),
                    Decision.due_at.is_not(None),
                    Decision.due_at > now,
                    Decision.due_at <= now + REMIND_BEFORE,
                )
            ).scalars()
            if d.due_at is not None and d.created_at <= d.due_at - REMIND_BEFORE
        ]
        keys = [(d.workspace, d.channel, f"D-{d.number}@{_moment(d.due_at)}") for d in candidates]
        done = claimed(session, "signoff-reminder", keys)
    for decision, key in zip(candidates, keys, strict=True):
        if key in done:
            continue
        with deps.db.uow() as session:
            fresh = session.get(Decision, decision.id)
            if fresh is None or fresh.status != "proposed" or fresh.due_at != decision.due_at:
                continue
            people = asking.waiting(session, fresh)
            if not claim_run(
                session,
                workspace=fresh.workspace,
                channel=fresh.channel,
                job="signoff-reminder",
                period=key[2],
                status="sent" if people else "done",
                now=now,
                note=None if people else "every approver had answered",
            ):
                continue
            if not people:
                continue
            tz = _channel_tz(session, fresh.workspace, fresh.channel)
            outbox.enqueue(
                session,
                workspace=fresh.workspace,
                channel=fresh.channel,
                platform=platform_of(fresh.workspace),
                kind="nudge",
                reply=asking.reminder(fresh, people, tz),
                key=settling.key("signoff-reminder", fresh.workspace, key[2]),
                now=now,
            )
            report.signoff_reminders += 1


def _reviews(deps: Deps, now: datetime, report: TickReport) -> None:
    """On a decision's review date, ask its owner (else its maker) in its channel to keep it or
    revisit it — once per review date; the buttons carry `review D-n keep|revisit`. A proposal
    still open waits: its reminder comes once it is accepted or rejected."""
    with deps.db.uow() as session:
        due = list(
            session.execute(
                select(Decision).where(
                    Decision.review_at.is_not(None),
                    Decision.review_at <= now,
                    # A proposal still open is reviewed once it is settled.
                    Decision.status.in_(("accepted", "rejected")),
                )
            ).scalars()
        )
        keys = [(d.workspace, d.channel, f"D-{d.number}@{_moment(d.review_at)}") for d in due]
        done = claimed(session, "review", keys)
    for decision, key in zip(due, keys, strict=True):
        if key in done:
            continue
        with deps.db.uow() as session:
            fresh = session.get(Decision, decision.id)
            if fresh is None or fresh.review_at != decision.review_at:
                continue
            if not claim_run(
                session,
                workspace=fresh.workspace,
                channel=fresh.channel,
                job="review",
                period=key[2],
                status="sent",
                now=now,
            ):
                continue
            ref = f"D-{fresh.number}"
            owner = fresh.owner or fresh.created_by
            text = (
                f"Time to review {ref} “{fresh.title}” ({fresh.status}): {mention(owner)}, "
                "does it still hold?"
            )
            outbox.enqueue(
                session,
                workspace=fresh.workspace,
                channel=fresh.channel,
                platform=platform_of(fresh.workspace),
                kind="nudge",
                reply=Reply(
                    ok=True,
                    kind="nudge",
                    text=text,
                    blocks=[
                        Section(text),
                        Actions(
                            (
                                Button("Keep", f"review {ref} keep", "primary"),
                                Button("Revisit", f"review {ref} revisit"),
                            ),
                            label="Review",
                        ),
                        Context(f"Or type `review {ref} keep next:6m`."),
                    ],
                    data={"id": ref, "nudged": [owner], "review": True},
                ),
                key=settling.key("review", fresh.workspace, key[2]),
                now=now,
            )
            report.reviews += 1


__all__ = ["TickReport", "system_actor", "tick"]
