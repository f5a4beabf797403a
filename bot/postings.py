"""The engine's side of live messages: where an object's live message was posted, and what it
shows now. `adapters/postings.py` keeps them current; this module only reads and writes the
`postings` table and renders the view, scoped like every command (an object of another channel
is "not found")."""

from __future__ import annotations

from sqlalchemy import delete, select

from bot import kinds
from bot.common import load
from bot.context import Actor, Deps
from bot.parser import parse_ref
from bot.views import Reply
from storage.db import dialect_insert
from storage.models import Posting


def remember(deps: Deps, actor: Actor, ref: str, *, conversation: str, message_id: str) -> None:
    """Note that `ref`'s live message is (conversation, message_id) on the actor's platform.
    Idempotent: noting the same message twice keeps one row."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        table = Posting.__table__
        session.execute(
            dialect_insert(deps.db.dialect)(table)
            .values(
                object_kind=parsed.kind,
                object_id=found.id,
                platform=actor.platform,
                conversation=conversation,
                message_id=message_id,
                created_at=deps.clock.now(),
            )
            .on_conflict_do_nothing()
        )


def locations(deps: Deps, actor: Actor, ref: str) -> list[tuple[str, str]]:
    """(conversation, message id) of every live message of `ref` on the actor's platform,
    oldest first."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        rows = session.execute(
            select(Posting.conversation, Posting.message_id)
            .where(
                Posting.object_kind == parsed.kind,
                Posting.object_id == found.id,
                Posting.platform == actor.platform,
            )
            .order_by(Posting.id)
        ).all()
    return [(c, m) for c, m in rows]


def forget(deps: Deps, actor: Actor, ref: str, *, conversation: str, message_id: str) -> None:
    """The platform says this message is gone (deleted, channel archived): stop updating it."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        session.execute(
            delete(Posting).where(
                Posting.object_kind == parsed.kind,
                Posting.object_id == found.id,
                Posting.platform == actor.platform,
                Posting.conversation == conversation,
                Posting.message_id == message_id,
            )
        )


def live_view(deps: Deps, actor: Actor, ref: str) -> Reply:
    """What `ref`'s live message shows now (the reply its kind gives to `edit`)."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        return kinds.module(parsed.prefix).view(deps, session, actor, found, full=False)


__all__ = ["forget", "live_view", "locations", "remember"]
