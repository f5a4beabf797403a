"""Read every table back, as an admin with a SQL prompt would: for "nothing was stored" checks
and for searching the stored values of anonymous polls."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text

from storage.db import Database


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the database (the migrated schema, not just our models)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out
