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

from storage.db import UnitOfWork, driver, raw, raw_all
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


# Every statement here runs on the raw DBAPI cursor (`storage.db.raw`): the same SQL on SQLite
# and PostgreSQL, nothing built per call (an anonymous vote reads and writes its pending ballot
# every time; building the statements cost more than running them), and no sealed row in
# SQLAlchemy's row log.

_HOLD = (
    "INSERT INTO pending_ballots (poll_id, lookup, sealed) VALUES (?, ?, ?) "
    "ON CONFLICT (poll_id, lookup) DO UPDATE SET sealed = excluded.sealed"
)


def hold(session: UnitOfWork, poll_id: int, lookup: str, sealed: bytes) -> None:
    """Insert or replace the voter's pending ballot (one per voter and poll)."""
    raw(session, _HOLD, (poll_id, lookup, sealed))


def read(session: UnitOfWork, poll_id: int, lookup: str) -> bytes | None:
    row = raw(
        session,
        "SELECT sealed FROM pending_ballots WHERE poll_id = ? AND lookup = ?",
        (poll_id, lookup),
    )
    return None if row is None else bytes(row[0])


_MINE = (
    "SELECT sealed, NULL, NULL FROM pending_ballots WHERE poll_id = ? AND lookup = ? "
    "UNION ALL SELECT NULL, choice, reason FROM ballots WHERE poll_id = ? AND voter_key = ?"
)


def read_with_counted(
    session: UnitOfWork, poll_id: int, lookup: str, key: str
) -> tuple[bytes | None, tuple[Any, str | None] | None]:
    """The voter's pending ballot (sealed) and their counted one (choice, reason), each None
    when they have none, in one statement: a vote reads both (on PostgreSQL, one round trip
    instead of two)."""
    return _mine(raw_all(session, _MINE, (poll_id, lookup, poll_id, key)))


# Every part of a WITH sees the snapshot the statement started with: `mine` reads the ballots
# as they were before `held` replaced the pending one.
_HOLD_AFTER_MINE = f"WITH mine AS ({_MINE}), held AS ({_HOLD}) SELECT * FROM mine"


def hold_after_reading(
    session: UnitOfWork, poll_id: int, lookup: str, key: str, sealed: bytes
) -> tuple[bytes | None, tuple[Any, str | None] | None]:
    """`read_with_counted`, then `hold`: what the voter had (pending, counted) before this
    ballot replaced it — on PostgreSQL in one statement, so one round trip instead of two; on
    SQLite, which takes no writes in a WITH, the two statements in turn (its writers run one
    at a time)."""
    if driver(session)[0].name == "sqlite":
        before = read_with_counted(session, poll_id, lookup, key)
        hold(session, poll_id, lookup, sealed)
        return before
    params = (poll_id, lookup, poll_id, key, poll_id, lookup, sealed)
    return _mine(raw_all(session, _HOLD_AFTER_MINE, params))


def _mine(
    rows: list[tuple[Any, ...]],
) -> tuple[bytes | None, tuple[Any, str | None] | None]:
    waiting: bytes | None = None
    counted: tuple[Any, str | None] | None = None
    for sealed, choice, reason in rows:
        if sealed is not None:
            waiting = bytes(sealed)
        else:
            counted = (json.loads(choice) if isinstance(choice, str | bytes) else choice, reason)
    return waiting, counted


def count(session: UnitOfWork, poll_id: int) -> int:
    row = raw(session, "SELECT count(*) FROM pending_ballots WHERE poll_id = ?", (poll_id,))
    return int(row[0]) if row else 0


def polls_with(session: UnitOfWork, at_least: int) -> list[int]:
    """Polls with at least this many ballots waiting."""
    rows = raw_all(
        session,
        "SELECT poll_id FROM pending_ballots GROUP BY poll_id HAVING count(*) >= ?",
        (at_least,),
    )
    return [int(poll_id) for (poll_id,) in rows]


def take(session: UnitOfWork, poll_id: int, *, wait: bool) -> tuple[list[tuple[str, bytes]], bool]:
    """The poll's pending ballots, locked until the transaction ends, and whether they are
    deleted already. Without `wait`, those another transaction holds (a concurrent flush, a
    voter replacing theirs) are left out rather than waited for (PostgreSQL). On SQLite, whose
    writers are serial anyway, they are deleted as they are read (DELETE … RETURNING: one
    statement where a read and a `drop` took two); the caller `put_back`s any it does not
    count. On PostgreSQL the caller `drop`s those it counts."""
    if driver(session)[0].name == "sqlite":
        statement = "DELETE FROM pending_ballots WHERE poll_id = ? RETURNING lookup, sealed"
        deleted = True
    else:
        statement = "SELECT lookup, sealed FROM pending_ballots WHERE poll_id = ?"
        statement += " FOR UPDATE" if wait else " FOR UPDATE SKIP LOCKED"
        deleted = False
    rows = raw_all(session, statement, (poll_id,))
    return [(lookup, bytes(sealed)) for lookup, sealed in rows], deleted


def put_back(session: UnitOfWork, poll_id: int, rows: list[tuple[str, bytes]]) -> None:
    """Pending ballots `take` deleted but that are not counted, as they were."""
    for lookup, sealed in rows:
        hold(session, poll_id, lookup, sealed)


def drop(session: UnitOfWork, poll_id: int, lookups: list[str]) -> None:
    """Delete these pending ballots, in one statement."""
    if not lookups:
        return
    marks = ", ".join("?" * len(lookups))
    raw(
        session,
        f"DELETE FROM pending_ballots WHERE poll_id = ? AND lookup IN ({marks})",
        (poll_id, *lookups),
    )


__all__ = [
    "SIZE",
    "PendingSeal",
    "Waiting",
    "count",
    "drop",
    "hold",
    "hold_after_reading",
    "pack",
    "polls_with",
    "put_back",
    "read",
    "read_with_counted",
    "take",
    "unpack",
]
