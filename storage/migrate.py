"""Alembic, driven from code: migrations ship inside the package and run on start.

Every `align serve` and `align chat` upgrades on start, so several processes started together on
one empty database all try at once. Unlocked, the losers crashed (`UniqueViolation …
alembic_version` on PostgreSQL, "table audit already exists" on SQLite). Here the whole upgrade
runs in one transaction that first takes a lock, and Alembic runs inside that transaction:

- PostgreSQL: `pg_advisory_xact_lock` on a key made from the schema name. The others wait on it;
  when the first commits (DDL is transactional) they get the lock, read `alembic_version`, see
  head and do nothing. The lock goes with the transaction, so a killed process frees it.
- SQLite: `BEGIN EXCLUSIVE` (SQLite's DDL is transactional too; pysqlite's own transaction
  handling is switched off so the migration really runs inside it). The others wait through the
  busy timeout, then see head.

A failed migration rolls back entirely on both, instead of leaving half a schema behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, pool, text
from sqlalchemy.engine import make_url

from storage.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"

LOCK_WAIT_SECONDS = 600
"""How long a process waits for another's migration on SQLite (PostgreSQL waits as long as it
takes: the holder's transaction ends when it commits or its connection dies)."""

_PG_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'align.migrate:' || coalesce(current_schema(), ''), 0))"
)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is %-interpolated; a password with % would break it.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


@contextmanager
def _locked_connection(url: str) -> Iterator[Connection]:
    """A connection inside a transaction that holds the migration lock; committed at the end."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(
            url, poolclass=pool.NullPool, connect_args={"timeout": LOCK_WAIT_SECONDS}
        )

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _exclusive(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")

    else:
        engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(_PG_LOCK)
            yield conn
    finally:
        engine.dispose()


def _run(url: str, step: Callable[[Config], None]) -> None:
    config = alembic_config(url)
    with _locked_connection(url) as conn:
        # env.py runs Alembic on this connection, inside its (locked) transaction.
        config.attributes["connection"] = conn
        step(config)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (default: the newest), once, however many
    processes ask at the same moment."""
    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    _run(url, lambda config: command.downgrade(config, revision))


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(normalize_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
