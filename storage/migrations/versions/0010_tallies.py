"""tallies: each poll's running tally, moved by every vote, and the cached count of a poll whose
method needs every ballot

Each vote recounted its whole poll, so a vote in a poll of 10,000 cost a hundred times one in a
poll of 100. A poll's tally is now kept in `poll_tallies` and moved by each ballot's difference
(bot/polls/tallies.py); instant runoff, which needs the ballots, is counted once per tally
version and kept in `poll_counts`. Existing polls get their tally by a recount of their ballots.

Both tables hold only what the ballots give back; the downgrade drops them and keeps every poll,
option and ballot.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-26 17:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from bot.polls.tallies import recount

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    tallies = op.create_table(
        "poll_tallies",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ballots", sa.Integer(), nullable=False),
        sa.Column(
            "scores",
            sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "pairwise",
            sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_tallies_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", name=op.f("pk_poll_tallies")),
    )
    op.create_table(
        "poll_counts",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "tally",
            sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_counts_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", name=op.f("pk_poll_counts")),
    )
    # Every poll's tally, by a recount of its ballots (closed polls too: their frozen result
    # stays what they show, and a tally row costs little).
    bind = op.get_bind()
    polls = bind.execute(
        sa.text(
            "SELECT polls.id, polls.mode, COUNT(poll_options.id) FROM polls "
            "LEFT JOIN poll_options ON poll_options.poll_id = polls.id "
            "GROUP BY polls.id, polls.mode"
        )
    ).all()
    rows = []
    for poll_id, mode, n_options in polls:
        choices = bind.execute(
            sa.text("SELECT choice FROM ballots WHERE poll_id = :poll"), {"poll": poll_id}
        ).scalars()
        running = recount(mode, int(n_options), (_json(c) for c in choices))
        rows.append(
            {
                "poll_id": poll_id,
                "version": 0,
                "ballots": running.ballots,
                "scores": running.scores,
                "pairwise": running.pairwise,
            }
        )
    if rows:
        op.bulk_insert(tallies, rows)


def downgrade() -> None:
    # Derived data only: every poll, option and ballot stays.
    op.drop_table("poll_counts")
    op.drop_table("poll_tallies")
