"""Anonymous ballots are counted in batches, so that neither a member watching the tally nor a
reader of the database files can tell who chose what.

A vote on an anonymous poll writes the voter's participation row and their ballot as *pending*,
sealed (`storage.pending`), in one transaction; the tally does not move. Once at least `BATCH`
ballots are pending — or the poll closes — one transaction of its own opens them, shuffles them,
writes them into `ballots` (`storage.ballots.put_batch`), moves the running tally by them
(`tallies.apply_changes`) and deletes them: the tally moves by five ballots or more at once,
and the commit that writes ballots writes no participation row.

Who flushes: every read of the poll's result made outside a transaction that recorded a vote
(`results.visible`: `results`, `show`, the live message's refresh, exports, App Home, the digest,
trends), the scheduler's tick (`flush_due`), and `close` (everything, whatever the count). A
transaction that recorded an anonymous vote never flushes (`VOTED` in its session's info), so no
commit holds both a voter's participation and ballots. SQLite zeroes deleted rows
(`secure_delete`) and its WAL is checkpointed and truncated after a flush (`storage.db`).

A voter's own ballot — for "changed your vote" and for toggling a multi choice — is their
pending one when they have one, else their counted one (`own`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag

from bot.context import Deps
from bot.polls import tallies
from bot.polls.rules import Votable, read_by_id, voter_key
from storage import ballots, pending
from storage.db import CHECKPOINT, UnitOfWork
from storage.models import Poll
from storage.sealing import derive

BATCH = 5
"""Ballots that move the tally together: each voter hides among at least this many."""

VOTED = "align.anonymous_vote"
"""Set in a session's info once it has written an anonymous vote: it must not flush."""

_shuffle = secrets.SystemRandom().shuffle
log = logging.getLogger("align.polls")


@lru_cache(maxsize=4)
def _keys(secret: bytes) -> tuple[bytes, pending.PendingSeal]:
    """The lookup key and the sealing key, each derived from ALIGN_SECRET for this purpose only
    (the ballot key is ALIGN_SECRET itself, `rules.voter_key`)."""
    lookup = derive(secret, b"align pending-ballot lookup v1")
    return lookup, pending.PendingSeal(secret)


def lookup_key(deps: Deps, poll: Votable, user: str) -> str:
    """Where a voter's pending ballot is found: unrelated to their ballot key without the
    secret."""
    message = f"{poll.workspace}\x1f{poll.id}\x1f{user}".encode()
    return "p:" + hmac.new(_keys(deps.secret)[0], message, hashlib.sha256).hexdigest()[:48]


def own(deps: Deps, session: UnitOfWork, poll: Votable, user: str) -> tuple[Any, str | None] | None:
    """The voter's current (choice, reason): pending if they have one, else counted, else None."""
    lookup = lookup_key(deps, poll, user)
    sealed, counted = pending.read_with_counted(
        session, poll.id, lookup, voter_key(deps, poll, user)
    )
    return _current(deps, poll, lookup, sealed, counted)


def _current(
    deps: Deps,
    poll: Votable,
    lookup: str,
    sealed: bytes | None,
    counted: tuple[Any, str | None] | None,
) -> tuple[Any, str | None] | None:
    if sealed is not None:
        try:
            waiting = _keys(deps.secret)[1].open(poll.id, lookup, sealed)
        except InvalidTag:  # sealed under another ALIGN_SECRET: a new vote replaces it
            return None
        return waiting.choice, waiting.reason
    return counted


def hold(
    deps: Deps, session: UnitOfWork, poll: Votable, user: str, choice: Any, reason: str | None
) -> None:
    """Keep the voter's ballot pending (replacing one they have pending)."""
    lookup, _key, sealed = _sealed(deps, session, poll, user, choice, reason)
    pending.hold(session, poll.id, lookup, sealed)


def replace(
    deps: Deps, session: UnitOfWork, poll: Votable, user: str, choice: Any, reason: str | None
) -> tuple[Any, str | None] | None:
    """`hold` the voter's ballot, and return what `own` gave just before: for a ballot that
    does not build on the one it replaces (all but a toggle), one statement on PostgreSQL
    where `own` then `hold` take two round trips (`pending.hold_after_reading`)."""
    lookup, key, sealed = _sealed(deps, session, poll, user, choice, reason)
    before, counted = pending.hold_after_reading(session, poll.id, lookup, key, sealed)
    return _current(deps, poll, lookup, before, counted)


def _sealed(
    deps: Deps, session: UnitOfWork, poll: Votable, user: str, choice: Any, reason: str | None
) -> tuple[str, str, bytes]:
    """The voter's ballot as it waits — its lookup, its ballot key, and it sealed, bound to its
    row (poll, lookup) — its session marked as having written an anonymous vote (VOTED)."""
    session.info[VOTED] = True
    lookup = lookup_key(deps, poll, user)
    key = voter_key(deps, poll, user)
    sealed = _keys(deps.secret)[1].close(poll.id, lookup, pending.Waiting(key, choice, reason))
    return lookup, key, sealed


def settle(
    deps: Deps, session: UnitOfWork, poll: Votable, *, everything: bool = False, due: bool = False
) -> int:
    """Count the poll's pending ballots if at least `BATCH` wait (any number with
    `everything`, at close); how many were counted. Does nothing in a transaction that recorded
    a vote. Ballots another transaction holds (a concurrent flush) are left to it — what is left
    counts only if five or more — unless `everything`: then it waits for them. `due`: the caller
    has just seen that five or more wait (`flush_due`), so they are not counted again first."""
    if not poll.anonymous or session.info.get(VOTED):
        return 0
    if not everything and not due and pending.count(session, poll.id) < BATCH:
        return 0
    rows, deleted = pending.take(session, poll.id, wait=everything)
    if not rows or (not everything and len(rows) < BATCH):
        if deleted:
            pending.put_back(session, poll.id, rows)
        return 0
    seal = _keys(deps.secret)[1]
    batch, lookups, kept = [], [], []
    for lookup, sealed in rows:
        try:
            batch.append(seal.open(poll.id, lookup, sealed))
            lookups.append(lookup)
        except InvalidTag:
            # Sealed under another ALIGN_SECRET (a restore under a new one): kept, not counted.
            log.warning("P-%s: a waiting anonymous ballot cannot be opened", poll.number)
            kept.append((lookup, sealed))
    if not batch or (not everything and len(batch) < BATCH):
        if deleted:
            pending.put_back(session, poll.id, rows)
        return 0
    _shuffle(batch)
    moved = ballots.put_batch(session, poll.id, [(b.key, b.choice, b.reason) for b in batch])
    tallies.apply_changes(session, poll, moved)
    if deleted:
        pending.put_back(session, poll.id, kept)
    else:
        pending.drop(session, poll.id, lookups)
    session.info[CHECKPOINT] = True
    return len(batch)


def waiting(session: UnitOfWork, poll: Poll) -> int:
    """How many of the poll's ballots wait to be counted."""
    return pending.count(session, poll.id) if poll.anonymous else 0


def flush_due(deps: Deps, then: Callable[[UnitOfWork, Votable], None]) -> int:
    """Count every open poll's batch that is due, each in a transaction of its own, calling
    `then` in it for each poll whose tally moved (the scheduler's tick marks its live messages
    behind); how many polls moved. The first poll's batch is counted in the transaction that
    found the due polls (it has written nothing): a batch costs one transaction, not two.

    These transactions are not made durable at their commit (`uow(durable=False)`: on
    PostgreSQL the commit does not wait for the disk): each only moves ballots that wait,
    durably, in `pending_ballots` into `ballots` and the tally, and a crash that undoes it
    undoes all of it — the ballots wait again, and the next tick or read counts them. No vote
    that was acknowledged can be lost that way; a tally seen just before the crash may be
    seen again a batch behind, until then. A close's count (`settle(everything=True)`) runs in
    the close's own transaction, durable like it."""
    due: list[int] | None = None
    moved = 0
    while due is None or due:
        with deps.db.uow(durable=False) as session:
            if due is None:
                due = pending.polls_with(session, BATCH)
                if not due:
                    break
            poll = read_by_id(session, due.pop(0))
            if (
                poll is not None
                and poll.closed_at is None
                and settle(deps, session, poll, due=True)
            ):
                then(session, poll)
                moved += 1
    return moved


__all__ = [
    "BATCH",
    "VOTED",
    "flush_due",
    "hold",
    "lookup_key",
    "own",
    "replace",
    "settle",
    "waiting",
]
