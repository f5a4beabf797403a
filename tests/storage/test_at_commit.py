"""Work queued for a transaction's end (`storage.db.at_commit`) runs once, last, with everything
queued under its key, and only for what the transaction keeps: a savepoint that rolls back takes
its items with it, and a transaction that rolls back runs nothing. A poll's running tally is
moved this way (bot/polls/tallies.py), so these are the rules its numbers live by."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from sqlalchemy import text

from storage.db import Database, at_commit, in_savepoint, queued


class Boom(Exception):
    pass


def test_queued_work_runs_once_at_commit_without_what_a_rolled_back_savepoint_queued(
    db_url: str,
) -> None:
    db = Database(db_url)
    ran: list[tuple[str, list[Any]]] = []

    def run_a(_session: Any, items: list[Any]) -> None:
        ran.append(("a", list(items)))

    def run_b(_session: Any, items: list[Any]) -> None:
        ran.append(("b", list(items)))

    try:
        with db.uow() as session:
            at_commit(session, "a", run_a, 1)
            with pytest.raises(Boom), in_savepoint(session):
                at_commit(session, "a", run_a, 2)
                at_commit(session, "b", run_b, "x")
                raise Boom
            with in_savepoint(session):
                at_commit(session, "b", run_b, "y")
            at_commit(session, "a", run_a, 3)
            assert queued(session, "a") == [1, 3] and queued(session, "b") == ["y"]
            assert ran == []  # nothing runs before the commit
        assert ran == [("a", [1, 3]), ("b", ["y"])]
    finally:
        db.dispose()


def test_a_transaction_that_rolls_back_runs_nothing_it_queued(db_url: str) -> None:
    db = Database(db_url)
    ran: list[list[Any]] = []
    try:
        with pytest.raises(Boom), db.uow() as session:
            at_commit(session, "a", lambda _s, items: ran.append(items), 1)
            raise Boom
        with db.uow() as session:  # a new transaction starts with nothing queued
            assert queued(session, "a") == []
        assert ran == []
    finally:
        db.dispose()


def test_a_unit_of_work_joined_to_another_queues_for_the_outer_commit(db_url: str) -> None:
    """The inbox runs a command `joined` to its own transaction: the command's units of work
    are savepoints, and what they queue runs at the inbox's commit — or not at all, for the one
    that failed."""
    db = Database(db_url)
    ran: list[list[Any]] = []
    try:
        with db.uow() as outer, db.joined(outer):
            with db.uow() as inner:
                at_commit(inner, "k", lambda _s, items: ran.append(items), "kept")
            with pytest.raises(Boom), db.uow() as inner:
                at_commit(inner, "k", lambda _s, items: ran.append(items), "dropped")
                raise Boom
            assert ran == []
        assert ran == [["kept"]]
    finally:
        db.dispose()


def test_keys_run_in_one_order_whatever_order_they_were_queued_in(db_url: str) -> None:
    db = Database(db_url)
    ran: list[str] = []
    try:
        for order in (["b", "a", "c"], ["c", "b", "a"]):
            with db.uow() as session:
                for key in order:
                    at_commit(session, key, lambda _s, items: ran.extend(items), key)
        assert ran == ["a", "b", "c", "a", "b", "c"]
    finally:
        db.dispose()


def test_two_transactions_locking_two_rows_at_commit_in_opposite_orders_both_commit(
    db_url: str,
) -> None:
    """Two groups of votes, each on the same two polls queued in opposite orders, commit side by
    side on PostgreSQL: each locks the polls' rows at its end. Run in the order each was queued,
    both would hold one row and wait for the other's (a deadlock: PostgreSQL fails one after a
    second); in the shared order, the second waits for the first and then goes on."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    db = Database(db_url)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE locked (k TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO locked VALUES ('a'), ('b')"))
    both_hold_one = threading.Barrier(2)
    errors: list[BaseException] = []

    def lock(session: Any, items: list[Any]) -> None:
        session.execute(text("SELECT k FROM locked WHERE k = :k FOR UPDATE"), {"k": items[0]})
        with contextlib.suppress(threading.BrokenBarrierError):
            both_hold_one.wait(timeout=1.5)  # the other got no row: it waits for this one's

    def group(order: list[str]) -> None:
        try:
            with db.uow() as session:
                for key in order:
                    at_commit(session, key, lock, key)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=group, args=(o,)) for o in (["a", "b"], ["b", "a"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
    finally:
        db.dispose()
