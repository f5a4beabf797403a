"""The scheduler's part of recurring polls: when a period is due, open its poll and post it.

Each period is claimed in `schedule_runs` (job `poll-series`, period `S<series>#<k>`) in the same
transaction that creates the poll and queues its message, like a digest: several processes ticking
at once open it once, and a crash opens it zero times or once. The new poll copies the previous
period's (its question and options as they were last edited), is created in its creator's name,
and its message goes out through the outbox carrying `Posted`, so it becomes the live message
that votes update. A period whose closing time passed while nothing ran is recorded as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot import outbox
from bot.context import Actor, Deps
from bot.platforms import platform_of
from bot.polls.features import Features
from bot.polls.opening import create
from bot.polls.recurrence import EVERY_WORDS, bounds, due
from bot.polls.view import poll_view
from bot.schedules import claim_run, claimed
from bot.views import Context
from storage.db import UnitOfWork
from storage.models import Poll, PollSeries

JOB = "poll-series"


@dataclass(frozen=True)
class _Due:
    series: int
    workspace: str
    channel: str
    k: int

    @property
    def period(self) -> str:
        return f"S{self.series}#{self.k}"


def open_due(deps: Deps, now: datetime) -> tuple[int, int]:
    """Open every period due at `now`: (opened, skipped)."""
    with deps.db.uow() as session:
        rows = session.execute(
            select(PollSeries, func.max(Poll.series_index))
            .join(Poll, Poll.series_id == PollSeries.id)
            .where(PollSeries.stopped_at.is_(None))
            .group_by(PollSeries.id)
        ).all()
        plans = [
            _Due(series.id, series.workspace, series.channel, k)
            for series, last in rows
            if last is not None and (k := due(series, last, now)) is not None
        ]
        done = claimed(session, JOB, [(p.workspace, p.channel, p.period) for p in plans])
    opened = skipped = 0
    for plan in plans:
        if (plan.workspace, plan.channel, plan.period) in done:
            continue
        with deps.db.uow() as session:
            result = _open(deps, session, plan, now)
        opened += result == "opened"
        skipped += result == "skipped"
    return opened, skipped


def _open(deps: Deps, session: UnitOfWork, plan: _Due, now: datetime) -> str | None:
    series = session.get(PollSeries, plan.series)
    if series is None or series.stopped_at is not None:
        return None
    opens, closes = bounds(series, plan.k)
    late = closes <= now
    if not claim_run(
        session,
        workspace=plan.workspace,
        channel=plan.channel,
        job=JOB,
        period=plan.period,
        status="skipped" if late else "opened",
        now=now,
        note=f"due {opens.isoformat()}" + ("; closed before anything ran" if late else ""),
    ):
        return None
    if late:
        return "skipped"
    previous = session.execute(
        select(Poll).where(Poll.series_id == series.id).order_by(Poll.series_index.desc()).limit(1)
    ).scalar_one()
    actor = Actor(
        workspace=series.workspace,
        channel=series.channel,
        user=series.created_by,
        platform=platform_of(series.workspace),
    )
    poll = create(
        deps,
        session,
        actor,
        question=previous.question,
        options=[(o.text, None) for o in previous.options],
        mode=previous.mode,
        budget=previous.budget,
        method=previous.method,
        features=Features(
            anonymous=previous.anonymous,
            public=previous.public,
            hidden=previous.results_hidden,
            max_choices=previous.max_choices,
            options_open=previous.options_open,
        ),
        closes=closes,
        kind=previous.kind,
        series=series,
        series_index=plan.k,
    )
    reply = poll_view(deps, session, actor, poll)
    reply.text = (
        f"P-{poll.number} is open: {poll.question} (every {EVERY_WORDS[series.every]}, "
        f"after P-{previous.number})"
    )
    # Under the heading: the live message's later updates show the poll without it.
    reply.blocks.insert(1, Context(f"🔁 The next period of P-{previous.number}."))
    outbox.enqueue(
        session,
        workspace=series.workspace,
        channel=series.channel,
        platform=actor.platform,
        kind="poll",
        reply=reply,
        key=f"{JOB}:{series.workspace}:{plan.period}",
        now=now,
    )
    return "opened"


__all__ = ["JOB", "open_due"]
