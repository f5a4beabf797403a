"""Pieces every command uses: scoped lookups, the audit trail, channel settings, formatting."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select

from bot.context import Actor
from bot.errors import NotFound
from bot.parser import Ref
from bot.timeparse import format_local
from storage.db import UnitOfWork
from storage.models import AuditEntry, Channel, Decision, Item, Member, Poll, Question

MODELS: dict[str, Any] = {"D": Decision, "I": Item, "Q": Question, "P": Poll}
KIND_NAMES = {"D": "decision", "I": "item", "Q": "question", "P": "poll"}
PREFIX_OF = {"decision": "D", "item": "I", "question": "Q", "poll": "P"}
T = TypeVar("T")


def ref_of(kind: str, number: int) -> str:
    return f"{PREFIX_OF[kind]}-{number}"


def load(session: UnitOfWork, actor: Actor, ref: Ref, *, for_update: bool = False) -> Any:
    """The object with this id in the actor's channel, or NotFound — the same answer whether it
    doesn't exist or lives elsewhere, so titles of private channels never leak."""
    model = MODELS[ref.prefix]
    stmt = select(model).where(
        model.workspace == actor.workspace,
        model.channel == actor.channel,
        model.number == ref.number,
    )
    if for_update:
        stmt = stmt.with_for_update()
    found = session.execute(stmt).scalar_one_or_none()
    if found is None:
        raise NotFound(f"{ref} not found in this channel.")
    return found


def audit(
    session: UnitOfWork,
    actor: Actor,
    *,
    now: datetime,
    action: str,
    kind: str,
    obj: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            workspace=actor.workspace,
            channel=actor.channel,
            actor=actor.user,
            at=now,
            action=action,
            object_kind=kind,
            object_id=obj.id,
            object_ref=ref_of(kind, obj.number),
            before=before,
            after=after,
        )
    )


def history(session: UnitOfWork, kind: str, object_id: int) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_kind == kind, AuditEntry.object_id == object_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return list(session.execute(stmt).scalars())


def describe_change(entry: AuditEntry) -> str:
    """One history line: `edit: title "A" → "B"`."""
    before, after = entry.before or {}, entry.after or {}
    changes = []
    for key in after:
        if key in before and before[key] != after[key]:
            changes.append(f"{key} {_short(before[key])} → {_short(after[key])}")
        elif key not in before and entry.action not in ("create",):
            changes.append(f"{key} {_short(after[key])}")
    detail = "; ".join(changes)
    return f"{entry.action}" + (f": {detail}" if detail else "")


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f'"{text[:60]}"' if isinstance(value, str) else text[:60]


def channel_settings(session: UnitOfWork, actor: Actor) -> Channel:
    found = session.get(Channel, (actor.workspace, actor.channel))
    if found is None:
        found = Channel(workspace=actor.workspace, channel=actor.channel, platform=actor.platform)
        session.add(found)
    return found


def channel_tz(session: UnitOfWork, actor: Actor) -> str:
    """The zone to read and show times in: the person's own if the platform told us, else the
    channel's (set with `digest … tz:`), else UTC."""
    if actor.tz:
        return actor.tz
    found = session.get(Channel, (actor.workspace, actor.channel))
    return (found.tz if found and found.tz else None) or "UTC"


def seen(session: UnitOfWork, actor: Actor, now: datetime) -> None:
    """Remember that this person is in this channel (participation counts them)."""
    member = session.get(Member, (actor.workspace, actor.channel, actor.user))
    if member is None:
        session.add(
            Member(workspace=actor.workspace, channel=actor.channel, user=actor.user, last_seen=now)
        )
    else:
        member.last_seen = now


def when(moment: datetime | None, tz: str) -> str:
    return format_local(moment, tz) if moment else "—"


def day(moment: datetime, tz: str) -> str:
    return format_local(moment, tz, with_zone=False)[4:14]


def tags_of(obj: Any) -> list[str]:
    return [t.tag for t in obj.tags]


def clean_tag(text: str) -> str:
    return text.strip().lstrip("#").lower()[:64]
