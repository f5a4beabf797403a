"""A PostgreSQL connection ended while it is being opened (a restart meeting its `SET
statement_timeout`, storage/db.py `_on_connect`) is an error of the moment like one lost later:
the work is tried again at once on a new connection (`attempted`) — not a request failed, its
clicker told "Something went wrong" (seen once in CI: tests/inbox/test_restarts_mid_stream.py,
three restarts, one acknowledged click not counted)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from storage.db import Database, disconnected, transient

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
"""PostgreSQL only: SQLite opens a file, there is no connection to lose."""


@pytest.fixture
def ended_while_connecting(db_url: str, pg_admin: Engine) -> Iterator[tuple[Database, list[int]]]:
    """A Database whose next new connection has its backend ended before the connection is
    set up (before storage/db.py's own "connect" listener runs on it); the backends ended. Not
    its very first: SQLAlchemy asks that one the server's version, with the connection at hand
    to see it lost."""
    db = Database(db_url)
    with db.uow() as session:  # the engine's first connection: SQLAlchemy's own queries on it
        session.execute(text("SELECT 1"))
    db.engine.dispose()
    ended: list[int] = []

    def end_the_first(dbapi_connection: Any, _record: Any) -> None:
        if not ended:
            ended.append(dbapi_connection.info.backend_pid)
            with pg_admin.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": ended[0]})

    event.listen(db.engine, "connect", end_the_first, insert=True)
    try:
        yield db, ended
    finally:
        db.dispose()


def test_a_connection_ended_while_opening_is_an_error_of_the_moment(
    ended_while_connecting: tuple[Database, list[int]],
) -> None:
    db, ended = ended_while_connecting
    with pytest.raises(DBAPIError) as lost, db.uow() as session:
        session.execute(text("SELECT 1"))
    assert ended
    assert disconnected(lost.value) and transient(lost.value)


def test_work_whose_connection_is_ended_while_opening_is_tried_again_on_a_new_one(
    ended_while_connecting: tuple[Database, list[int]],
) -> None:
    db, ended = ended_while_connecting
    backend = db.attempted(lambda session: session.execute(text("SELECT pg_backend_pid()")))
    assert ended and backend.scalar_one() not in ended
