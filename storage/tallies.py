"""Rows of a poll's running tally (`poll_tallies`) and of its cached count (`poll_counts`).

What the numbers mean and how a ballot moves them is `bot.polls.tallies`' business; here they
are only read and written, so that two votes in one poll never lose an increment:
`lock` bumps the version with an UPDATE, which holds the row until the vote commits (PostgreSQL
makes a second voter wait there and then read the first one's numbers; SQLite's BEGIN IMMEDIATE
serialises writers anyway), and returns the numbers the vote then moves.

The tally of an anonymous poll is read on the raw DBAPI cursor, like the voter's own ballot in
`storage.ballots`: SQLAlchemy's debug log prints every row it fetches, and the tally before and
after a vote, printed in the voter's own request, would say what they chose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storage.db import UnitOfWork, dialect_insert, raw
from storage.models import PollCount, PollTally


@dataclass
class Running:
    """A poll's running numbers: ballots counted, a number per option, and — ranked — the
    pairwise matrix (row preferred over column)."""

    ballots: int
    scores: list[int]
    pairwise: list[list[int]] | None = None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _dialect(session: UnitOfWork) -> str:
    return session.get_bind().dialect.name


def create(session: UnitOfWork, poll_id: int, running: Running) -> bool:
    """The poll's first tally row; False (and nothing written) if it has one already."""
    result = session.execute(
        dialect_insert(_dialect(session))(PollTally.__table__)
        .values(
            poll_id=poll_id,
            version=0,
            ballots=running.ballots,
            scores=running.scores,
            pairwise=running.pairwise,
        )
        .on_conflict_do_nothing()
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def lock(session: UnitOfWork, poll_id: int) -> Running | None:
    """Take the poll's tally row for this transaction, counting one more change (the version),
    and read its numbers as the last committed change left them; None when the poll has no row.
    One statement on the raw cursor (see the module docstring)."""
    row = raw(
        session,
        "UPDATE poll_tallies SET version = version + 1 WHERE poll_id = ? "
        "RETURNING ballots, scores, pairwise",
        (poll_id,),
    )
    return None if row is None else Running(int(row[0]), _json(row[1]), _json(row[2]))


_ADD = """
UPDATE poll_tallies SET version = version + 1, ballots = ballots + ?,
  scores = (SELECT json_agg(s.v::text::bigint + d.v::text::bigint ORDER BY i)
            FROM json_array_elements(scores) WITH ORDINALITY AS s(v, i)
            JOIN json_array_elements(?::json) WITH ORDINALITY AS d(v, i) USING (i)),
  pairwise = CASE WHEN pairwise IS NULL THEN NULL ELSE (
    SELECT json_agg((SELECT json_agg(a.v::text::bigint + b.v::text::bigint ORDER BY j)
                     FROM json_array_elements(s.v) WITH ORDINALITY AS a(v, j)
                     JOIN json_array_elements(d.v) WITH ORDINALITY AS b(v, j) USING (j))
                    ORDER BY i)
    FROM json_array_elements(pairwise) WITH ORDINALITY AS s(v, i)
    JOIN json_array_elements(?::json) WITH ORDINALITY AS d(v, i) USING (i)) END
WHERE poll_id = ? AND json_array_length(scores) = ?
RETURNING 1
"""


def adds_in_sql(session: UnitOfWork) -> bool:
    """Whether `add` can move the numbers in one statement here (PostgreSQL): else the caller
    locks the row and moves it itself, and need not build a `delta` for `add` at all."""
    return _dialect(session) == "postgresql"


def add(session: UnitOfWork, poll_id: int, delta: Running) -> bool:
    """Move the poll's numbers by `delta` (a change's differences, of the poll's size) and count
    one more change, in one statement — on PostgreSQL, where every voter of the poll waits on
    this row until the COMMIT: so the row is held for this one round trip and the COMMIT, not
    for a read, the arithmetic in Python and a write. False, with nothing written, on SQLite
    (whose writers take turns on one lock anyway), for a poll without a row, or for a row of
    another size (options added since): the caller then takes the row with `lock` and moves
    it itself. On the raw cursor, like `lock`."""
    if _dialect(session) != "postgresql":
        return False
    matrix = None if delta.pairwise is None else json.dumps(delta.pairwise)
    params = (delta.ballots, json.dumps(delta.scores), matrix, poll_id, len(delta.scores))
    return raw(session, _ADD, params) is not None


def store(session: UnitOfWork, poll_id: int, running: Running) -> None:
    """Write the numbers a change (taken with `lock`) moved; on the raw cursor too, as the row
    is written on every vote and a Core UPDATE cost more to build than to run."""
    matrix = None if running.pairwise is None else json.dumps(running.pairwise)
    raw(
        session,
        "UPDATE poll_tallies SET ballots = ?, scores = ?, pairwise = ? WHERE poll_id = ?",
        (running.ballots, json.dumps(running.scores), matrix, poll_id),
    )


def read(session: UnitOfWork, poll_id: int) -> tuple[int, Running] | None:
    """The poll's version and numbers as committed (no lock), or None without a row."""
    row = raw(
        session,
        "SELECT version, ballots, scores, pairwise FROM poll_tallies WHERE poll_id = ?",
        (poll_id,),
    )
    if row is None:
        return None
    return int(row[0]), Running(int(row[1]), _json(row[2]), _json(row[3]))


def cached(session: UnitOfWork, poll_id: int, version: int) -> dict[str, Any] | None:
    """The count cached for exactly this version of the poll, or None."""
    stmt = select(PollCount.tally).where(PollCount.poll_id == poll_id, PollCount.version == version)
    found: dict[str, Any] | None = session.execute(stmt).scalar_one_or_none()
    return found


def cache(session: UnitOfWork, poll_id: int, version: int, tally: dict[str, Any]) -> None:
    """Keep a count of this version; a count of an older version never replaces a newer one."""
    table = PollCount.__table__
    stmt = dialect_insert(_dialect(session))(table).values(
        poll_id=poll_id, version=version, tally=tally
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.poll_id],
            set_={"version": stmt.excluded.version, "tally": stmt.excluded.tally},
            where=table.c.version < stmt.excluded.version,
        )
    )


__all__ = ["Running", "add", "adds_in_sql", "cache", "cached", "create", "lock", "read", "store"]
