"""Work queued for a transaction's end (`storage.db.at_commit`) runs once, last, with everything
queued under its key, and only for what the transaction keeps: a savepoint that rolls back takes
its items with it, and a transaction that rolls back runs nothing. A poll's running tally is
moved this way (bot/polls/tallies.py), so these are the rules its numbers live by."""

from __future__ import annotations

from typing import Any

import pytest

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
