"""Open questions: ask with an owner and a due time, list, answer (optionally as a decision)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert

from bot import decisions
from bot.common import (
    audit,
    channel_tz,
    channel_tz_column,
    channel_tz_read,
    history_view,
    load,
    when,
)
from bot.context import Actor, Deps, Event
from bot.errors import Conflict, UsageError
from bot.paging import Listing
from bot.parser import Command, join_text, parse_ref, parse_user
from bot.timeparse import parse_when
from bot.views import Context, Heading, Later, Line, ListBlock, Reply, Section, counted, mention
from storage.db import UnitOfWork, sql_constant
from storage.models import Decision, Question

FILTERS = ("open", "overdue", "mine", "all")
_Q = cast(Table, Question.__table__)
_QUESTION_INSERT = insert(_Q)


def _listing(*where: Any) -> Listing:
    """A `questions` filter's page, built once and bound per call (`scope_workspace`,
    `scope_channel`, `now`, `user`), on the raw cursor: the columns the list shows and the
    channel's zone. An ORM select built per call, its objects loaded, and the zone asked for
    apart cost 0.4 ms of an empty `questions`."""
    stmt = (
        _Q.select()
        .with_only_columns(
            _Q.c.number,
            _Q.c.text,
            _Q.c.owner,
            _Q.c.due_at,
            _Q.c.status,
            _Q.c.answer,
            channel_tz_column(bindparam("scope_workspace"), bindparam("scope_channel")),
        )
        .where(
            _Q.c.workspace == bindparam("scope_workspace"),
            _Q.c.channel == bindparam("scope_channel"),
            *where,
        )
        .order_by(_Q.c.number.desc())
    )
    return Listing(stmt)


_OPEN = _Q.c.status == sql_constant("open")
_LISTINGS = {
    "open": _listing(_OPEN),
    "overdue": _listing(_OPEN, _Q.c.due_at.is_not(None), _Q.c.due_at < bindparam("now")),
    "mine": _listing(_OPEN, _Q.c.owner == bindparam("user")),
    "all": _listing(),
}


def snapshot(question: Question) -> dict[str, Any]:
    return {
        "text": question.text,
        "owner": question.owner,
        "due": question.due_at.isoformat() if question.due_at else None,
        "status": question.status,
        "answer": question.answer,
    }


def cmd_ask(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    text = join_text(cmd.args)
    if not text:
        raise UsageError("What is the question?", verb="ask")
    owner_text = cmd.option("owner")
    owner = parse_user(owner_text, verb="ask", mentions=actor.mention_map()) if owner_text else None
    with deps.db.uow() as session:
        now = deps.clock.now()
        tz = channel_tz(session, actor)
        due_text = cmd.option("due")
        due = parse_when(due_text, now=now, tz=tz, verb="ask") if due_text else None
        row = {
            "workspace": actor.workspace,
            "channel": actor.channel,
            "number": deps.db.next_number(session, actor.workspace, "Q"),
            "text": text,
            "owner": owner,
            "due_at": due,
            "status": "open",
            "created_by": actor.user,
            "created_at": now,
            "updated_at": now,
        }
        # A Core insert, not session.add + flush: the unit-of-work flush was a third of an
        # `ask`. The object below is only read (audit, event, reply), never changed or reloaded
        # in this transaction, so it stays out of the session.
        question = Question(**row)
        inserted: Any = session.execute(_QUESTION_INSERT, row)
        question.id = inserted.inserted_primary_key[0]
        after = snapshot(question)
        audit(
            session,
            actor,
            now=now,
            action="create",
            kind="question",
            obj=question,
            after=after,
        )
        deps.emit(
            session,
            Event(
                "question.opened",
                actor.workspace,
                actor.channel,
                actor.platform,
                {"id": f"Q-{question.number}", **after},
            ),
        )
        reply = view(deps, session, actor, question, full=False)
    reply.text = f"Opened Q-{question.number}: {text}"
    return reply


def cmd_questions(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = [w.lower() for w in cmd.words()]
    if len(words) > 1 or (words and words[0] not in FILTERS):
        raise UsageError("Choose open, overdue, mine or all.", verb="questions")
    which = words[0] if words else "open"
    with deps.db.uow() as session:
        now = deps.clock.now()
        params: dict[str, Any] = {
            "scope_workspace": actor.workspace,
            "scope_channel": actor.channel,
        }
        if which == "overdue":
            params["now"] = now
        elif which == "mine":
            params["user"] = actor.user
        page = _LISTINGS[which].page(session, params, cmd)
        rows = page.rows
        tz = channel_tz_read(session, actor, rows[0].channel_tz) if rows else "UTC"
        lines = tuple(Line(f"Q-{q.number}", q.text, _meta(q, now, tz)) for q in rows)
        data = Later(
            lambda: {
                "filter": which,
                "questions": [_json(q, now) for q in rows],
                "page": page.to_json(),
            }
        )
    blocks: list[Any] = [
        Heading(f"Questions · {which}"),
        ListBlock(lines, empty=f"No {which} questions."),
    ]
    more = page.more()
    if more:
        blocks.append(more)
    return Reply(
        ok=True,
        kind="list",
        text=f"{counted(page.total, 'question')} ({which})",
        blocks=blocks,
        data=data,
    )


def _meta(question: Any, now: Any, tz: str) -> str:
    """A listed question's line after its text (a row of `_listing`)."""
    parts = [question.status]
    if question.owner:
        parts.append(mention(question.owner))
    if question.due_at:
        overdue = question.status == "open" and question.due_at < now
        parts.append(("OVERDUE since " if overdue else "due ") + when(question.due_at, tz))
    return " · ".join(parts)


def _json(question: Any, now: Any) -> dict[str, Any]:
    """A listed question (a row of `_listing`) as `questions --json` gives it."""
    return {
        "id": f"Q-{question.number}",
        "text": question.text,
        "owner": question.owner,
        "due": question.due_at.isoformat() if question.due_at else None,
        "status": question.status,
        "answer": question.answer,
        "overdue": bool(question.status == "open" and question.due_at and question.due_at < now),
    }


def cmd_answer(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    if not cmd.args:
        raise UsageError("Give a question id and the answer.", verb="answer")
    ref = parse_ref(cmd.args[0].text, verb="answer", expect="Q")
    rest = list(cmd.args[1:])
    record = bool(rest) and not rest[-1].quoted and rest[-1].text.lower() == "decide"
    if record:
        rest = rest[:-1]
    text = join_text(rest)
    if not text:
        raise UsageError("What is the answer?", verb="answer")
    with deps.db.uow() as session:
        now = deps.clock.now()
        question = load(session, actor, ref, for_update=True)
        if question.status == "answered":
            raise Conflict(f"{ref} was already answered: {question.answer}")
        before = snapshot(question)
        question.status = "answered"
        question.answer = text
        question.answered_by = actor.user
        question.answered_at = now
        question.updated_at = now
        decision = None
        if record:
            decision = decisions.create(
                deps,
                session,
                actor,
                title=text,
                rationale=f"Answer to {ref}: {question.text}",
                owner=question.owner or actor.user,
                question_id=question.id,
            )
            question.decision_id = decision.id
        audit(
            session,
            actor,
            now=now,
            action="answer",
            kind="question",
            obj=question,
            before=before,
            after=snapshot(question) | ({"decision": f"D-{decision.number}"} if decision else {}),
        )
        deps.emit(
            session,
            Event(
                "question.answered",
                actor.workspace,
                actor.channel,
                actor.platform,
                {"id": str(ref), "answer": text},
            ),
        )
        reply = view(deps, session, actor, question, full=False)
    reply.text = f"Answered {ref}" + (f" and recorded D-{decision.number}" if decision else "")
    if decision:
        reply.data["decision"] = f"D-{decision.number}"
    return reply


def view(deps: Deps, session: UnitOfWork, actor: Actor, question: Question, *, full: bool) -> Reply:
    tz = channel_tz(session, actor)
    ref = f"Q-{question.number}"
    fields = [
        ("Status", question.status),
        ("Owner", mention(question.owner)),
        ("Due", when(question.due_at, tz)),
        ("Asked by", mention(question.created_by)),
    ]
    blocks: list[Any] = [Heading(f"{ref} · {question.text}"), Section("", tuple(fields))]
    data: dict[str, Any] = {
        "id": ref,
        "text": question.text,
        "owner": question.owner,
        "due": question.due_at.isoformat() if question.due_at else None,
        "status": question.status,
        "answer": question.answer,
    }
    if question.answer:
        blocks.append(
            Section(
                f"*Answer* ({mention(question.answered_by)}, "
                f"{when(question.answered_at, tz)}): {question.answer}"
            )
        )
    if question.decision_id:
        decision = session.get(Decision, question.decision_id)
        if decision:
            blocks.append(Context(f"Links: decided as D-{decision.number}"))
            data["decision"] = f"D-{decision.number}"
    if full:
        history_blocks, data["history"] = history_view(session, "question", question.id, tz)
        blocks += history_blocks
    return Reply(ok=True, kind="question", text=f"{ref}: {question.text}", blocks=blocks, data=data)


def edit(
    deps: Deps, session: UnitOfWork, actor: Actor, question: Question, cmd: Command
) -> dict[str, Any]:
    before = snapshot(question)
    tz = channel_tz(session, actor)
    for key, values in cmd.options.items():
        value = values[-1]
        if key in ("title", "text"):
            question.text = value.strip()
        elif key == "owner":
            question.owner = parse_user(value, verb="edit", mentions=actor.mention_map())
        elif key == "due":
            question.due_at = (
                None
                if value.lower() in ("none", "-")
                else parse_when(value, now=deps.clock.now(), tz=tz, verb="edit")
            )
        else:
            raise UsageError(
                f"A question has no `{key}` to edit; use text, owner or due.", verb="edit"
            )
    if not question.text:
        raise UsageError("The question cannot be empty.", verb="edit")
    return before
