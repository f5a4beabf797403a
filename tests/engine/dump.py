"""A full dump of every table, to prove a command changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adapters.bootstrap import App
from storage.models import Base


def dump(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every model table, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with app.db.uow() as session:
        for name, table in sorted(Base.metadata.tables.items()):
            order = list(table.primary_key.columns) or list(table.columns)
            out[name] = [tuple(row) for row in session.execute(select(table).order_by(*order))]
    return out


def counts(app: App) -> dict[str, int]:
    return {name: len(rows) for name, rows in dump(app).items()}
