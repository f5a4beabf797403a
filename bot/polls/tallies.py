"""Running tallies: each ballot change moves its poll's numbers by the ballot's difference, in the
vote's own transaction (its last write), so recording a vote costs the same in a poll of ten and
of ten thousand.

The numbers per poll (`storage.tallies.Running`): for single and multi the marks per option, for
dots the points per option; for ranked the pairwise matrix (d[i][j] = ballots preferring i over j,
options left off a ballot sharing its bottom) and how many ballots list each option, which is
what a new option's column needs (every ranked option of an older ballot beats an option added
after it). A change costs O(k) for k options, O(k²) ranked, whatever the number of ballots.

Plurality, approval, points, Schulze and Borda are read off these numbers by the same functions
`bot.tally` counts ballots with. Instant runoff needs the ballots themselves: it is counted on
demand and cached per tally version (`poll_counts`), which every change bumps, so no replica can
serve a count older than the last vote.

`apply_changes` is the one way a ballot change reaches the tally: the vote path calls it right
after writing the ballot, and a writer that stores ballots later (in batches) calls it when they
land.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot import tally
from bot.polls.rules import Votable
from storage import ballots, tallies
from storage.db import UnitOfWork, at_commit, queued
from storage.models import Poll
from storage.tallies import Running

Change = tuple[Any, Any]
"""(old choice, new choice) of one ballot, as stored; None for no ballot."""

SCORE_METHODS = {"single": "plurality", "multi": "approval", "dots": "points"}


def blank(mode: str, n_options: int) -> Running:
    """The numbers of a poll nobody has voted in."""
    matrix = [[0] * n_options for _ in range(n_options)] if mode == "ranked" else None
    return Running(0, [0] * n_options, matrix)


def recount(mode: str, n_options: int, choices: Iterable[Any]) -> Running:
    """The numbers for these ballots, counted from scratch (a new table's data, a check)."""
    running = blank(mode, n_options)
    for choice in choices:
        _move(running, mode, choice, 1)
    return running


def _move(running: Running, mode: str, choice: Any, sign: int) -> None:
    """Add (sign 1) or take away (sign -1) one stored ballot."""
    running.ballots += sign
    scores = running.scores
    if mode == "single":
        scores[choice[0]] += sign
    elif mode == "multi":
        for option in choice:
            scores[option] += sign
    elif mode == "dots":
        for option, points in choice:
            scores[option] += sign * points
    else:
        matrix = running.pairwise
        assert matrix is not None
        # From the bottom up: an option beats the options left off the ballot and every one
        # ranked below it, which are those walked before it.
        below = [j for j in range(len(scores)) if j not in choice]
        for option in reversed(choice):
            scores[option] += sign
            row = matrix[option]
            for beaten in below:
                row[beaten] += sign
            below.append(option)


def _fit(running: Running, mode: str, n_options: int) -> Running:
    """The numbers with a place for every option of the poll: options are only ever added at
    the end, and an added option has no marks or points yet, and in a ranked poll is beaten by
    every option an older ballot lists."""
    while len(running.scores) < n_options:
        if running.pairwise is not None:
            for row, listed in zip(running.pairwise, running.scores, strict=True):
                row.append(listed)
            running.pairwise.append([0] * (len(running.scores) + 1))
        running.scores.append(0)
    return running


def start(session: UnitOfWork, poll: Poll) -> None:
    """The tally of a new poll (its row must exist before the first vote)."""
    tallies.create(session, poll.id, blank(poll.mode, len(poll.options)))


def apply_changes(session: UnitOfWork, poll: Votable, changes: Sequence[Change]) -> None:
    """Move the poll's tally by these ballot changes, already written to `ballots` in this
    transaction: queued, and applied as the transaction's last write (`storage.db.at_commit`),
    every change of the poll in the transaction at once. Its tally row is then held from that
    UPDATE to the COMMIT only, so concurrent votes queue on it as briefly as they can and none
    loses another's increment. `count` in the same transaction sees the queued changes."""
    at_commit(session, _key(poll.id), _apply_queued, (poll, changes))


def _key(poll_id: int) -> tuple[str, int]:
    return ("poll tally", poll_id)


def _apply_queued(
    session: UnitOfWork, queued_changes: list[tuple[Votable, Sequence[Change]]]
) -> None:
    """Every change of one poll queued in this transaction, at once: their sum, counted once,
    added by one statement where the database can (`storage.tallies.add`), else to the row
    locked, read and fitted. The poll as last seen: its options only ever grow, and `_fit`
    makes room."""
    poll = queued_changes[-1][0]
    n = len(poll.options)
    delta: Running | None = None
    if tallies.adds_in_sql(session):
        delta = blank(poll.mode, n)
        for _, changes in queued_changes:
            _apply(delta, poll.mode, changes)
        if tallies.add(session, poll.id, delta):
            return
    running = tallies.lock(session, poll.id)
    if running is None:
        # A poll without a row (none should remain after migration 0010): count it, the changes
        # included. Another vote may create the row meanwhile; then move that one instead.
        if tallies.create(
            session, poll.id, recount(poll.mode, n, ballots.choices(session, poll.id))
        ):
            return
        running = tallies.lock(session, poll.id)
        assert running is not None
    _fit(running, poll.mode, n)
    if delta is None:
        # The changes moved straight onto the numbers read (SQLite): no sum to build and add.
        # An option the row holds beyond the poll as read is one the changes' ballots leave
        # unranked (`_move` counts every place of the row), as fitting their sum would say.
        for _, changes in queued_changes:
            _apply(running, poll.mode, changes)
        tallies.store(session, poll.id, running)
        return
    # The row may hold an option this poll was read without (added as the vote read it, on
    # PostgreSQL): the changes' ballots leave it unranked, as fitting their sum says.
    _fit(delta, poll.mode, len(running.scores))
    tallies.store(session, poll.id, _sum(running, delta))


def _sum(running: Running, delta: Running) -> Running:
    """The numbers moved by `delta`, both of the same poll size (what `storage.tallies.add` does
    in SQL)."""
    matrix = None
    if running.pairwise is not None and delta.pairwise is not None:
        matrix = [
            [a + b for a, b in zip(row, moved, strict=True)]
            for row, moved in zip(running.pairwise, delta.pairwise, strict=True)
        ]
    scores = [a + b for a, b in zip(running.scores, delta.scores, strict=True)]
    return Running(running.ballots + delta.ballots, scores, matrix)


def _apply(running: Running, mode: str, changes: Sequence[Change]) -> None:
    for old, new in changes:
        if old is not None:
            _move(running, mode, old, -1)
        if new is not None:
            _move(running, mode, new, 1)


def apply_change(session: UnitOfWork, poll: Votable, old: Any, new: Any) -> None:
    """One ballot changed from `old` to `new` (None: there was none; see `apply_changes`)."""
    apply_changes(session, poll, [(old, new)])


def options_added(session: UnitOfWork, poll: Poll) -> None:
    """The poll gained options (`edit P-n add:`): the tally gains their places, and its version
    moves on, so a cached count of the old options is not served."""
    apply_changes(session, poll, [])


def count(session: UnitOfWork, poll: Poll) -> tally.Tally:
    """The poll's live result from its running tally; instant runoff counts the ballots once per
    tally version and caches that count."""
    n = len(poll.options)
    row = tallies.read(session, poll.id)
    version: int | None
    if row is None:
        version = None
        running = recount(poll.mode, n, ballots.choices(session, poll.id))
    else:
        version, running = row
        _fit(running, poll.mode, n)
        pending = queued(session, _key(poll.id))
        if pending:
            # Changes of this transaction not yet applied (they are, at its commit); the
            # version does not count them yet, so no cached count is served or stored for it.
            for _, changes in pending:
                _apply(running, poll.mode, changes)
            version = None
    if poll.mode != "ranked":
        return tally.from_scores(SCORE_METHODS[poll.mode], running.scores, running.ballots)
    method = poll.method or "schulze"
    assert running.pairwise is not None
    if method == "schulze":
        return tally.schulze_matrix(running.pairwise, running.ballots)
    if method == "borda":
        return tally.borda_matrix(running.pairwise, running.ballots)
    if version is not None:
        hit = tallies.cached(session, poll.id, version)
        if hit is not None:
            return tally.Tally.from_json(hit)
    counted = tally.ranked(method, n, [tuple(c) for c in ballots.choices(session, poll.id)])
    if version is not None:
        tallies.cache(session, poll.id, version, counted.to_json())
    return counted


__all__ = [
    "Change",
    "apply_change",
    "apply_changes",
    "blank",
    "count",
    "options_added",
    "recount",
    "start",
]
