"""A person's own overview (Slack's App Home): what waits for them across their channels.

App Home is personal, so it may list objects of several channels — but only of channels the
person is a member of (the `members` table: channels where they have used Align), never others.
Read-only: nothing here changes state.
"""

from __future__ import annotations

from sqlalchemy import select

from bot import items
from bot.common import when
from bot.context import Actor, Deps
from bot.pending import owed_signoffs
from bot.polls import closed_on
from bot.scoring import format_number
from bot.views import Block, Context, Divider, Heading, Line, ListBlock, Reply, Section
from storage import rosters
from storage.db import UnitOfWork
from storage.models import Decision, Member, Participation, Poll, Question

MAX_CHANNELS = 10
MAX_LINES = 10


def channel_link(channel: str) -> str:
    return f"<#{channel}>"


def _signoffs(session: UnitOfWork, workspace: str, user: str) -> list[Decision]:
    """Proposals waiting for this person's sign-off, in channels they are in — where they used
    Align, or on the channel's roster — so no title of a channel they are not in is shown."""
    owed = owed_signoffs(session, workspace, user, None)
    if not owed:
        return []
    seen = set(
        session.execute(
            select(Member.channel).where(Member.workspace == workspace, Member.user == user)
        ).scalars()
    )
    shown = []
    for decision in owed:
        if decision.channel in seen or user in (
            rosters.members(session, workspace, decision.channel) or []
        ):
            shown.append(decision)
    return shown


def home(deps: Deps, workspace: str, user: str, *, tz: str | None = None) -> Reply:
    """Sign-offs waiting for the person, polls still open, their open questions, recent
    decisions, and each Now lane."""
    now = deps.clock.now()
    zone = tz or "UTC"
    with deps.db.uow() as session:
        channels = list(
            session.execute(
                select(Member.channel)
                .where(Member.workspace == workspace, Member.user == user)
                .order_by(Member.last_seen.desc())
                .limit(MAX_CHANNELS)
            ).scalars()
        )
        polls = (
            list(
                session.execute(
                    select(Poll)
                    .where(
                        Poll.workspace == workspace,
                        Poll.channel.in_(channels),
                        Poll.closed_at.is_(None),
                    )
                    .order_by(Poll.created_at.desc())
                ).scalars()
            )
            if channels
            else []
        )
        polls = [p for p in polls if closed_on(p, now) is None]
        voted = set(
            session.execute(
                select(Participation.poll_id).where(
                    Participation.user == user, Participation.poll_id.in_([p.id for p in polls])
                )
            ).scalars()
        )
        poll_lines = tuple(
            Line(
                f"P-{p.number}",
                p.question,
                " · ".join(
                    [channel_link(p.channel), "you voted" if p.id in voted else "not voted yet"]
                    + ([f"closes {when(p.closes_at, zone)}"] if p.closes_at else [])
                ),
            )
            for p in sorted(polls, key=lambda p: (p.id in voted, -p.id))
        )
        questions = (
            list(
                session.execute(
                    select(Question)
                    .where(
                        Question.workspace == workspace,
                        Question.channel.in_(channels),
                        Question.status == "open",
                        (Question.owner == user) | (Question.created_by == user),
                    )
                    .order_by(Question.number.desc())
                ).scalars()
            )
            if channels
            else []
        )
        question_lines = tuple(
            Line(
                f"Q-{q.number}",
                q.text,
                channel_link(q.channel)
                + (" · you own it" if q.owner == user else " · you asked")
                + (
                    f" · {'OVERDUE' if q.due_at < now else 'due'} {when(q.due_at, zone)}"
                    if q.due_at
                    else ""
                ),
            )
            for q in questions
        )
        decisions = (
            list(
                session.execute(
                    select(Decision)
                    .where(Decision.workspace == workspace, Decision.channel.in_(channels))
                    .order_by(Decision.created_at.desc(), Decision.number.desc())
                    .limit(MAX_LINES)
                ).scalars()
            )
            if channels
            else []
        )
        decision_lines = tuple(
            Line(f"D-{d.number}", d.title, f"{d.status} · {channel_link(d.channel)}")
            for d in decisions
        )
        owed = _signoffs(session, workspace, user)
        signoff_lines = tuple(
            Line(
                f"D-{d.number}",
                d.title,
                channel_link(d.channel) + (f" · due {when(d.due_at, zone)}" if d.due_at else ""),
            )
            for d in owed
        )
        lanes: list[tuple[str, tuple[Line, ...]]] = []
        for channel in channels:
            viewer = Actor(workspace=workspace, channel=channel, user=user)
            ranked = items.ranked_items(session, viewer, lanes=("now",))
            if ranked:
                lanes.append(
                    (
                        channel,
                        tuple(
                            Line(
                                f"I-{i.number}",
                                i.title,
                                f"RICE {format_number(s.rice)}" if s.rice else "",
                            )
                            for i, s in ranked[:MAX_LINES]
                        ),
                    )
                )
    blocks: list[Block] = [Heading("Align")]
    if signoff_lines:
        blocks.append(ListBlock(signoff_lines[:MAX_LINES], title="Waiting for your sign-off"))
        if len(signoff_lines) > MAX_LINES:
            blocks.append(Context(f"… and {len(signoff_lines) - MAX_LINES} more proposals."))
    if not channels:
        blocks.append(Section("Nothing here yet. Type `/align help` in a channel to get started."))
    else:
        blocks += [
            ListBlock(
                poll_lines[:MAX_LINES], title="Polls you can vote in", empty="No open polls."
            ),
        ]
        if len(poll_lines) > MAX_LINES:
            blocks.append(Context(f"… and {len(poll_lines) - MAX_LINES} more open polls."))
        blocks.append(
            ListBlock(question_lines[:MAX_LINES], title="Your open questions", empty="None.")
        )
        if len(question_lines) > MAX_LINES:
            blocks.append(Context(f"… and {len(question_lines) - MAX_LINES} more questions."))
        blocks += [
            ListBlock(decision_lines, title="Recent decisions", empty="No decisions yet."),
            Divider(),
        ]
        for channel, lines in lanes:
            blocks.append(ListBlock(lines, title=f"Now in {channel_link(channel)}"))
        if not lanes:
            blocks.append(Context("No items in any Now lane."))
    blocks.append(Context("Only channels where you use Align are shown."))
    return Reply(
        ok=True,
        kind="home",
        text="Align",
        blocks=blocks,
        data={
            "channels": channels,
            "polls": [f"P-{p.number}" for p in polls],
            "questions": [f"Q-{q.number}" for q in questions],
            "decisions": [f"D-{d.number}" for d in decisions],
            "signoffs": [f"D-{d.number}" for d in owed],
        },
    )
