"""secret fingerprint: the ALIGN_SECRET every process sharing the database must hold

A new table with one row, stored by the first `align serve` after this revision (storage/
secret_check.py); every later process compares its own secret's fingerprint with it and refuses
to start on a mismatch. Nothing existing changes. The downgrade drops the table: it holds no
user data, only the fingerprint, which the next start after an upgrade stores again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "secret_fingerprints",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("stored_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secret_fingerprints")),
    )


def downgrade() -> None:
    op.drop_table("secret_fingerprints")
