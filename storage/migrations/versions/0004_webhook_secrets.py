"""webhook secrets: each webhook gets its own signing secret

A nullable `key_salt` on `webhooks`. With ALIGN_SECRET it derives the webhook's own signing
secret (bot/webhooks.py), shown once to whoever adds or rotates the webhook; the salt alone
reveals nothing. Existing webhooks keep NULL — their receivers verify with ALIGN_SECRET today,
and a secret they were never shown would break them on upgrade — so they stay signed with
ALIGN_SECRET until someone runs `webhook rotate <n>` (`webhook list` marks them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("key_salt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Dropping the salt loses the webhooks' own secrets: after a downgrade every webhook is
    # signed with ALIGN_SECRET again (the only key the older code knows), nothing else is lost.
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("key_salt")
