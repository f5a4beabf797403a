"""A pooled PostgreSQL connection is pinged on checkout only after it sat idle
(storage/db.py `ping_when_idle`): one given back moments ago goes straight to work, one idle for
longer is pinged first, and one that died while idle is replaced before anything runs on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from storage.db import PING_IDLE_AFTER, Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
"""PostgreSQL only: SQLite opens a file, there is no connection to ping."""


@pytest.fixture
def pg(db_url: str) -> Iterator[tuple[Database, Clock, list[int]]]:
    clock = Clock()
    db = Database(db_url, idle_clock=clock)
    pings: list[int] = []
    dialect = db.engine.dialect
    real_ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return real_ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    try:
        yield db, clock, pings
    finally:
        db.dispose()


def _backend(db: Database) -> int:
    with db.uow() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_given_back_moments_ago_is_not_pinged_and_an_idle_one_is(
    pg: tuple[Database, Clock, list[int]],
) -> None:
    db, clock, pings = pg
    first = _backend(db)  # a fresh connection: nothing to ping
    assert pings == []
    clock.now += PING_IDLE_AFTER / 2
    assert _backend(db) == first
    assert _backend(db) == first
    assert pings == []  # given back moments ago each time: straight to work
    clock.now += PING_IDLE_AFTER
    assert _backend(db) == first
    assert pings == [1]  # idle for longer: pinged once, and still alive


def test_a_connection_that_died_while_idle_is_replaced_before_anything_runs_on_it(
    pg: tuple[Database, Clock, list[int]], pg_admin: Any
) -> None:
    db, clock, pings = pg
    first = _backend(db)
    with pg_admin.connect() as admin:  # a restart, a failover, a proxy's idle timeout
        admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": first})
    clock.now += PING_IDLE_AFTER * 4
    second = _backend(db)  # would raise had the dead connection been used as it was
    assert second != first
    assert pings == [1]
