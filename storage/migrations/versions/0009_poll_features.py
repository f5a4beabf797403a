"""poll features: reasons with ballots, hidden and public results, max choices, open options,
recurring polls

A ballot may carry a reason (`ballots.reason`, stored under the ballot's own key, so an anonymous
poll's reasons name nobody). Polls gain `public`, `results_hidden`, `max_choices` and
`options_open`; a recurring poll (`every:`) belongs to a `poll_series` row, and each period's poll
records its series and index. Existing polls keep their behaviour: every new flag is false, every
new column empty.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "poll_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("every", sa.String(length=8), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("opens_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_series")),
    )
    with op.batch_alter_table("polls") as batch:
        batch.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("results_hidden", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("max_choices", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("options_open", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("series_index", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_polls_series_id_poll_series"),
            "poll_series",
            ["series_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_unique_constraint(
            op.f("uq_polls_series_id_series_index"), ["series_id", "series_index"]
        )
    with op.batch_alter_table("ballots") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # The reasons and the series go with the features that read them; every poll, option and
    # ballot choice stays, and each period's poll remains an ordinary poll.
    with op.batch_alter_table("ballots") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("polls") as batch:
        batch.drop_constraint(op.f("uq_polls_series_id_series_index"), type_="unique")
        batch.drop_constraint(op.f("fk_polls_series_id_poll_series"), type_="foreignkey")
        batch.drop_column("series_index")
        batch.drop_column("series_id")
        batch.drop_column("options_open")
        batch.drop_column("max_choices")
        batch.drop_column("results_hidden")
        batch.drop_column("public")
    op.drop_table("poll_series")
