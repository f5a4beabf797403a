"""Ballot rows, written so that an anonymous poll's storage links nobody to a choice.

Each database leaks write order its own way, and each needs its own counter-measure:

- SQLite's hidden rowid counts up in insertion order, just as participation and the audit trail
  do; an anonymous ballot gets a random rowid instead.
- PostgreSQL stamps each row with the transaction that wrote it (`xmin`) and places it physically
  in write order (`ctid`); an anonymous vote rewrites all of the poll's ballots in random order in
  one statement, so every ballot carries the same transaction and a shuffled position. Two such
  rewrites of one poll would deadlock on each other's rows, so they take a per-poll advisory lock.

An anonymous voter's own ballot is read on the raw DBAPI cursor: SQLAlchemy's debug log prints
every row it fetches, and that row, read in the voter's own request, would sit in the log beside
their user id.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy import text as sql

from storage.db import UnitOfWork, dialect_insert, raw
from storage.models import Ballot

ANONYMOUS_LOCK_SPACE = 0x416C6E  # an advisory-lock namespace of our own


def _dialect(session: UnitOfWork) -> str:
    return session.get_bind().dialect.name


def lock_for_anonymous_vote(session: UnitOfWork, poll_id: int) -> None:
    """One anonymous vote per poll at a time on PostgreSQL (see the module docstring)."""
    if _dialect(session) == "postgresql":
        session.execute(
            sql("SELECT pg_advisory_xact_lock(:space, :poll)"),
            {"space": ANONYMOUS_LOCK_SPACE, "poll": poll_id},
        )


def read_choice(session: UnitOfWork, poll_id: int, key: str, *, anonymous: bool) -> Any:
    """The voter's stored choice, or None. On the raw cursor, whatever the poll (see the module
    docstring): every vote reads it, and the raw read is also the cheapest."""
    row = raw(
        session, "SELECT choice FROM ballots WHERE poll_id = ? AND voter_key = ?", (poll_id, key)
    )
    if row is None:
        return None
    return json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]


def _upsert(dialect: str, keep_reason: bool) -> Any:
    """The ballot's insert-or-replace, built once per database and kind (see `write`)."""
    shape = (dialect, keep_reason)
    if shape not in _UPSERTS:
        table = Ballot.__table__
        changes = {"choice": bindparam("p_choice", type_=table.c.choice.type)}
        if not keep_reason:
            changes["reason"] = bindparam("p_reason", type_=table.c.reason.type)
        _UPSERTS[shape] = (
            dialect_insert(dialect)(table)
            .values(
                id=bindparam("p_id"),
                poll_id=bindparam("p_poll"),
                voter_key=bindparam("p_key"),
                choice=bindparam("p_choice", type_=table.c.choice.type),
                reason=bindparam("p_reason", type_=table.c.reason.type),
            )
            .on_conflict_do_update(
                index_elements=[table.c.poll_id, table.c.voter_key], set_=changes
            )
        )
    return _UPSERTS[shape]


_UPSERTS: dict[tuple[str, bool], Any] = {}


def write(
    session: UnitOfWork,
    poll_id: int,
    key: str,
    choice: Any,
    *,
    anonymous: bool,
    reason: str | None = None,
    keep_reason: bool = False,
) -> None:
    """Insert or replace the voter's ballot in one statement, so two concurrent votes of one
    person leave one ballot; anonymous ballots are then hidden in the poll's physical order.
    The reason is replaced with the choice, unless `keep_reason` (a toggle that changes the
    ballot without a word about why) leaves the stored one as it is."""
    dialect = _dialect(session)
    session.execute(
        _upsert(dialect, keep_reason),
        {
            "p_id": uuid.uuid4().hex,
            "p_poll": poll_id,
            "p_key": key,
            "p_choice": choice,
            "p_reason": reason,
        },
    )
    if not anonymous:
        return
    if dialect == "sqlite":
        session.execute(
            sql("UPDATE ballots SET rowid = :rowid WHERE poll_id = :poll AND voter_key = :key"),
            {"rowid": secrets.randbits(62), "poll": poll_id, "key": key},
        )
    elif dialect == "postgresql":
        session.execute(
            sql(
                "WITH moved AS (DELETE FROM ballots WHERE poll_id = :poll "
                "RETURNING id, poll_id, voter_key, choice, reason) "
                "INSERT INTO ballots (id, poll_id, voter_key, choice, reason) "
                "SELECT id, poll_id, voter_key, choice, reason FROM moved ORDER BY random()"
            ),
            {"poll": poll_id},
        )


def choices(session: UnitOfWork, poll_id: int) -> list[Any]:
    """Every ballot's choice of a poll, in no particular order."""
    return list(session.execute(select(Ballot.choice).where(Ballot.poll_id == poll_id)).scalars())


def reasons(session: UnitOfWork, poll_id: int) -> list[str]:
    """The reasons given in a poll, text only: no key, no choice, no order worth keeping (the
    caller shuffles them), so an anonymous poll's reasons link to nobody."""
    stmt = select(Ballot.reason).where(Ballot.poll_id == poll_id, Ballot.reason.is_not(None))
    return [r for r in session.execute(stmt).scalars() if r]


def named(
    session: UnitOfWork, poll_id: int, *, with_reason: bool = False
) -> list[tuple[str, Any, str | None]]:
    """(voter, choice, reason) of each ballot — or only of those with a reason — of a poll whose
    ballots are kept under the voter's own id; never call it for an anonymous poll, whose keys
    name nobody."""
    stmt = (
        select(Ballot.voter_key, Ballot.choice, Ballot.reason)
        .where(Ballot.poll_id == poll_id)
        .order_by(Ballot.voter_key)
    )
    if with_reason:
        stmt = stmt.where(Ballot.reason.is_not(None))
    return [(k, c, r) for k, c, r in session.execute(stmt).all()]


__all__ = [
    "ANONYMOUS_LOCK_SPACE",
    "choices",
    "lock_for_anonymous_vote",
    "named",
    "read_choice",
    "reasons",
    "write",
]
