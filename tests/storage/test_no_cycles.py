"""Transactions leave nothing for the garbage collector: what they build is freed as soon as
they end. A cycle through a session (its `info` noting the transaction, which holds the
session) made every write of its own 43 objects of cyclic garbage, and after a load one
collection of them held the server's event loop for 110 ms."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import bindparam, select

from storage.db import Database, Prepared, driver
from storage.models import Counter


@pytest.fixture
def db(migrated_db_url: str) -> Iterator[Database]:
    database = Database(migrated_db_url)
    try:
        yield database
    finally:
        database.dispose()


def cyclic_garbage(run: Callable[[], object], times: int = 20) -> int:
    """What `times` runs leave that only the garbage collector frees."""
    run()  # first-use caches (compiled statements, the pool's connection) are not garbage
    gc.collect()
    gc.disable()
    try:
        for _ in range(times):
            run()
        return gc.collect()
    finally:
        gc.enable()


_COUNTERS = Prepared(
    lambda _dialect: select(Counter.last).where(Counter.workspace == bindparam("workspace"))
)


def test_a_write_of_its_own_on_the_raw_driver_leaves_no_cycle(db: Database) -> None:
    def write() -> None:
        with db.uow() as session:
            driver(session)
            _COUNTERS.rows(session, {"workspace": "w"})

    assert cyclic_garbage(write) == 0


def test_a_read_and_a_command_leave_no_cycle(db: Database) -> None:
    def read() -> None:
        with db.reading(), db.uow() as session:
            _COUNTERS.rows(session, {"workspace": "w"})

    def command() -> None:
        with db.command(), db.uow() as session:
            _COUNTERS.rows(session, {"workspace": "w"})

    assert cyclic_garbage(read) == 0
    assert cyclic_garbage(command) == 0
