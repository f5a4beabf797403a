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

from sqlalchemy import func, select
from sqlalchemy import text as sql

from storage.db import UnitOfWork, dialect_insert
from storage.models import Ballot


def _dialect(session: UnitOfWork) -> str:
    return session.get_bind().dialect.name


def exists(session: UnitOfWork, poll_id: int, key: str) -> bool:
    """Has this voter key a ballot? A count, not the ballot's id: nothing a log shows here
    identifies the ballot."""
    stmt = (
        select(func.count())
        .select_from(Ballot)
        .where(Ballot.poll_id == poll_id, Ballot.voter_key == key)
    )
    return bool(session.execute(stmt).scalar_one())


def read_own(session: UnitOfWork, poll_id: int, key: str) -> tuple[Any, str | None] | None:
    """The voter's stored (choice, reason), or None; read so that no log shows the row."""
    mark = "?" if _dialect(session) == "sqlite" else "%s"
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            f"SELECT choice, reason FROM ballots WHERE poll_id = {mark} AND voter_key = {mark}",
            (poll_id, key),
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    choice = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    return choice, row[1]


def read_choice(session: UnitOfWork, poll_id: int, key: str) -> Any:
    """A named poll's voter's stored choice, or None."""
    stmt = select(Ballot.choice).where(Ballot.poll_id == poll_id, Ballot.voter_key == key)
    return session.execute(stmt).scalar_one_or_none()


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
    table = Ballot.__table__
    changes: dict[str, Any] = {"choice": choice}
    if not keep_reason:
        changes["reason"] = reason
    session.execute(
        dialect_insert(_dialect(session))(table)
        .values(id=uuid.uuid4().hex, poll_id=poll_id, voter_key=key, choice=choice, reason=reason)
        .on_conflict_do_update(index_elements=[table.c.poll_id, table.c.voter_key], set_=changes)
    )


_SQLITE_BATCH = sql(
    "INSERT INTO ballots (rowid, id, poll_id, voter_key, choice, reason) "
    "VALUES (:rowid, :id, :poll_id, :voter_key, :choice, :reason) "
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
    before: dict[str, Any] = dict(
        session.execute(
            select(Ballot.voter_key, Ballot.choice).where(
                Ballot.poll_id == poll_id, Ballot.voter_key.in_(keys)
            )
        ).all()
    )
    if _dialect(session) == "sqlite":
        session.execute(
            _SQLITE_BATCH,
            [
                {
                    "rowid": secrets.randbits(62),
                    "id": uuid.uuid4().hex,
                    "poll_id": poll_id,
                    "voter_key": key,
                    "choice": json.dumps(choice),
                    "reason": reason,
                }
                for key, choice, reason in batch
            ],
        )
    else:
        table = Ballot.__table__
        stmt = dialect_insert(_dialect(session))(table).values(
            [
                {
                    "id": uuid.uuid4().hex,
                    "poll_id": poll_id,
                    "voter_key": key,
                    "choice": choice,
                    "reason": reason,
                }
                for key, choice, reason in batch
            ]
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.poll_id, table.c.voter_key],
                set_={"choice": stmt.excluded.choice, "reason": stmt.excluded.reason},
            )
        )
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
    "exists",
    "named",
    "put_batch",
    "read_choice",
    "read_own",
    "reasons",
    "write",
]
