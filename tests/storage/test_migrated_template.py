"""The migrated database most tests get (`migrated_db_url`, tests/conftest.py) is a copy of one
template migrated by Alembic per worker, not a migration of its own: the copy must be the very
schema, and rows, that running the migrations on an empty database gives."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from storage.db import normalize_url
from storage.migrate import current, upgrade
from tests.conftest import _pg_schema_url
from tests.storage.test_migrations import head, schema_differences

PG_CATALOG = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,
               numeric_precision, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = current_schema()""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = current_schema()::regnamespace""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema()""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, increment
        FROM information_schema.sequences WHERE sequence_schema = current_schema()""",
    "sequence values": """
        SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()""",
    "relations": """
        SELECT relname, relkind, relpersistence FROM pg_class
        WHERE relnamespace = current_schema()::regnamespace""",
}


def describe(url: str) -> dict[str, Any]:
    """Everything a database's schema says, and every row it holds, with the schema's own name
    left out (each PostgreSQL test has another)."""
    engine: Engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                found: dict[str, Any] = {
                    "schema": sorted(
                        (tuple(r) for r in conn.execute(text("SELECT * FROM sqlite_master"))),
                        key=repr,
                    ),
                    "user_version": conn.execute(text("PRAGMA user_version")).scalar_one(),
                }
                names = [r[1] for r in found["schema"] if r[0] == "table"]
            else:
                schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
                found = {
                    what: sorted(
                        (
                            tuple(str(v).replace(schema, "<schema>") for v in row)
                            for row in conn.execute(text(sql))
                        ),
                        key=repr,
                    )
                    for what, sql in PG_CATALOG.items()
                }
                names = [r[0] for r in found["relations"] if r[1] == "r"]
            found["rows"] = {
                name: sorted(
                    (tuple(r) for r in conn.execute(text(f'SELECT * FROM "{name}"'))), key=repr
                )
                for name in names
            }
            return found
    finally:
        engine.dispose()


def fresh_beside(url: str, tmp_path: Path, admin: Engine | None) -> str:
    """Another empty database on the same server as `url`, for Alembic to migrate."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    assert admin is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return _pg_schema_url(schema)


def test_a_test_s_migrated_database_is_what_the_migrations_make(
    migrated_db_url: str, tmp_path: Path, request: Any
) -> None:
    admin = None if migrated_db_url.startswith("sqlite") else request.getfixturevalue("pg_admin")
    fresh = fresh_beside(migrated_db_url, tmp_path, admin)
    try:
        upgrade(fresh)
        copy, migrated = describe(migrated_db_url), describe(fresh)
        assert copy["rows"]["alembic_version"] == [(head(),)]
        assert copy == migrated
        assert current(migrated_db_url) == head()
        assert schema_differences(migrated_db_url) == []
    finally:
        if admin is not None:
            schema = fresh.rsplit("search_path%3D", 1)[1]
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
