"""Anonymous ballots waiting to be counted: their sealed form and their statements.

A pending ballot is written in the vote's own transaction, beside the voter's participation row,
so it must tell a reader of the database files nothing: it is sealed (AES-GCM, `storage.sealing`)
and padded to one size whatever the choice or the reason, and it is found again by `lookup`, a
keyed hash under a key other than the ballot key's — the pending row cannot be matched to the
ballot row it later becomes. When it should become one is `bot/polls/batches.py`'s business.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from storage.db import UnitOfWork, dialect_insert
from storage.models import PendingBallot
from storage.sealing import Seal, derive

SIZE = 4608
"""Bytes every pending ballot is padded to before sealing: the longest choice (25 options with
points) and the longest reason (1,000 characters of 4 UTF-8 bytes) fit, so sizes differ never."""

_HEAD = struct.Struct(">HH")


@dataclass(frozen=True)
class Waiting:
    """A ballot as it waits: the ballot key it will be stored under, the choice, the reason."""

    key: str
    choice: Any
    reason: str | None


def pack(ballot: Waiting) -> bytes:
    """The ballot as bytes of exactly `SIZE` (more only for a ballot no poll can produce)."""
    head = json.dumps({"k": ballot.key, "c": ballot.choice}, separators=(",", ":")).encode()
    reason = b"\x00" if ballot.reason is None else ballot.reason.encode()
    body = _HEAD.pack(len(head), len(reason)) + head + reason
    size = SIZE if len(body) <= SIZE else -(-len(body) // 512) * 512
    return body.ljust(size, b"\x00")


def unpack(data: bytes) -> Waiting:
    head_len, reason_len = _HEAD.unpack_from(data)
    at = _HEAD.size
    head = json.loads(data[at : at + head_len])
    raw = data[at + head_len : at + head_len + reason_len]
    return Waiting(head["k"], head["c"], None if raw == b"\x00" else raw.decode())


class PendingSeal:
    """Seals a pending ballot bound to its row (poll, lookup): a sealed value copied onto
    another row does not open."""

    def __init__(self, secret: bytes) -> None:
        self._seal = Seal(derive(secret, b"align pending-ballot seal v1"))

    def close(self, poll_id: int, lookup: str, ballot: Waiting) -> bytes:
        return self._seal.close_bytes(pack(ballot), _bound(poll_id, lookup))

    def open(self, poll_id: int, lookup: str, sealed: bytes) -> Waiting:
        return unpack(self._seal.open_bytes(bytes(sealed), _bound(poll_id, lookup)))


def _bound(poll_id: int, lookup: str) -> bytes:
    return f"{poll_id}\x1f{lookup}".encode()


def _dialect(session: UnitOfWork) -> str:
    return session.get_bind().dialect.name


def hold(session: UnitOfWork, poll_id: int, lookup: str, sealed: bytes) -> None:
    """Insert or replace the voter's pending ballot (one per voter and poll)."""
    table = PendingBallot.__table__
    session.execute(
        dialect_insert(_dialect(session))(table)
        .values(poll_id=poll_id, lookup=lookup, sealed=sealed)
        .on_conflict_do_update(
            index_elements=[table.c.poll_id, table.c.lookup], set_={"sealed": sealed}
        )
    )


def read(session: UnitOfWork, poll_id: int, lookup: str) -> bytes | None:
    stmt = select(PendingBallot.sealed).where(
        PendingBallot.poll_id == poll_id, PendingBallot.lookup == lookup
    )
    found = session.execute(stmt).scalar_one_or_none()
    return None if found is None else bytes(found)


def count(session: UnitOfWork, poll_id: int) -> int:
    stmt = select(func.count()).select_from(PendingBallot).where(PendingBallot.poll_id == poll_id)
    return int(session.execute(stmt).scalar_one())


def polls_with(session: UnitOfWork, at_least: int) -> list[int]:
    """Polls with at least this many ballots waiting."""
    stmt = (
        select(PendingBallot.poll_id)
        .group_by(PendingBallot.poll_id)
        .having(func.count() >= at_least)
    )
    return list(session.execute(stmt).scalars())


def take(session: UnitOfWork, poll_id: int, *, wait: bool) -> list[tuple[str, bytes]]:
    """The poll's pending ballots, locked until the transaction ends. Without `wait`, those
    another transaction holds (a concurrent flush, a voter replacing theirs) are left out
    rather than waited for (PostgreSQL; SQLite's writers are serial anyway)."""
    stmt = (
        select(PendingBallot.lookup, PendingBallot.sealed)
        .where(PendingBallot.poll_id == poll_id)
        .with_for_update(skip_locked=not wait)
    )
    return [(lookup, bytes(sealed)) for lookup, sealed in session.execute(stmt).all()]


def drop(session: UnitOfWork, poll_id: int, lookups: list[str]) -> None:
    """Delete these pending ballots, in one statement."""
    session.execute(
        delete(PendingBallot).where(
            PendingBallot.poll_id == poll_id, PendingBallot.lookup.in_(lookups)
        )
    )


__all__ = [
    "SIZE",
    "PendingSeal",
    "Waiting",
    "count",
    "drop",
    "hold",
    "pack",
    "polls_with",
    "read",
    "take",
    "unpack",
]
