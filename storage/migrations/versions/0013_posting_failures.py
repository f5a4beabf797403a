"""posting failures: how many edits of a live message have failed in a row

A live message whose edit the platform refuses with an error that does not mean "gone" (a
revoked token, the bot removed from the channel) stayed behind, and the worker's catch-up tried
it again every ten seconds for as long as the process lived. `postings.failures` counts the
failed edits since the last one that went out, so each retry waits twice as long as the one
before (up to an hour) and the count goes back to 0 when an edit succeeds. Existing rows start
at 0: their next failure is their first.

The downgrade drops only the count; every posting stays, and is retried at the old fixed pace.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.drop_column("failures")
