"""A thread's read transactions (`Database.reading`) and its commands' transactions
(`Database.command`) share one Session, kept between them and reset after each: nothing of one
transaction — an object, a per-transaction cache in `info`, a connection — is there in the next,
which sees what was committed meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from storage.db import Database, driver
from storage.models import Counter


@pytest.fixture
def counted(migrated_db_url: str) -> Iterator[Database]:
    """A database holding one counter row, at 1."""
    db = Database(migrated_db_url)
    try:
        with db.uow() as session:
            session.add(Counter(workspace="w", kind="D", last=1))
        yield db
    finally:
        db.dispose()


def test_a_threads_reads_share_one_session_reset_between_them(counted: Database) -> None:
    db = counted
    with db.reading(), db.uow() as first:
        assert first.scalars(select(Counter)).one().last == 1
        first.info["a cache of this transaction"] = True
    with db.uow() as session:  # a write in between
        session.get_one(Counter, ("w", "D")).last = 2
    with db.reading(), db.uow() as second:
        assert second is first
        assert len(second.identity_map) == 0
        assert second.info == {}
        assert second.scalars(select(Counter)).one().last == 2  # not the object read before


def test_a_read_inside_a_read_and_a_read_on_another_thread_have_sessions_of_their_own(
    migrated_db_url: str,
) -> None:
    db = Database(migrated_db_url)
    others: list[object] = []

    def elsewhere() -> None:
        with db.reading(), db.uow() as session:
            others.append(session)

    try:
        with db.reading(), db.uow() as outer:
            with db.uow() as inner:
                assert inner is not outer
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
        with db.reading(), db.uow() as again:  # the outer one is kept, not the inner
            assert again is outer
        assert others and others[0] is not outer
        with db.uow() as write:  # a write transaction is a session of its own
            assert write is not outer
    finally:
        db.dispose()


def test_a_threads_commands_share_its_session_reset_between_them(counted: Database) -> None:
    db = counted
    with db.command(), db.uow() as first:
        first.get_one(Counter, ("w", "D")).last = 2
        first.info["a cache of this transaction"] = True
    with db.uow() as write:  # a write of its own, outside a command: a session of its own
        assert write is not first
        write.get_one(Counter, ("w", "D")).last = 3
    with db.reading(), db.uow() as read:  # reads share it too
        assert read is first
        assert read.info == {}
    with db.command(), db.uow() as second:
        assert second is first
        assert len(second.identity_map) == 0
        assert second.info == {}
        assert second.get_one(Counter, ("w", "D")).last == 3  # not the object changed before
        with db.uow() as part:  # a later unit of work of the command: the same transaction
            assert part is second


def test_a_command_that_fails_leaves_the_kept_session_as_new(migrated_db_url: str) -> None:
    db = Database(migrated_db_url)
    try:
        try:
            with db.command(), db.uow() as failed:
                failed.add(Counter(workspace="w", kind="D", last=1))
                failed.info["a cache of this transaction"] = True
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        with db.command(), db.uow() as again:
            assert again is failed
            assert again.info == {}
            assert len(again.new) == 0 and len(again.identity_map) == 0
            assert again.scalars(select(Counter)).all() == []  # rolled back
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_postgresql_read_sends_no_begin_and_the_next_write_is_a_transaction_again(
    migrated_db_url: str,
) -> None:
    """A read's statements run each on its own (storage.db `_READ_ON_POSTGRESQL`: no BEGIN or
    COMMIT round trips); the connection goes back to the pool as it came, so a write on it
    after the read is one transaction again — undone whole when it fails."""
    db = Database(migrated_db_url, pool_size=1, max_overflow=0)  # one connection, reused
    try:
        with db.reading(), db.uow() as read:
            connection = driver(read)[1].driver_connection  # psycopg's own
            assert connection.autocommit
            assert read.scalars(select(Counter)).all() == []
            assert connection.info.transaction_status.name == "IDLE"  # no transaction open
            used = connection
        with pytest.raises(RuntimeError), db.uow() as write:
            connection = driver(write)[1].driver_connection
            assert connection is used and not connection.autocommit
            write.add(Counter(workspace="w", kind="D", last=1))
            write.flush()
            assert connection.info.transaction_status.name == "INTRANS"
            raise RuntimeError("refused")
        with db.reading(), db.uow() as again:
            assert again.scalars(select(Counter)).all() == []  # the failed write left nothing
    finally:
        db.dispose()
