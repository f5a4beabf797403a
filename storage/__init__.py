"""Persistence for Align: SQLAlchemy 2 models, the database handle and Alembic migrations.

Import direction: `storage` imports nothing from `bot` or `adapters`; `bot` uses it.
"""

from storage.db import Database, UnitOfWork
from storage.migrate import upgrade

__all__ = ["Database", "UnitOfWork", "upgrade"]
