"""Ballot rows, written so that an anonymous poll's storage links nobody to a choice.

A named poll's ballot is written by the vote itself (`write`). An anonymous poll's ballots arrive
in shuffled batches (`put_batch`, from `bot/polls/batches.py`), never in a transaction that also
writes participation, and each database's write order is hidden within the batch:

- SQLite's hidden rowid would count up in insertion order; an anonymous ballot gets a random one.
- PostgreSQL stamps each row with the transaction that wrote it (`xmin`) and places it in write
  order (`ctid`): a batch is one statement in shuffled order, so its rows share one `xmin` and
  their order within it is random. Old rows are never rewritten.

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

from storage.db import UnitOfWork, dialect_insert, driver, raw, raw_all
from storage.models import Ballot


def _dialect(session: UnitOfWork) -> str:
    return session.get_bind().dialect.name


def read_own(session: UnitOfWork, poll_id: int, key: str) -> tuple[Any, str | None] | None:
    """The voter's stored (choice, reason), or None; on the raw cursor, so no log shows the row."""
    row = raw(
        session,
        "SELECT choice, reason FROM ballots WHERE poll_id = ? AND voter_key = ?",
        (poll_id, key),
    )
    if row is None:
        return None
    return _json(row[0]), row[1]


def _json(value: Any) -> Any:
    """A JSON column's value as read on the raw cursor (SQLite gives text, psycopg values)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def read_choice(session: UnitOfWork, poll_id: int, key: str) -> Any:
    """The voter's stored choice, or None (on the raw cursor too: every named vote reads it,
    and the raw read is also the cheapest)."""
    found = read_own(session, poll_id, key)
    return None if found is None else found[0]


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
    reason: str | None = None,
    keep_reason: bool = False,
) -> None:
    """Insert or replace a named poll's ballot in one statement, so two concurrent votes of one
    person leave one ballot. The reason is replaced with the choice, unless `keep_reason` (a
    toggle that changes the ballot without a word about why) leaves the stored one as it is."""
    session.execute(
        _upsert(_dialect(session), keep_reason),
        {
            "p_id": uuid.uuid4().hex,
            "p_poll": poll_id,
            "p_key": key,
            "p_choice": choice,
            "p_reason": reason,
        },
    )


_BATCH_SQLITE = (
    "INSERT INTO ballots (rowid, id, poll_id, voter_key, choice, reason) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (poll_id, voter_key) DO UPDATE SET choice = excluded.choice, "
    "reason = excluded.reason"
)
_BATCH_POSTGRES = (
    "INSERT INTO ballots (id, poll_id, voter_key, choice, reason) VALUES {rows} "
    "ON CONFLICT (poll_id, voter_key) DO UPDATE SET choice = excluded.choice, "
    "reason = excluded.reason"
)


def put_batch(
    session: UnitOfWork, poll_id: int, batch: list[tuple[str, Any, str | None]]
) -> list[tuple[Any, Any]]:
    """Insert or replace a batch of anonymous ballots (key, choice, reason), in the order given
    — the caller shuffles it — and return each one's (previous choice or None, new choice), in
    no order that names anyone, for the running tally."""
    keys = [key for key, _, _ in batch]
    if not keys:
        return []
    # On the raw cursor, like `read_own`: no row log, and nothing built per batch but the
    # placeholders (a SQLAlchemy multi-row insert cost more to build than to run).
    marks = ", ".join("?" * len(keys))
    earlier = f"SELECT voter_key, choice FROM ballots WHERE poll_id = ? AND voter_key IN ({marks})"
    dialect, connection = driver(session)
    if dialect.name == "sqlite":
        before = dict(raw_all(session, earlier, (poll_id, *keys)))
        cursor = connection.cursor()
        try:
            # Each row gets a random rowid: SQLite's would count up in insertion order.
            cursor.executemany(
                _BATCH_SQLITE,
                [
                    (secrets.randbits(62), uuid.uuid4().hex, poll_id, key, json.dumps(c), reason)
                    for key, c, reason in batch
                ],
            )
        finally:
            cursor.close()
    else:
        # One statement, one round trip: the earlier ballots as they were before it (every
        # part of a WITH sees one snapshot) and the insert, whose rows share the
        # transaction's xmin and lie in the heap in the order given (shuffled).
        rows = ", ".join(["(?, ?, ?, ?::json, ?)"] * len(batch))
        values = [
            value
            for key, c, reason in batch
            for value in (uuid.uuid4().hex, poll_id, key, json.dumps(c), reason)
        ]
        statement = (
            f"WITH earlier AS ({earlier}), written AS ({_BATCH_POSTGRES.format(rows=rows)}) "
            "SELECT voter_key, choice FROM earlier"
        )
        before = dict(raw_all(session, statement, (poll_id, *keys, *values)))
    before = {key: _json(choice) for key, choice in before.items()}
    return [(before.get(key), choice) for key, choice, _ in batch]


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
    "choices",
    "named",
    "put_batch",
    "read_choice",
    "read_own",
    "reasons",
    "write",
]
