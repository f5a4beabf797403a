"""without rowid: on SQLite, `pending_ballots` and `members` are kept in their primary key's
order alone

Both tables are found only by their primary key, which SQLite kept twice: once in the table's
own b-tree under a hidden rowid, and again in the index it makes for the key. An anonymous vote
inserts a pending ballot and, for a new voter, a member row, so it wrote four pages where two
hold the same rows; the batch that counts the ballots deleted from both again, and each page
goes through the WAL and is copied back by the checkpoint after the batch (bot/polls/batches.py).
As WITHOUT ROWID tables each row lives once, in key order. A pending ballot also no longer gets
a rowid that counts up in voting order.

Only SQLite changes: each table is rebuilt, every row copied as it is, the old pages zeroed as
they are freed. PostgreSQL has no rowid, and its tables stay untouched. The downgrade rebuilds
them with a rowid again, every row kept.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("pending_ballots", "members")


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The old tables' pages are zeroed as they are freed, as the app's connections do
    # (storage/db.py): no copy of a sealed pending ballot stays behind in free space.
    op.execute("PRAGMA secure_delete=ON")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
        ):
            pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
