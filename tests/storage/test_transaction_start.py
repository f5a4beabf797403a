"""How a transaction starts: on SQLite a writer takes the write lock at its BEGIN, a read
(`Database.reading`) takes none and reads beside another process's writer — through the
dialect's own hook, so that SQLAlchemy dispatches no connection events around every statement
of every transaction (on both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.models import Decision
from tests.storage.test_timeouts import write_locked

CONNECTION_EVENTS = (
    "begin",
    "commit",
    "rollback",
    "engine_connect",
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)


def test_the_engine_listens_to_no_connection_event(migrated_db_url: str) -> None:
    """A single listener of any connection event (SQLite's BEGIN was one) has SQLAlchemy run
    the event dispatch at every statement, commit and rollback, of reads too."""
    db = Database(migrated_db_url)
    try:
        with db.reading(), db.uow() as session:
            assert session.execute(select(func.count()).select_from(Decision)).scalar_one() == 0
        listened = [name for name in CONNECTION_EVENTS if getattr(db.engine.dispatch, name)]
        assert listened == []
    finally:
        db.dispose()


def test_a_read_runs_beside_another_processes_writer_and_a_write_waits_for_it(
    migrated_sqlite_url: str,
) -> None:
    db = Database(migrated_sqlite_url, statement_timeout=0.3)
    try:
        with db.reading(), db.uow() as session:  # connected (setting WAL mode takes a lock)
            session.execute(text("SELECT 1"))
        with write_locked(migrated_sqlite_url):
            with db.reading(), db.uow() as session:  # BEGIN: no lock asked for
                assert session.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 0
            # BEGIN IMMEDIATE: the write lock, at the start, however the transaction goes on.
            with pytest.raises(OperationalError, match="database is locked"), db.uow() as session:
                session.execute(text("SELECT count(*) FROM decisions"))
        with db.uow() as session:  # the lock given back: a writer gets it
            session.execute(text("DELETE FROM decisions"))
    finally:
        db.dispose()
