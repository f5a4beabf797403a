"""rosters: channel member lists in the database; profiles learn a person's other id

Member lists were cached in each process's memory, so two replicas could count a poll's
participation against different lists and freeze different results. They now live in `rosters`
(one row per channel, with when it was fetched). `profiles.alias` keeps the Teams `29:` id of a
person keyed by AAD object id, which mention entities need.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rosters",
        sa.Column("workspace", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column(
            "members",
            sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("fetched_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "channel", name=op.f("pk_rosters")),
    )
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("alias", sa.String(length=120), nullable=True))
        batch.create_index("ix_profiles_workspace_alias", ["workspace", "alias"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_index("ix_profiles_workspace_alias")
        batch.drop_column("alias")
    op.drop_table("rosters")
