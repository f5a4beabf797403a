"""pending ballots: anonymous ballots wait, sealed, and are counted in shuffled batches

An anonymous vote used to write its ballot in the same commit as the voter's participation row
(and, on PostgreSQL, rewrite every ballot of the poll). Now it writes a sealed pending ballot
there, and ballots are written five or more at a time in a transaction of their own
(bot/polls/batches.py). Existing ballots stay as they are.

The downgrade counts every pending ballot first (the schema before this has nowhere else to keep
them) and recounts those polls' running tallies (0010); that needs the key the ballots were
sealed with: ALIGN_SECRET, or for a local console database
the key derived from its URL. Without it the downgrade stops, and nothing is lost.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 17:00:00
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from cryptography.exceptions import InvalidTag

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_ballots",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_pending_ballots_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", "lookup", name=op.f("pk_pending_ballots")),
    )


def _secrets(conn: sa.Connection) -> list[bytes]:
    """The keys the ballots may have been sealed with (adapters/bootstrap.py `secret_bytes`)."""
    given = os.environ.get("ALIGN_SECRET", "")
    url = conn.engine.url.render_as_string(hide_password=False)
    local = hashlib.sha256(b"align-local:" + url.encode()).digest()
    return [given.encode(), local] if given else [local]


def downgrade() -> None:
    from storage.pending import PendingSeal

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT poll_id, lookup, sealed FROM pending_ballots")).all()
    if rows:
        opened = None
        for secret in _secrets(conn):
            seal = PendingSeal(secret)
            try:
                opened = [seal.open(p, lookup, bytes(sealed)) for p, lookup, sealed in rows]
                break
            except InvalidTag:
                continue
        if opened is None:
            raise RuntimeError(
                "pending anonymous ballots cannot be counted without the key they were sealed "
                "with: set ALIGN_SECRET to the server's and run the downgrade again"
            )
        batch = list(zip([p for p, _, _ in rows], opened, strict=True))
        secrets.SystemRandom().shuffle(batch)
        ballots = sa.table(
            "ballots",
            sa.column("id", sa.String()),
            sa.column("poll_id", sa.Integer()),
            sa.column("voter_key", sa.String()),
            sa.column("choice", sa.JSON()),
            sa.column("reason", sa.Text()),
        )
        for poll_id, waiting in batch:
            conn.execute(
                sa.delete(ballots).where(
                    ballots.c.poll_id == poll_id, ballots.c.voter_key == waiting.key
                )
            )
            conn.execute(
                ballots.insert().values(
                    id=uuid.uuid4().hex,
                    poll_id=poll_id,
                    voter_key=waiting.key,
                    choice=waiting.choice,
                    reason=waiting.reason,
                )
            )
        _recount(conn, sorted({poll_id for poll_id, _ in batch}))
    op.drop_table("pending_ballots")


def _recount(conn: sa.Connection, poll_ids: list[int]) -> None:
    """These polls' running tallies (0010), from their ballots again."""
    from bot.polls.tallies import recount

    tallies = sa.table(
        "poll_tallies",
        sa.column("poll_id", sa.Integer()),
        sa.column("version", sa.Integer()),
        sa.column("ballots", sa.Integer()),
        sa.column("scores", sa.JSON()),
        sa.column("pairwise", sa.JSON()),
    )
    for poll_id in poll_ids:
        mode, n_options = conn.execute(
            sa.text(
                "SELECT polls.mode, COUNT(poll_options.id) FROM polls "
                "LEFT JOIN poll_options ON poll_options.poll_id = polls.id "
                "WHERE polls.id = :poll GROUP BY polls.mode"
            ),
            {"poll": poll_id},
        ).one()
        choices = conn.execute(
            sa.text("SELECT choice FROM ballots WHERE poll_id = :poll"), {"poll": poll_id}
        ).scalars()
        running = recount(mode, int(n_options), (_json(c) for c in choices))
        conn.execute(
            sa.update(tallies)
            .where(tallies.c.poll_id == poll_id)
            .values(
                version=tallies.c.version + 1,
                ballots=running.ballots,
                scores=running.scores,
                pairwise=running.pairwise,
            )
        )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
