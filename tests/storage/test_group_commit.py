"""Group commit: writes queued while the writer is busy share one transaction; each caller gets
its own result after that commit, and a failing write fails its group only — or, with
savepoints, itself only, and a write that met a conflict with other transactions runs again
alone after its group. Both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.errors import (
    AdminShutdown,
    DeadlockDetected,
    QueryCanceled,
    SerializationFailure,
    UniqueViolation,
)
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from adapters.bootstrap import App
from storage import inbox as store
from storage.db import UnitOfWork, at_commit, conflicted, transient
from storage.group_commit import GroupCommit
from storage.models import InboxEntry
from tests.conftest import START


@pytest.fixture
def commits(app: App) -> Iterator[list[int]]:
    seen: list[int] = []

    def count(_: Any) -> None:
        seen.append(1)

    event.listen(app.db.engine, "commit", count)
    yield seen
    event.remove(app.db.engine, "commit", count)


def record(key: str) -> Any:
    def write(session: UnitOfWork) -> int | None:
        return store.record(
            session, platform="slack", key=key, payload="x", worker="w", now=START, until=START
        )

    return write


def held(until: threading.Event, started: threading.Event) -> Any:
    """A write that keeps the writer busy until the test lets it go."""

    def write(session: UnitOfWork) -> None:
        started.set()
        assert until.wait(30)

    return write


def test_writes_queued_behind_a_busy_writer_share_one_commit(app: App, commits: list[int]) -> None:
    writer = GroupCommit(app.db)
    release, started = threading.Event(), threading.Event()
    first = writer.submit(held(release, started))
    assert started.wait(30)
    queued = [writer.submit(record(f"slack:k{n}")) for n in range(40)]
    assert not any(f.done() for f in queued)  # nothing is answered before its commit
    before = len(commits)
    release.set()
    ids = [f.result(30) for f in queued]
    first.result(30)
    assert len(commits) - before == 1  # forty records, one transaction
    assert len(set(ids)) == 40 and None not in ids
    again = writer.submit(record("slack:k0")).result(30)
    assert again is None  # the key is taken: a repeat


def test_a_failing_write_fails_its_group_and_the_next_group_goes_on(app: App) -> None:
    writer = GroupCommit(app.db)
    release, started = threading.Event(), threading.Event()
    writer.submit(held(release, started))
    assert started.wait(30)

    def broken(session: UnitOfWork) -> None:
        raise ValueError("a bad write")

    good, bad = writer.submit(record("slack:good")), writer.submit(broken)
    release.set()
    with pytest.raises(ValueError):
        bad.result(30)
    with pytest.raises(ValueError):
        good.result(30)  # it shared the transaction that rolled back
    assert writer.submit(record("slack:later")).result(30) is not None
    with app.db.uow() as session:
        keys = set(session.scalars(select(InboxEntry.dedupe_key)))
        assert keys == {"slack:later"}
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_write_that_met_a_conflict_runs_again_alone_once_its_group_committed(
    app: App, commits: list[int]
) -> None:
    """PostgreSQL refuses a statement of a group for a deadlock with another transaction: that
    write is rolled back to its savepoint, the others commit, and it runs again in a
    transaction of its own, its caller getting that outcome. Any other error stays its own."""
    writer = GroupCommit(app.db, savepoints=True, again_alone=conflicted)
    release, started = threading.Event(), threading.Event()
    writer.submit(held(release, started))
    assert started.wait(30)
    tries: list[int] = []

    def clashing_once(session: UnitOfWork) -> int | None:
        tries.append(1)
        found = record("slack:clash")(session)  # its insert is taken back with its savepoint
        if len(tries) == 1:
            raise OperationalError("UPDATE …", {}, DeadlockDetected("deadlock detected"))
        return found

    def broken(session: UnitOfWork) -> None:
        record("slack:broken")(session)
        raise ValueError("a bad write")

    first, clash = writer.submit(record("slack:first")), writer.submit(clashing_once)
    bad, last = writer.submit(broken), writer.submit(record("slack:last"))
    before = len(commits)
    release.set()
    assert first.result(30) is not None and last.result(30) is not None
    assert clash.result(30) is not None  # run again, alone: its caller never saw the deadlock
    with pytest.raises(ValueError):
        bad.result(30)  # not a conflict: not run again
    assert len(tries) == 2
    assert len(commits) - before == 2  # the group, then the clash alone (the held wrote nothing)
    with app.db.uow() as session:
        keys = set(session.scalars(select(InboxEntry.dedupe_key)))
    assert keys == {"slack:first", "slack:clash", "slack:last"}


def test_a_conflict_is_known_wrapped_by_sqlalchemy_or_raised_by_psycopg_itself() -> None:
    """The vote path's statements run on the raw cursor (`PreparedUpsert`, `raw`), which raises
    psycopg's own error, not SQLAlchemy's wrapper: a deadlock there is a conflict all the same."""
    assert conflicted(OperationalError("UPDATE …", {}, DeadlockDetected("deadlock detected")))
    assert conflicted(DeadlockDetected("deadlock detected"))
    assert conflicted(SerializationFailure("could not serialize access"))
    assert not conflicted(UniqueViolation("duplicate key value"))
    assert not conflicted(ValueError("a bad write"))


def test_a_group_whose_commit_failed_for_a_named_error_runs_each_write_again_alone(
    app: App,
) -> None:
    """A group's own transaction fails at its COMMIT (a conflict there, or the connection lost,
    which `again_alone` names): each write of it runs again in a transaction of its own and its
    caller gets that outcome. An error `again_alone` does not name still fails the whole group."""
    writer = GroupCommit(app.db, savepoints=True, again_alone=conflicted)
    release, started = threading.Event(), threading.Event()
    writer.submit(held(release, started))
    assert started.wait(30)
    failures = [OperationalError("COMMIT", {}, DeadlockDetected("deadlock detected"))]

    def fails_its_commit_once(session: UnitOfWork) -> int | None:
        def commit(_session: Any, _items: list[Any]) -> None:
            if failures:
                raise failures.pop()

        at_commit(session, "fails-once", commit, None)
        return record("slack:fails-at-commit")(session)

    first, failing = writer.submit(record("slack:first")), writer.submit(fails_its_commit_once)
    last = writer.submit(record("slack:last"))
    release.set()
    assert None not in (first.result(30), failing.result(30), last.result(30))
    with app.db.uow() as session:
        keys = set(session.scalars(select(InboxEntry.dedupe_key)))
    assert keys == {"slack:first", "slack:fails-at-commit", "slack:last"}

    writer.submit(held(release := threading.Event(), started := threading.Event()))
    assert started.wait(30)

    def fails_its_commit(session: UnitOfWork) -> None:
        def commit(_session: Any, _items: list[Any]) -> None:
            raise ValueError("not a conflict")

        at_commit(session, "fails", commit, None)

    lost, failing = writer.submit(record("slack:lost")), writer.submit(fails_its_commit)
    release.set()
    for future in (lost, failing):
        with pytest.raises(ValueError):
            future.result(30)


def test_a_lost_connection_is_transient_and_so_is_a_conflict() -> None:
    """What a worker's group runs again alone (`storage.db.transient`): SQLAlchemy's error for
    a connection it had to invalidate (a restart, a backend ended), or a conflict."""
    lost = OperationalError("COMMIT", {}, Exception("terminating"), connection_invalidated=True)
    assert transient(lost)
    assert transient(DeadlockDetected("deadlock detected"))
    assert not transient(OperationalError("SELECT …", {}, Exception("timeout expired")))
    timed_out = QueryCanceled("canceling statement due to statement timeout")  # SQLSTATE 57014
    assert not transient(OperationalError("SELECT …", {}, timed_out))
    assert transient(OperationalError("SET …", {}, AdminShutdown("terminating connection")))
    assert not transient(ValueError("a bad write"))
