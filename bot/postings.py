"""The engine's side of live messages: where an object's live message was posted, what it shows
now, and whose turn it is to bring it up to date. `adapters/postings.py` keeps them current; this
module only reads and writes the `postings` table and renders the view, scoped like every command
(an object of another channel is "not found").

Keeping a message current is shared by every replica through its `postings` row: a change counts
up `changes` (`mark_changed`); whoever claims the row (`claim_update`, one worker at a time,
PostgreSQL `SKIP LOCKED`) renders the object, edits the message and records the count it showed
(`finish_update`), with the earliest moment of the next edit. A row with changes > shown is
behind; the worker finishing an edit sees a change made meanwhile and claims again, so the last
state is always shown however the changes were spread over replicas.

An edit the platform refused leaves its row behind and counts it in `failures` (consecutive,
back to 0 at the next edit that goes out), with the moment it may be tried again, which the
caller chooses from that count. Until then nobody claims the row — not even a worker updating
the object's other messages after a new change: a message that keeps failing waits out its
retry, in the database, however many changes and replicas come by, and the periodic catch-up
(`behind`) offers it again when its moment has come.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from bot import kinds
from bot.common import load
from bot.context import Actor, Deps
from bot.errors import NotFound
from bot.grammar import KIND_BY_NOUN
from bot.parser import parse_ref
from bot.views import Reply
from storage.db import UnitOfWork, dialect_insert
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


def mark_changed(deps: Deps, actor: Actor, ref: str) -> int:
    """Count a change of `ref` on every live message of it on the actor's platform (after the
    change committed); returns how many messages are now behind. An object not found where the
    actor is has none to count (0): a refresh retrying that would retry for ever."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        try:
            found = load(session, actor, parsed)
        except NotFound:
            return 0
        changed = session.execute(
            update(Posting)
            .where(
                Posting.object_kind == parsed.kind,
                Posting.object_id == found.id,
                Posting.platform == actor.platform,
            )
            .values(changes=Posting.changes + 1)
            .returning(Posting.id)
        ).all()
    return len(changed)


def mark_behind(session: UnitOfWork, kind: str, object_id: int) -> None:
    """Count a change the scheduler made (not a person on one platform) on every live message
    of the object, in the caller's transaction; the next catch-up brings them up to date."""
    session.execute(
        update(Posting)
        .where(Posting.object_kind == kind, Posting.object_id == object_id)
        .values(changes=Posting.changes + 1)
    )


@dataclass(frozen=True)
class Behind:
    """A live message claimed for an update: where it is, the change count it will show, and
    how many edits of it failed in a row before this one."""

    id: int
    conversation: str
    message_id: str
    changes: int
    failures: int = 0


@dataclass(frozen=True)
class UpdateClaim:
    """Live messages of one object that this worker now updates, and when it may start."""

    messages: tuple[Behind, ...]
    not_before: datetime


def claim_update(
    deps: Deps, actor: Actor, ref: str, *, worker: str, lease: timedelta
) -> UpdateClaim | None:
    """Take the live messages of `ref` (actor's platform) that are behind and that no other
    worker is updating; None when there are none — up to date, or another worker's turn (it
    sees this change when it finishes). A message whose last edit failed is taken only once its
    retry is due: a new change does not bring its next try forward."""
    parsed = parse_ref(ref, verb="show")
    now = deps.clock.now()
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        rows = list(
            session.execute(
                select(Posting)
                .where(
                    Posting.object_kind == parsed.kind,
                    Posting.object_id == found.id,
                    Posting.platform == actor.platform,
                    Posting.changes > Posting.shown,
                    or_(
                        Posting.held_by.is_(None),
                        Posting.held_until <= now,
                        Posting.held_by == worker,
                    ),
                    or_(
                        Posting.failures == 0,
                        Posting.next_update_at.is_(None),
                        Posting.next_update_at <= now,
                    ),
                )
                .order_by(Posting.id)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not rows:
            return None
        for row in rows:
            row.held_by = worker
            row.held_until = now + lease
        not_before = max((r.next_update_at or now for r in rows), default=now)
        return UpdateClaim(
            tuple(Behind(r.id, r.conversation, r.message_id, r.changes, r.failures) for r in rows),
            not_before,
        )


def finish_update(
    deps: Deps,
    claim: UpdateClaim,
    *,
    worker: str,
    next_update_at: datetime,
    failed: Mapping[int, datetime] | None = None,
) -> None:
    """Record what the edited messages show now, when the next edit may go, and let go.

    A message whose edit `failed` (id → when to try it again) is let go without recording it as
    shown, one more failure counted: it stays behind, and `behind` offers it to the periodic
    catch-up once its retry has come. Recorded as shown, a failed last edit was never tried
    again — no later change came to do it. An edit that went out sets the count back to 0."""
    failed = failed or {}
    greatest = func.max if deps.db.dialect == "sqlite" else func.greatest
    with deps.db.uow() as session:
        for message in claim.messages:
            values: dict[str, Any] = {"held_by": None, "held_until": None}
            retry_at = failed.get(message.id)
            if retry_at is not None:
                values["next_update_at"] = retry_at
                values["failures"] = Posting.failures + 1
            else:
                values["next_update_at"] = next_update_at
                values["shown"] = greatest(Posting.shown, message.changes)
                values["failures"] = 0
            session.execute(
                update(Posting)
                .where(Posting.id == message.id, Posting.held_by == worker)
                .values(values)
            )


def behind(deps: Deps, platforms: list[str], *, limit: int = 100) -> list[tuple[Actor, str]]:
    """Objects with a live message left behind and nobody updating it (the worker updating it
    died, or its last edit failed) whose next edit may go now — for a failed edit, once its
    retry has come: (an actor in the object's channel on that platform, its ref), for a sweep
    to catch up."""
    now = deps.clock.now()
    out: list[tuple[Actor, str]] = []
    with deps.db.uow() as session:
        rows = session.execute(
            select(Posting.object_kind, Posting.object_id, Posting.platform)
            .where(
                Posting.platform.in_(platforms),
                Posting.changes > Posting.shown,
                or_(Posting.held_until.is_(None), Posting.held_until <= now),
                or_(Posting.next_update_at.is_(None), Posting.next_update_at <= now),
            )
            .distinct()
            .limit(limit)
        ).all()
        for noun, object_id, platform in rows:
            kind = KIND_BY_NOUN.get(noun)
            if kind is None:
                continue
            obj = session.get(kinds.model(kind.prefix), object_id)
            if obj is not None:
                actor = Actor(obj.workspace, obj.channel, user="", platform=platform)
                out.append((actor, f"{kind.prefix}-{obj.number}"))
    return out


def live_view(deps: Deps, actor: Actor, ref: str) -> Reply:
    """What `ref`'s live message shows now (the reply its kind gives to `edit`)."""
    parsed = parse_ref(ref, verb="show")
    with deps.db.uow() as session:
        found = load(session, actor, parsed)
        return kinds.module(parsed.prefix).view(deps, session, actor, found, full=False)


__all__ = [
    "Behind",
    "UpdateClaim",
    "behind",
    "claim_update",
    "finish_update",
    "forget",
    "live_view",
    "locations",
    "mark_changed",
    "remember",
]
