"""A read transaction on PostgreSQL runs in autocommit (storage.db `_READ_ON_POSTGRESQL`); the
connection must go back to the pool as a transactional one whatever happened in the read, and
no write may ever run in autocommit — a read nested in a command or a write transaction
included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from storage.db import Database, driver
from storage.models import Counter

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def one_connection(migrated_db_url: str) -> Iterator[Database]:
    """A database of one pooled connection, so the next transaction gets the read's."""
    db = Database(migrated_db_url, pool_size=1, max_overflow=0, statement_timeout=0.3)
    try:
        yield db
    finally:
        db.dispose()


def _psycopg(session: object) -> object:
    return driver(session)[1].driver_connection  # type: ignore[arg-type]


def _a_write_is_one_transaction(db: Database) -> None:
    """A write on the pooled connection is a transaction: not autocommit, undone whole."""
    with pytest.raises(RuntimeError), db.uow() as write:
        connection = _psycopg(write)
        assert not connection.autocommit  # type: ignore[attr-defined]
        write.add(Counter(workspace="w", kind="D", last=1))
        write.flush()
        assert connection.info.transaction_status.name == "INTRANS"  # type: ignore[attr-defined]
        raise RuntimeError("refused")
    with db.uow() as again:
        assert again.scalars(select(Counter)).all() == []


def test_a_read_that_raises_midway_gives_back_a_transactional_connection(
    one_connection: Database,
) -> None:
    db = one_connection
    with pytest.raises(KeyError), db.reading(), db.uow() as read:
        assert read.scalars(select(Counter)).all() == []
        raise KeyError("midway")
    _a_write_is_one_transaction(db)


def test_a_read_whose_statement_fails_gives_back_a_transactional_connection(
    one_connection: Database,
) -> None:
    db = one_connection
    with pytest.raises(DBAPIError), db.reading(), db.uow() as read:
        read.execute(text("SELECT no_such_column FROM counters"))
    _a_write_is_one_transaction(db)


def test_a_read_cut_by_the_statement_timeout_gives_back_a_transactional_connection(
    one_connection: Database,
) -> None:
    db = one_connection
    with pytest.raises(DBAPIError) as caught, db.reading(), db.uow() as read:
        read.execute(text("SELECT pg_sleep(2)"))
    assert "statement timeout" in str(caught.value)
    _a_write_is_one_transaction(db)
    with pytest.raises(DBAPIError), db.reading(), db.uow() as read:  # the timeout still holds
        read.execute(text("SELECT pg_sleep(2)"))


def test_a_read_inside_a_write_transaction_leaves_the_write_a_transaction(
    migrated_db_url: str,
) -> None:
    db = Database(migrated_db_url, pool_size=2, max_overflow=0)
    try:
        with pytest.raises(RuntimeError), db.uow() as write:
            write.add(Counter(workspace="w", kind="D", last=1))
            write.flush()
            with db.reading(), db.uow() as read:
                assert read is not write
                assert _psycopg(read).autocommit  # type: ignore[attr-defined]
                assert read.scalars(select(Counter)).all() == []  # not committed yet
            assert not _psycopg(write).autocommit  # type: ignore[attr-defined]
            raise RuntimeError("refused")
        for _ in range(2):  # both pooled connections
            _a_write_is_one_transaction(db)
    finally:
        db.dispose()


def test_a_read_inside_a_joined_block_is_a_savepoint_of_the_write(
    one_connection: Database,
) -> None:
    db = one_connection
    with pytest.raises(RuntimeError), db.uow() as write:
        with db.joined(write), db.reading(), db.uow() as read:
            assert read is write
            assert not _psycopg(read).autocommit  # type: ignore[attr-defined]
            read.add(Counter(workspace="w", kind="D", last=1))
        raise RuntimeError("refused")
    _a_write_is_one_transaction(db)


def test_a_read_opening_a_command_leaves_the_commands_writes_in_its_transaction(
    one_connection: Database,
) -> None:
    """The first unit of work of a `command()` opens the command's transaction, which its later
    units of work (savepoints of it) write in: read or not, it is a transaction, not
    autocommit — else the later ones' SAVEPOINT fails, and a write in it commits alone."""
    db = one_connection
    with pytest.raises(RuntimeError), db.command():
        with db.reading(), db.uow() as read:
            assert not _psycopg(read).autocommit  # type: ignore[attr-defined]
            assert read.scalars(select(Counter)).all() == []
        with db.uow() as write:
            write.add(Counter(workspace="w", kind="D", last=1))
        raise RuntimeError("refused")
    with db.uow() as again:
        assert again.scalars(select(Counter)).all() == []
    _a_write_is_one_transaction(db)


def test_the_kept_session_after_a_read_runs_a_command_as_one_transaction(
    one_connection: Database,
) -> None:
    db = one_connection
    with db.reading(), db.uow() as read:
        assert _psycopg(read).autocommit  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), db.command():
        with db.uow() as first:
            assert first is read  # the kept session
            assert not _psycopg(first).autocommit  # type: ignore[attr-defined]
            first.add(Counter(workspace="w", kind="D", last=1))
        with db.uow() as second:
            second.add(Counter(workspace="w", kind="Q", last=1))
        raise RuntimeError("refused")
    with db.uow() as again:
        assert again.scalars(select(Counter)).all() == []
