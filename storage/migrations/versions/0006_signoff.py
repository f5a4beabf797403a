"""signoff: proposals that named stakeholders agree to, object to or block

A decision may be a proposal: `decisions` gains its rule (`all`, `majority`, `consent`), a due
time, a review date and the sign-off frozen when it was settled. `decision_roles` names who a
proposal involves (approvers, consulted, informed people and channels), `stances` holds each
person's current stance (every change stays in `audit`), and `links` keeps the links people make
between a decision and other objects. Existing decisions are untouched: they have no rule, so
they are not proposals; the downgrade drops only what this revision added.

Revision ID: 0006
Revises: 0008
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0006"
# Written on 0005; chained after 0008 (shared delivery state), which landed first. It touches
# none of 0008's tables, so the lead may re-chain it freely.
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=12), nullable=True))
        batch.add_column(
            sa.Column("due_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("review_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("signoff", JSON, nullable=True))
        batch.create_index("ix_decisions_due", ["status", "due_at"], unique=False)
        batch.create_index("ix_decisions_review", ["review_at"], unique=False)
    op.create_table(
        "decision_roles",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_roles_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("decision_id", "role", "target", name=op.f("pk_decision_roles")),
    )
    op.create_index("ix_decision_roles_target", "decision_roles", ["target", "role"], unique=False)
    op.create_table(
        "stances",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=120), nullable=False),
        sa.Column("stance", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_stances_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("decision_id", "user", name=op.f("pk_stances")),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("from_kind", sa.String(length=16), nullable=False),
        sa.Column("from_id", sa.Integer(), nullable=False),
        sa.Column("to_kind", sa.String(length=16), nullable=False),
        sa.Column("to_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint(
            "from_kind",
            "from_id",
            "to_kind",
            "to_id",
            name=op.f("uq_links_from_kind_from_id_to_kind_to_id"),
        ),
    )
    op.create_index("ix_links_to", "links", ["to_kind", "to_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_links_to", table_name="links")
    op.drop_table("links")
    op.drop_table("stances")
    op.drop_index("ix_decision_roles_target", table_name="decision_roles")
    op.drop_table("decision_roles")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_index("ix_decisions_review")
        batch.drop_index("ix_decisions_due")
        batch.drop_column("signoff")
        batch.drop_column("review_at")
        batch.drop_column("due_at")
        batch.drop_column("rule")
