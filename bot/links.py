"""`link <ID> <ID>`: a decision linked to an item, a question, a poll or another decision, read
both ways — `show` of either names the other.

Links made by hand live in `links`, stored once with the decision first; the links a decision
gets by how it was made (superseded by, answers a question, from a poll) stay where they are.
Both objects must be in this channel: linking across channels would show one channel's title in
another.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from bot import kinds
from bot.common import audit, load
from bot.context import Actor, Deps
from bot.errors import Conflict, UsageError
from bot.grammar import KIND_BY_NOUN
from bot.parser import Command, Ref, parse_ref
from bot.views import Reply, Section
from storage.db import UnitOfWork
from storage.models import Link


def linked(session: UnitOfWork, kind: str, object_id: int) -> list[str]:
    """Ids of the objects linked by hand to this one (`kind` is a noun: `decision`)."""
    return linked_many(session, kind, [object_id]).get(object_id, [])


def linked_many(session: UnitOfWork, kind: str, object_ids: list[int]) -> dict[int, list[str]]:
    """`linked` for many objects of one kind at once (an export): one query for the links, one
    per kind of object they reach — not a few per object."""
    if not object_ids:
        return {}
    rows = session.execute(
        select(Link.from_kind, Link.from_id, Link.to_kind, Link.to_id).where(
            or_(
                and_(Link.from_kind == kind, Link.from_id.in_(object_ids)),
                and_(Link.to_kind == kind, Link.to_id.in_(object_ids)),
            )
        )
    ).all()
    ours = set(object_ids)
    pairs: list[tuple[int, str, int]] = []  # (ours, other kind's prefix, other id)
    for from_kind, from_id, to_kind, to_id in rows:
        if from_kind == kind and from_id in ours:
            pairs.append((from_id, KIND_BY_NOUN[to_kind].prefix, to_id))
        if to_kind == kind and to_id in ours:
            pairs.append((to_id, KIND_BY_NOUN[from_kind].prefix, from_id))
    numbers: dict[tuple[str, int], int] = {}
    for prefix in sorted({prefix for _, prefix, _ in pairs}):
        model = kinds.model(prefix)
        wanted = sorted({other for _, p, other in pairs if p == prefix})
        found = session.execute(select(model.id, model.number).where(model.id.in_(wanted)))
        numbers.update({(prefix, oid): number for oid, number in found.all()})
    refs: dict[int, set[tuple[str, int]]] = {}
    for own, prefix, other in pairs:
        if (prefix, other) in numbers:
            refs.setdefault(own, set()).add((prefix, numbers[(prefix, other)]))
    return {own: [f"{p}-{n}" for p, n in sorted(found)] for own, found in refs.items()}


def cmd_link(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 2:
        raise UsageError("Give two ids: a decision and what it relates to.", verb="link")
    first, second = (parse_ref(w, verb="link") for w in words)
    if first == second:
        raise UsageError(f"{first} cannot be linked to itself.", verb="link")
    if "D" not in (first.prefix, second.prefix):
        raise UsageError("One of the two must be a decision (D-n).", verb="link")
    with deps.db.uow() as session:
        now = deps.clock.now()
        objects = {ref: load(session, actor, ref) for ref in (first, second)}
        source, target = _ordered(first, second, objects)
        exists = session.execute(
            select(Link.id).where(
                Link.from_kind == source.kind,
                Link.from_id == objects[source].id,
                Link.to_kind == target.kind,
                Link.to_id == objects[target].id,
            )
        ).first()
        if exists is not None:
            raise Conflict(f"{first} and {second} are already linked.")
        session.add(
            Link(
                workspace=actor.workspace,
                channel=actor.channel,
                from_kind=source.kind,
                from_id=objects[source].id,
                to_kind=target.kind,
                to_id=objects[target].id,
                created_by=actor.user,
                created_at=now,
            )
        )
        for ref, other in ((first, second), (second, first)):
            audit(
                session,
                actor,
                now=now,
                action="link",
                kind=ref.kind,
                obj=objects[ref],
                after={"linked": str(other)},
            )
    text = f"Linked {first} and {second}."
    return Reply(
        ok=True,
        kind="link",
        text=text,
        blocks=[Section(text)],
        data={"linked": [str(first), str(second)]},
    )


def _ordered(first: Ref, second: Ref, objects: dict[Ref, Any]) -> tuple[Ref, Ref]:
    """The decision first; of two decisions, the older (so a link is stored one way only)."""
    if first.prefix != "D" or (second.prefix == "D" and objects[second].id < objects[first].id):
        return second, first
    return first, second


__all__ = ["cmd_link", "linked", "linked_many"]
