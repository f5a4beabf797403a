"""postings: the live messages of any object kind, not only of polls

`poll_messages` (poll_id → where a poll is shown) becomes `postings` (object kind and id → where
it is shown), so a proposal's sign-off message can be updated in place as a poll's is. Every row
of `poll_messages` moves over as kind `poll`; the downgrade moves the poll rows back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        sa.UniqueConstraint(
            "object_kind",
            "object_id",
            "platform",
            "conversation",
            "message_id",
            name=op.f("uq_postings_location"),
        ),
    )
    op.execute(
        "INSERT INTO postings (object_kind, object_id, platform, conversation, message_id, "
        "created_at) SELECT 'poll', poll_id, platform, conversation, message_id, MIN(created_at) "
        "FROM poll_messages GROUP BY poll_id, platform, conversation, message_id"
    )
    op.drop_table("poll_messages")


def downgrade() -> None:
    op.create_table(
        "poll_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_messages_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_messages")),
    )
    op.execute(
        "INSERT INTO poll_messages (poll_id, platform, conversation, message_id, created_at) "
        "SELECT object_id, platform, conversation, message_id, created_at FROM postings "
        "WHERE object_kind = 'poll' AND object_id IN (SELECT id FROM polls)"
    )
    op.drop_table("postings")
