"""Pieces every command uses: scoped lookups, the audit trail, channel settings, formatting."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select

from bot import kinds
from bot.changes import describe_change
from bot.context import Actor
from bot.errors import NotFound
from bot.parser import Ref
from bot.timeparse import format_local, zone
from bot.views import Block, Divider, Line, ListBlock, mention
from storage.db import Prepared, PreparedUpsert, UnitOfWork
from storage.models import AuditEntry, Channel, Member

AUDIT_COLUMNS = (
    # What an audit row is written with (every column but its id): here and in the tests of
    # `Prepared` (tests/storage/test_prepared.py).
    "workspace",
    "channel",
    "actor",
    "at",
    "action",
    "object_kind",
    "object_id",
    "object_ref",
    "before",
    "after",
)
# On the raw cursor (`Prepared`), against the table: every change writes one, each vote too.
_AUDIT_INSERT = Prepared(
    lambda _dialect: insert(cast(Table, AuditEntry.__table__)).values(
        {name: bindparam(name) for name in AUDIT_COLUMNS}
    )
)


_LOADS: dict[tuple[str, bool, bool], Any] = {}


def load(
    session: UnitOfWork,
    actor: Actor,
    ref: Ref,
    *,
    for_update: bool = False,
    shared: bool = False,
) -> Any:
    """The object with this id in the actor's channel, or NotFound — the same answer whether it
    doesn't exist or lives elsewhere, so titles of private channels never leak. `for_update`
    locks the row for a change; `shared` locks it against changes while others share it (both
    in the same statement, so the row read is the row locked; SQLite ignores them, as its
    BEGIN IMMEDIATE already serialises writers). The statement is built once per shape and
    bound per call: building it cost as much as running it, on every command that names an
    object."""
    shape = (ref.prefix, for_update, shared)
    stmt = _LOADS.get(shape)
    if stmt is None:
        model = kinds.model(ref.prefix)
        stmt = select(model).where(
            model.workspace == bindparam("workspace"),
            model.channel == bindparam("channel"),
            model.number == bindparam("number"),
        )
        if for_update or shared:
            stmt = stmt.with_for_update(read=shared and not for_update)
        _LOADS[shape] = stmt
    params = {"workspace": actor.workspace, "channel": actor.channel, "number": ref.number}
    found = session.execute(stmt, params).scalar_one_or_none()
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
    """Write the audit row at once, as a Core insert: nothing reads it back in this transaction,
    and an ORM add cost a unit-of-work flush per change (a third of an `ask`'s CPU)."""
    _AUDIT_INSERT.run(
        session,
        {
            "workspace": actor.workspace,
            "channel": actor.channel,
            "actor": actor.user,
            "at": now,
            "action": action,
            "object_kind": kind,
            "object_id": obj.id,
            "object_ref": kinds.ref_of(kind, obj.number),
            "before": before,
            "after": after,
        },
    )


def history(session: UnitOfWork, kind: str, object_id: int) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_kind == kind, AuditEntry.object_id == object_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return list(session.execute(stmt).scalars())


def channel_settings(session: UnitOfWork, actor: Actor) -> Channel:
    # The caller may change the zone: forget what channel_tz remembered for this transaction.
    session.info.get(_TZ_CACHE, {}).pop((actor.workspace, actor.channel), None)
    found = session.get(Channel, (actor.workspace, actor.channel))
    if found is None:
        found = Channel(workspace=actor.workspace, channel=actor.channel, platform=actor.platform)
        session.add(found)
    return found


_TZ_CACHE = "align.channel_tz"


_CHANNELS = cast(Table, Channel.__table__)
_CHANNEL_TZ = select(_CHANNELS.c.tz).where(
    _CHANNELS.c.workspace == bindparam("workspace"), _CHANNELS.c.channel == bindparam("channel")
)


def channel_tz(session: UnitOfWork, actor: Actor) -> str:
    """The zone to read and show times in: the person's own if the platform told us, else the
    channel's (set with `digest … tz:`), else UTC."""
    if actor.tz:
        return actor.tz
    # Remembered per transaction: a command asks several times, and for a channel without
    # settings (the common case) each ask would otherwise be another SELECT.
    remembered: dict[tuple[str, str], str] = session.info.get(_TZ_CACHE, {})
    found = remembered.get((actor.workspace, actor.channel))
    if found is not None:
        return found
    # One column, not the ORM object: `session.get` cost a fifth of a listing.
    params = {"workspace": actor.workspace, "channel": actor.channel}
    stored = session.execute(_CHANNEL_TZ, params).scalar_one_or_none()
    return channel_tz_read(session, actor, stored)  # remembers it


def channel_tz_column(workspace: Any, channel: Any) -> Any:
    """The channel's stored zone (NULL when it has none) as a column of another statement, for
    `workspace` and `channel` (its `bindparam`s): a listing reads it with its rows instead of
    asking for it in a statement of its own — and with no rows, needs no zone at all. Give
    what it read to `channel_tz_read`."""
    return (
        select(_CHANNELS.c.tz)
        .where(_CHANNELS.c.workspace == workspace, _CHANNELS.c.channel == channel)
        .scalar_subquery()
        .label("channel_tz")
    )


def channel_tz_read(session: UnitOfWork, actor: Actor, stored: str | None) -> str:
    """`channel_tz`, given the channel's stored zone as read with another statement
    (`channel_tz_column`), and remembered for the transaction as `channel_tz` remembers it."""
    if actor.tz:
        return actor.tz
    remembered: dict[tuple[str, str], str] = session.info.setdefault(_TZ_CACHE, {})
    return remembered.setdefault((actor.workspace, actor.channel), stored or "UTC")


def seen(session: UnitOfWork, actor: Actor, now: datetime) -> None:
    """Remember that this person is in this channel (participation counts them). One upsert, so
    two first commands of a person at once cannot both insert the row."""
    _SEEN.run(
        session,
        {"workspace": actor.workspace, "channel": actor.channel, "user": actor.user},
        {"last_seen": now},
    )


# On the raw cursor: every first command of a person in a while writes it (each new voter).
_SEEN = PreparedUpsert(Member, ("workspace", "channel", "user"), ("last_seen",))


def when(moment: datetime | None, tz: str) -> str:
    return format_local(moment, tz) if moment else "—"


def day(moment: datetime, tz: str) -> str:
    """The local date, 2026-11-25 (`format_local`'s date part). Once per row of `decisions`:
    the date's own isoformat is a third of the cost of formatting the whole line with strftime
    and cutting the date out of it — the same text for any year of four digits."""
    local = moment.astimezone(zone(tz))
    if local.year < 1000:  # strftime does not pad the year to four digits
        return format_local(moment, tz, with_zone=False)[4:14]
    return local.date().isoformat()


def clean_tags(values: list[str]) -> list[str]:
    """Tags as typed (`tag:a tag:b` or `tags:a,b`), cleaned, without repeats, in order — the same
    reading for creating and editing."""
    return sorted({tag for value in values for t in value.split(",") if (tag := clean_tag(t))})


def tags_of(obj: Any) -> list[str]:
    return [t.tag for t in obj.tags]


def clean_tag(text: str) -> str:
    return text.strip().lstrip("#").lower()[:64]


def history_view(
    session: UnitOfWork, kind: str, object_id: int, tz: str, *, hide: tuple[str, ...] = ()
) -> tuple[list[Block], list[dict[str, Any]]]:
    """The History part of `show`: the blocks and the JSON, from the object's audit rows.
    `hide` leaves out actions that must not appear (a poll's individual votes)."""
    entries = [e for e in history(session, kind, object_id) if e.action not in hide]
    lines = tuple(Line(when(e.at, tz), describe_change(e, tz), mention(e.actor)) for e in entries)
    data = [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "before": e.before,
            "after": e.after,
        }
        for e in entries
    ]
    return [Divider(), ListBlock(lines, title="History")], data


__all__ = [
    "AUDIT_COLUMNS",
    "audit",
    "channel_settings",
    "channel_tz",
    "channel_tz_column",
    "channel_tz_read",
    "clean_tag",
    "clean_tags",
    "day",
    "history",
    "history_view",
    "load",
    "seen",
    "tags_of",
    "when",
]
