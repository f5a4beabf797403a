"""`pending`: what waits for you in this channel — sign-offs you owe, open polls you have not
voted in, open questions you own. Answered privately: it is about you."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, case, literal_column, null, select, union_all

from bot.common import channel_tz_column, channel_tz_read, when
from bot.context import Actor, Deps
from bot.errors import UsageError
from bot.parser import Command
from bot.views import Block, Heading, Line, ListBlock, Reply, Section, counted
from storage.db import Prepared, UnitOfWork, sql_constant
from storage.models import Decision, DecisionRole, Participation, Poll, Question, Stance

_D = cast(Table, Decision.__table__)
_R = cast(Table, DecisionRole.__table__)
_S = cast(Table, Stance.__table__)
_P = cast(Table, Poll.__table__)
_V = cast(Table, Participation.__table__)
_Q = cast(Table, Question.__table__)

_OWED = (
    _D.c.workspace == bindparam("workspace"),
    _D.c.status == sql_constant("proposed"),
    _D.c.rule.is_not(None),
    _R.c.role == sql_constant("approver"),
    _R.c.target == bindparam("user"),
    _D.c.id.not_in(select(_S.c.decision_id).where(_S.c.user == bindparam("user"))),
)
"""Open proposals naming the person (`user`) as an approver who has not answered."""
_OWED_ORDER = (_D.c.due_at.is_(None), _D.c.due_at, _D.c.number)
_OWED_FROM = _D.join(_R, _R.c.decision_id == _D.c.id)
_OWED_ANYWHERE = select(Decision).select_from(_OWED_FROM).where(*_OWED).order_by(*_OWED_ORDER)


def owed_signoffs(
    session: UnitOfWork, workspace: str, user: str, channels: list[str] | None
) -> list[Decision]:
    """Open proposals naming `user` as an approver who has not answered (in `channels`, or in
    every channel when None — the caller then checks the person may see each)."""
    stmt = _OWED_ANYWHERE
    if channels is not None:
        stmt = stmt.where(_D.c.channel.in_(channels))
    return list(session.execute(stmt, {"workspace": workspace, "user": user}).scalars())


# What waits for the person in one channel, in one statement on the raw cursor: each part (1
# sign-offs, 2 polls, 3 questions) in its own order, the channel's zone on every row. Four ORM
# statements built per call, and their objects loaded, cost about 1 ms of an empty `pending`.
_HERE = _D.c.channel == bindparam("channel")
_SIGNOFFS = (
    select(
        literal_column("1").label("part"),
        _D.c.number,
        _D.c.title.label("text"),
        _D.c.due_at.label("moment"),
        case((_D.c.due_at.is_(None), literal_column("1")), else_=literal_column("0")).label(
            "undated"
        ),
        _D.c.due_at.label("sort_at"),
    )
    .select_from(_OWED_FROM)
    .where(*_OWED, _HERE)
)
_POLLS = select(
    literal_column("2"), _P.c.number, _P.c.question, _P.c.closes_at, literal_column("0"), null()
).where(
    _P.c.workspace == bindparam("workspace"),
    _P.c.channel == bindparam("channel"),
    _P.c.closed_at.is_(None),
    _P.c.id.not_in(select(_V.c.poll_id).where(_V.c.user == bindparam("user"))),
)
_QUESTIONS = select(
    literal_column("3"), _Q.c.number, _Q.c.text, _Q.c.due_at, literal_column("0"), null()
).where(
    _Q.c.workspace == bindparam("workspace"),
    _Q.c.channel == bindparam("channel"),
    _Q.c.status == sql_constant("open"),
    _Q.c.owner == bindparam("user"),
)
_WAITING = union_all(_SIGNOFFS, _POLLS, _QUESTIONS).subquery("waiting")
_PENDING = Prepared(
    lambda _dialect: select(
        _WAITING.c.part,
        _WAITING.c.number,
        _WAITING.c.text,
        _WAITING.c.moment,
        channel_tz_column(bindparam("workspace"), bindparam("channel")),
    ).order_by(_WAITING.c.part, _WAITING.c.undated, _WAITING.c.sort_at, _WAITING.c.number)
)


def cmd_pending(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    if cmd.args:
        raise UsageError(
            "`pending` takes nothing more: it lists what waits for you in this channel.",
            verb="pending",
        )
    params = {"workspace": actor.workspace, "channel": actor.channel, "user": actor.user}
    with deps.db.uow() as session:
        now = deps.clock.now()
        rows = _PENDING.rows(session, params)
        tz = channel_tz_read(session, actor, rows[0][4]) if rows else "UTC"
    proposals: list[Line] = []
    polls: list[Line] = []
    questions: list[Line] = []
    for part, number, text, moment, _zone in rows:
        if part == 1:
            proposals.append(Line(f"D-{number}", text, f"due {when(moment, tz)}" if moment else ""))
        elif part == 2:
            # Not closed by hand (the statement's): open unless its closing time has passed
            # (`polls.closed_on`).
            if moment is None or moment > now:
                polls.append(
                    Line(f"P-{number}", text, f"closes {when(moment, tz)}" if moment else "")
                )
        else:
            meta = (
                (("OVERDUE since " if moment < now else "due ") + when(moment, tz))
                if moment
                else ""
            )
            questions.append(Line(f"Q-{number}", text, meta))
    count = len(proposals) + len(polls) + len(questions)
    blocks: list[Block] = [Heading("Waiting for you here")]
    if count == 0:
        blocks.append(Section("Nothing waits for you in this channel. 🎉"))
    else:
        blocks += [
            ListBlock(tuple(proposals), title="Sign-offs you owe", empty="None."),
            ListBlock(tuple(polls), title="Polls you have not voted in", empty="None."),
            ListBlock(tuple(questions), title="Questions you own", empty="None."),
        ]
    data: dict[str, Any] = {
        "signoffs": [line.ref for line in proposals],
        "polls": [line.ref for line in polls],
        "questions": [line.ref for line in questions],
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
