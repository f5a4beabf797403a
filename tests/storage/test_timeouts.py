"""A database that hangs gives errors, not hangs: `ALIGN_DB_CONNECT_TIMEOUT` and
`ALIGN_DB_STATEMENT_TIMEOUT` reach every connection, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from adapters.bootstrap import build
from storage.db import Database, normalize_url
from tests.conftest import make_settings


@contextmanager
def write_locked(db_url: str, table: str = "decisions") -> Iterator[None]:
    """Another process holding the write lock (SQLite) or a lock on `table` (PostgreSQL)."""
    url = make_url(normalize_url(db_url))
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_the_settings_reach_every_connection(db_url: str) -> None:
    app = build(
        make_settings(db_url, ALIGN_DB_STATEMENT_TIMEOUT="1.5", ALIGN_DB_CONNECT_TIMEOUT="3")
    )
    try:
        with app.db.uow() as session:
            if app.db.dialect == "sqlite":
                shown = session.execute(text("PRAGMA busy_timeout")).scalar_one()
                assert shown == 1500
            else:
                shown = session.execute(text("SHOW statement_timeout")).scalar_one()
                assert shown == "1500ms"
    finally:
        app.db.dispose()


def test_a_statement_waiting_on_a_lock_gives_up(db_url: str) -> None:
    build(make_settings(db_url)).db.dispose()  # migrated
    db = Database(db_url, statement_timeout=0.3)
    try:
        with write_locked(db_url), pytest.raises(OperationalError) as caught, db.uow() as s:
            s.execute(text("DELETE FROM decisions"))
    finally:
        db.dispose()
    message = str(caught.value)
    assert "database is locked" in message or "canceling statement" in message


def test_a_postgres_server_that_never_answers_times_out_connecting() -> None:
    """A listening socket that never speaks plays a frozen PostgreSQL: libpq gives up after
    connect_timeout instead of waiting forever."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    db = Database(f"postgresql://align@127.0.0.1:{port}/align", connect_timeout=2)
    try:
        with pytest.raises(OperationalError, match="timeout expired"), db.uow() as session:
            session.execute(text("SELECT 1"))
    finally:
        db.dispose()
        silent.close()


def test_a_process_opens_at_most_pool_size_plus_overflow_connections(db_url: str) -> None:
    """ALIGN_DB_POOL_SIZE and ALIGN_DB_MAX_OVERFLOW bound a replica's connections (README's
    connection budget): with 2 + 1, three transactions run at once and a fourth waits for a
    free connection, giving up after the statement timeout instead of opening another."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection pool to bound")
    app = build(
        make_settings(
            db_url,
            ALIGN_DB_POOL_SIZE="2",
            ALIGN_DB_MAX_OVERFLOW="1",
            ALIGN_DB_STATEMENT_TIMEOUT="0.5",
        )
    )
    try:
        with ExitStack() as held:
            for _ in range(3):
                held.enter_context(app.db.uow()).execute(text("SELECT 1"))
            with pytest.raises(SATimeoutError), app.db.uow() as session:
                session.execute(text("SELECT 1"))
        assert app.db.engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        app.db.dispose()
