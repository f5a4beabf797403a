"""`pending`: what waits for you in this channel — sign-offs you owe, open polls you have not
voted in, open questions you own. Answered privately: it is about you."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.common import channel_tz, when
from bot.context import Actor, Deps
from bot.errors import UsageError
from bot.parser import Command
from bot.polls import closed_on
from bot.views import Block, Heading, Line, ListBlock, Reply, Section, counted
from storage.db import UnitOfWork
from storage.models import Decision, DecisionRole, Participation, Poll, Question, Stance


def owed_signoffs(
    session: UnitOfWork, workspace: str, user: str, channels: list[str] | None
) -> list[Decision]:
    """Open proposals naming `user` as an approver who has not answered (in `channels`, or in
    every channel when None — the caller then checks the person may see each)."""
    answered = select(Stance.decision_id).where(Stance.user == user)
    stmt = (
        select(Decision)
        .join(DecisionRole, DecisionRole.decision_id == Decision.id)
        .where(
            Decision.workspace == workspace,
            Decision.status == "proposed",
            Decision.rule.is_not(None),
            DecisionRole.role == "approver",
            DecisionRole.target == user,
            Decision.id.not_in(answered),
        )
        .order_by(Decision.due_at.is_(None), Decision.due_at, Decision.number)
    )
    if channels is not None:
        stmt = stmt.where(Decision.channel.in_(channels))
    return list(session.execute(stmt).scalars())


def cmd_pending(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    if cmd.args:
        raise UsageError(
            "`pending` takes nothing more: it lists what waits for you in this channel.",
            verb="pending",
        )
    with deps.db.uow() as session:
        now = deps.clock.now()
        tz = channel_tz(session, actor)
        proposals = owed_signoffs(session, actor.workspace, actor.user, [actor.channel])
        voted = select(Participation.poll_id).where(Participation.user == actor.user)
        polls = [
            p
            for p in session.execute(
                select(Poll)
                .where(
                    Poll.workspace == actor.workspace,
                    Poll.channel == actor.channel,
                    Poll.closed_at.is_(None),
                    Poll.id.not_in(voted),
                )
                .order_by(Poll.number)
            ).scalars()
            if closed_on(p, now) is None
        ]
        questions = list(
            session.execute(
                select(Question)
                .where(
                    Question.workspace == actor.workspace,
                    Question.channel == actor.channel,
                    Question.status == "open",
                    Question.owner == actor.user,
                )
                .order_by(Question.number)
            ).scalars()
        )
        signoff_lines = tuple(
            Line(f"D-{d.number}", d.title, f"due {when(d.due_at, tz)}" if d.due_at else "")
            for d in proposals
        )
        poll_lines = tuple(
            Line(
                f"P-{p.number}",
                p.question,
                f"closes {when(p.closes_at, tz)}" if p.closes_at else "",
            )
            for p in polls
        )
        question_lines = tuple(
            Line(
                f"Q-{q.number}",
                q.text,
                (("OVERDUE since " if q.due_at < now else "due ") + when(q.due_at, tz))
                if q.due_at
                else "",
            )
            for q in questions
        )
    count = len(proposals) + len(polls) + len(questions)
    blocks: list[Block] = [Heading("Waiting for you here")]
    if count == 0:
        blocks.append(Section("Nothing waits for you in this channel. 🎉"))
    else:
        blocks += [
            ListBlock(signoff_lines, title="Sign-offs you owe", empty="None."),
            ListBlock(poll_lines, title="Polls you have not voted in", empty="None."),
            ListBlock(question_lines, title="Questions you own", empty="None."),
        ]
    data: dict[str, Any] = {
        "signoffs": [f"D-{d.number}" for d in proposals],
        "polls": [f"P-{p.number}" for p in polls],
        "questions": [f"Q-{q.number}" for q in questions],
    }
    return Reply(
        ok=True,
        kind="pending",
        text=f"{counted(count, 'thing')} waiting for you here",
        blocks=blocks,
        data=data,
        ephemeral=True,
    )


__all__ = ["cmd_pending", "owed_signoffs"]
