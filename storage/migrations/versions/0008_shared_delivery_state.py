"""shared delivery state: outbox lanes and live-message update claims in the database

Each replica paced its channels and coalesced its live-message updates in its own memory, so
three replicas sent up to three messages a second to one Slack channel, out of order, and
updated one poll message 149 times in a burst. `outbox_lanes` holds each channel's queue (who
sends to it now, until when, and the next moment a message may go); `postings` gains the state
of keeping a live message current (changes counted, changes shown, the next moment an update may
go, who updates it now). `ix_outbox_channel` finds a channel's next message.

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_lanes",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=300), nullable=False),
        sa.Column("held_by", sa.String(length=64), nullable=True),
        sa.Column("held_until", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_slot_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("platform", "workspace", "channel", name=op.f("pk_outbox_lanes")),
    )
    op.create_index("ix_outbox_channel", "outbox", ["workspace", "channel", "status"], unique=False)
    with op.batch_alter_table("postings") as batch:
        batch.add_column(sa.Column("changes", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("shown", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("next_update_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("held_by", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("held_until", storage.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.drop_column("held_until")
        batch.drop_column("held_by")
        batch.drop_column("next_update_at")
        batch.drop_column("shown")
        batch.drop_column("changes")
    op.drop_index("ix_outbox_channel", table_name="outbox")
    op.drop_table("outbox_lanes")
