"""Statements on the raw cursor (`raw`, `Prepared`) run in the transaction of the session they
are given, though the session's connection is looked up once per transaction (`driver`): in the
next transaction of the same kept session they run in that one; a savepoint's roll back takes
them back; a transaction an error left unusable refuses them as the session does."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from storage.db import Database, in_savepoint, raw, raw_all
from storage.models import Counter

_ADD = "INSERT INTO counters (workspace, kind, last) VALUES (?, ?, ?)"


def _kinds(db: Database) -> list[str]:
    with db.reading(), db.uow() as session:
        return sorted(kind for (kind,) in raw_all(session, "SELECT kind FROM counters", ()))


def test_raw_statements_follow_the_kept_sessions_transactions(migrated_db_url: str) -> None:
    db = Database(migrated_db_url)
    try:
        with db.command(), db.uow() as first:
            raw(first, _ADD, ("w", "A", 1))
        try:
            with db.command(), db.uow() as second:
                assert second is first  # the thread's kept session, in a new transaction
                raw(second, _ADD, ("w", "B", 1))
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        with db.command(), db.uow() as third:
            raw(third, _ADD, ("w", "C", 1))
            with db.uow() as part:  # a savepoint of the command's transaction
                raw(part, _ADD, ("w", "D", 1))
            try:
                with in_savepoint(third):
                    raw(third, _ADD, ("w", "E", 1))
                    raise RuntimeError("only the savepoint")
            except RuntimeError:
                pass
        assert _kinds(db) == ["A", "C", "D"]
    finally:
        db.dispose()


def test_a_transaction_an_error_left_unusable_refuses_raw_statements(
    migrated_db_url: str,
) -> None:
    db = Database(migrated_db_url)
    try:
        with pytest.raises(InvalidRequestError), db.uow() as session:
            raw(session, _ADD, ("w", "A", 1))
            session.add(Counter(workspace="w", kind="A", last=2))  # the same key again
            with pytest.raises(IntegrityError):
                session.flush()
            raw(session, _ADD, ("w", "B", 1))  # not run on the connection behind its back
        assert _kinds(db) == []
    finally:
        db.dispose()
