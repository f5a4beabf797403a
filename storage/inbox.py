"""The inbox table's statements: record, fence, answer, finish, take over, prune.

Each is one short statement (or two) in the caller's transaction; `adapters/inbox.py` says when.
A row is always claimed by exactly one process (`claimed_by` until `claimed_until`): the one that
recorded it, or — once that claim has run out, because the process died — the one that took it
over; or, queued by a web process that hands off, by nobody until a worker takes it. Whoever
works a row checks its claim inside the very transaction that runs the engine (`fence`, a row
lock), so two processes never both run a command, however slow either is.

The statements on every request's path are built once, against the table, and bound per call:
building an ORM `update()` per call (with its in-session synchronisation) cost more than the
database work. RETURNING rather than rowcount: psycopg reports -1 for ON CONFLICT DO NOTHING.

On PostgreSQL a row queued for the workers (`record` without a worker) also notifies them
(`pg_notify`, on a channel of the schema's own: `queued_notices`) when its transaction commits,
from the INSERT itself — no round trip more — so an idle worker waits for a notification instead
of asking the database every few tens of milliseconds (adapters/recovery.py `Queue`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    update,
)

from storage.db import (
    Database,
    Prepared,
    UnitOfWork,
    at_commit,
    dialect_insert,
    in_list,
    sql_constant,
)
from storage.models import InboxEntry, ProcessedEvent

RECEIVED, ANSWERED, DONE, FAILED = "received", "answered", "done", "failed"
UNFINISHED = (RECEIVED, ANSWERED)

_T: Table = InboxEntry.__table__  # type: ignore[assignment]  # a mapped class's table is one
_OURS = (_T.c.id == bindparam("entry_id"), _T.c.claimed_by == bindparam("worker"))


_UNFINISHED = _T.c.status.in_([sql_constant(status) for status in UNFINISHED])
_FENCE = Prepared(
    lambda _dialect: (
        select(_T.c.dedupe_key, _T.c.status, _T.c.answer)
        .where(*_OURS, _UNFINISHED)
        .with_for_update()
    )
)
_ANSWERED = Prepared(
    lambda _dialect: (
        update(_T)
        .where(_T.c.id == bindparam("entry_id"))
        .values(
            status=sql_constant(ANSWERED),
            answer=bindparam("sealed"),
            claimed_until=bindparam("until"),
        )
    )
)
_DONE = {
    "status": sql_constant(DONE),
    "finished_at": bindparam("at"),
    "claimed_by": null(),
    "claimed_until": null(),
    "payload": null(),
    "answer": null(),
}
"""What a done mark writes: only the key stays, for dedupe."""
_FINISH = Prepared(
    lambda _dialect: update(_T).where(*_OURS, _UNFINISHED).values(_DONE).returning(_T.c.id)
)


def _finish_many_statement(dialect: str) -> Any:
    """On SQLite the rows are looked up by id, as they were with an IN of bound values: with
    the ids unpacked from JSON (`in_list`), SQLite can no longer count them, and walked every
    unfinished row instead (the status index) — told the status test is likely true (the
    listed rows are unfinished, but for a rare one taken over), it looks each id up again."""
    unfinished = func.likely(_UNFINISHED) if dialect == "sqlite" else _UNFINISHED
    return (
        update(_T)
        .where(
            in_list(_T.c.id, "entry_ids", dialect),
            _T.c.claimed_by == bindparam("worker"),
            unfinished,
        )
        .values(_DONE)
        .returning(_T.c.id)
    )


_FINISH_MANY = Prepared(_finish_many_statement)
_QUEUED = (
    _T.c.status == RECEIVED,
    or_(_T.c.claimed_until.is_(None), _T.c.claimed_until <= bindparam("now")),
)
_WAITING = select(func.count()).where(*_QUEUED)
_ANY_WAITING = (
    select(_T.c.id)
    .where(*_QUEUED, _T.c.platform.in_(bindparam("platforms", expanding=True)))
    .limit(1)
)


QUEUED_CHANNEL = "'align_inbox:' || current_schema()"
"""The channel a queued row is announced on (SQL): one per schema, since a channel is the
whole database's, and deployments or tests sharing a database each have a schema of their own."""


def _record_statement(dialect: str) -> Any:
    insert = (
        dialect_insert(dialect)(_T)
        .values(
            platform=bindparam("platform"),
            dedupe_key=bindparam("key"),
            status=sql_constant(RECEIVED),
            attempts=bindparam("attempts"),
            claimed_by=bindparam("worker"),
            claimed_until=bindparam("until"),
            received_at=bindparam("now"),
            payload=bindparam("sealed"),
        )
        .on_conflict_do_nothing(index_elements=[_T.c.dedupe_key])
    )
    if dialect != "postgresql":
        return insert.returning(_T.c.id)
    # The row's id, and for a queued row a notification to the workers (sent at the COMMIT).
    recorded = insert.returning(_T.c.id, _T.c.claimed_by).cte("recorded")
    notify = (
        select(func.pg_notify(literal_column(QUEUED_CHANNEL), literal_column("''")))
        .where(recorded.c.claimed_by.is_(None))
        .correlate(recorded)
        .scalar_subquery()
    )
    return select(recorded.c.id, notify).select_from(recorded)


_RECORD = Prepared(_record_statement)


def record(
    session: UnitOfWork,
    *,
    platform: str,
    key: str,
    payload: str,
    worker: str | None,
    now: datetime,
    until: datetime | None,
) -> int | None:
    """Insert a request, claimed by `worker` until `until`; its id, or None when the key was
    recorded before (a platform's retry, or a replayed request). Without a worker it is
    queued, claimed by nobody until nothing (no clock to compare across machines): the first
    worker process to look takes it (`take_over`), and its attempts count from nought — being
    queued is not a crash."""
    params = {
        "platform": platform,
        "key": key[:200],
        "worker": worker,
        "attempts": 1 if worker else 0,
        "until": until,
        "now": now,
        "sealed": payload,
    }
    found = _RECORD.run(session, params)
    return None if found is None else int(found[0])


@asynccontextmanager
async def queued_notices(db: Database) -> AsyncIterator[AsyncIterator[object]]:
    """PostgreSQL only: a connection of its own, listening for rows queued for the workers in
    this schema (`record` without a worker); yields the iterator of their notifications, each
    sent once the row's transaction committed. Raises what the connection raises (it is lost:
    the caller listens again, and meanwhile looks at the queue itself)."""
    import psycopg
    from psycopg import sql

    _, params = db.engine.dialect.create_connect_args(db.engine.url)
    params.pop("context", None)  # SQLAlchemy's adapters, for its own connections
    conn = await psycopg.AsyncConnection.connect(
        autocommit=True, connect_timeout=max(2, round(db.connect_timeout)), **params
    )
    async with conn:
        found = await (await conn.execute(f"SELECT {QUEUED_CHANNEL}")).fetchone()
        assert found is not None
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(str(found[0]))))
        notices = conn.notifies()
        try:
            yield notices
        finally:
            # It holds the connection's lock while it waits: closing the connection first
            # would wait for it forever.
            await notices.aclose()


@dataclass(frozen=True)
class Fenced:
    """A row this worker still holds, locked for the rest of the transaction."""

    key: str
    status: str
    answer: str | None


def fence(session: UnitOfWork, entry_id: int, *, worker: str) -> Fenced | None:
    """Lock the row if `worker` still holds it unfinished; None when it does not (it was finished,
    or taken over after the claim ran out) — the caller then does nothing."""
    row = _FENCE.run(session, {"entry_id": entry_id, "worker": worker})
    return None if row is None else Fenced(*row)


ANSWERED_AT_COMMIT = ("inbox answered",)
"""The `at_commit` key of the answered marks: its repr sorts before the poll tallies' keys, so
a group's marks are written before it takes a poll's tally row, which every other group of
votes on that poll waits for until this one commits."""


def answered_at_commit(session: UnitOfWork, entry_id: int, *, answer: str, until: datetime) -> None:
    """The engine ran (in this transaction): keep its reply until it is delivered, and give the
    delivery a fresh claim — as one of the transaction's last statements (`storage.db.at_commit`),
    together with every other answered mark of the transaction: a worker's group of votes
    writes its marks in one round trip (psycopg pipelines an executemany) instead of one each.
    A savepoint that rolls back takes its mark with it, as it took the UPDATE."""
    mark = {"entry_id": entry_id, "sealed": answer, "until": until}
    at_commit(session, ANSWERED_AT_COMMIT, _write_answered, mark)


def _write_answered(session: UnitOfWork, marks: list[dict[str, Any]]) -> None:
    if len(marks) == 1:
        _ANSWERED.run(session, marks[0])
    else:
        _ANSWERED.run_many(session, marks)


def finish(session: UnitOfWork, *, entry_id: int, worker: str, now: datetime) -> bool:
    """Done: the request and its answer are cleared (only the key stays, for dedupe). False when
    `worker` no longer held the row."""
    params = {"entry_id": entry_id, "worker": worker, "at": now}
    return _FINISH.run(session, params) is not None


def finish_many(
    session: UnitOfWork, *, entry_ids: list[int], worker: str, now: datetime
) -> set[int]:
    """`finish` for several rows in one statement (the done marks of a burst); the ids of those
    `worker` still held, and so finished."""
    if not entry_ids:
        return set()
    params = {"entry_ids": entry_ids, "worker": worker, "at": now}
    return {int(row[0]) for row in _FINISH_MANY.rows(session, params)}


def waiting(session: UnitOfWork, *, now: datetime) -> int:
    """How many requests no live process holds: handed off by a web process, or left by a
    dead one — the queue the worker processes share."""
    return int(session.execute(_WAITING, {"now": now}).scalar_one())


def any_waiting(session: UnitOfWork, *, now: datetime, platforms: list[str]) -> bool:
    """Whether `waiting` has a row of one of `platforms` (those the asking process can run):
    one index probe, where counting would read the whole queue."""
    found = session.execute(_ANY_WAITING, {"now": now, "platforms": platforms}).first()
    return found is not None


@dataclass(frozen=True)
class Unfinished:
    """A row taken over from a claim that ran out, detached from the session."""

    id: int
    platform: str
    status: str
    payload: str | None
    answer: str | None
    attempts: int


def _claim_queued_statement(dialect: str) -> Any:
    queued = (
        select(_T.c.id)
        .where(
            _T.c.status == sql_constant(RECEIVED),
            _T.c.claimed_until.is_(None),
            in_list(_T.c.platform, "platforms", dialect),
        )
        .order_by(_T.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    if dialect == "sqlite":
        # SQLite's LIMIT comes with an OFFSET, which SQLAlchemy would bind (a value no caller
        # of a `Prepared` statement passes) unless it is given one.
        queued = queued.offset(literal_column("0"))
    return (
        update(_T)
        .where(_T.c.id.in_(queued.scalar_subquery()))
        .values(
            claimed_by=bindparam("worker"),
            claimed_until=bindparam("until"),
            attempts=_T.c.attempts + literal_column("1"),
        )
        .returning(_T.c.id, _T.c.platform, _T.c.status, _T.c.payload, _T.c.answer, _T.c.attempts)
    )


_CLAIM_QUEUED = Prepared(_claim_queued_statement)


def claim_queued(
    session: UnitOfWork,
    *,
    worker: str,
    until: datetime,
    platforms: list[str],
    limit: int,
) -> list[Unfinished]:
    """Claim up to `limit` rows web processes queued (claimed by nobody until nothing) in one
    statement, oldest first: the queue's common case, with none of `take_over`'s care for rows
    a process died with (`take_over` handles those)."""
    params = {"worker": worker, "until": until, "platforms": platforms, "limit": limit}
    rows = _CLAIM_QUEUED.rows(session, params)
    return sorted((Unfinished(*row) for row in rows), key=lambda row: row.id)


def take_over(
    session: UnitOfWork,
    *,
    worker: str,
    now: datetime,
    until: datetime,
    platforms: list[str],
    max_attempts: int,
    limit: int,
    skip: list[int] | None = None,
    replies_owed: bool = True,
    retried_alone: bool = False,
    on_give_up: Callable[[UnitOfWork, Unfinished], None] | None = None,
) -> tuple[list[Unfinished], int]:
    """Claim unfinished rows whose claim ran out: `answered` ones of any platform (their reply
    only needs the outbox), `received` ones of `platforms` (this process can re-run those).
    A row claimed `max_attempts` times already is given up (`failed`): something in it kills
    the process that works it. Rows in `skip` (the caller is working them) are left alone.
    Without `replies_owed`, `answered` rows are left too (to recovery: the queue of hand-offs
    takes requests to run). With `retried_alone`, a request some process already took and
    died with is taken on its own: a process that dies adds an attempt to every row it held,
    and a request that kills its worker must not take the requests queued beside it to
    MAX_ATTEMPTS too.
    `on_give_up` sees each row given up, before its payload is cleared, in this transaction
    (to tell the person who sent it).
    Returns the rows taken and how many were given up.

    On SQLite the transaction holds the write lock (`BEGIN IMMEDIATE`); on PostgreSQL `SKIP
    LOCKED` lets several workers take disjoint rows, and skips a row a live worker has fenced."""
    rows = (
        session.execute(
            select(InboxEntry)
            .where(
                or_(
                    InboxEntry.status == ANSWERED if replies_owed else false(),
                    (InboxEntry.status == RECEIVED) & InboxEntry.platform.in_(platforms),
                ),
                or_(InboxEntry.claimed_until.is_(None), InboxEntry.claimed_until <= now),
                InboxEntry.id.not_in(skip or []),
            )
            .order_by(InboxEntry.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    taken: list[Unfinished] = []
    given_up = 0
    for row in rows:
        if row.attempts >= max_attempts:
            if on_give_up is not None and row.status == RECEIVED:
                on_give_up(
                    session,
                    Unfinished(row.id, row.platform, row.status, row.payload, None, row.attempts),
                )
            row.status, row.claimed_by, row.claimed_until = FAILED, None, None
            row.finished_at, row.payload, row.answer = now, None, None
            given_up += 1
            continue
        alone = retried_alone and row.status == RECEIVED and row.attempts > 0
        if alone and taken:
            continue  # in a later turn, on its own
        row.attempts += 1
        row.claimed_by, row.claimed_until = worker, until
        taken.append(
            Unfinished(row.id, row.platform, row.status, row.payload, row.answer, row.attempts)
        )
        if alone:
            break
    return taken, given_up


def prune(session: UnitOfWork, *, before: datetime) -> int:
    """Delete finished rows received before `before` (their keys no longer need to catch a
    replay), and the old `processed_events` of the dedupe the inbox replaced."""
    gone = session.execute(
        delete(InboxEntry).where(
            InboxEntry.status.in_((DONE, FAILED)), InboxEntry.received_at < before
        )
    )
    old = session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < before))
    return int(gone.rowcount or 0) + int(old.rowcount or 0)  # type: ignore[attr-defined]


__all__ = [
    "ANSWERED",
    "DONE",
    "FAILED",
    "RECEIVED",
    "Fenced",
    "Unfinished",
    "answered_at_commit",
    "any_waiting",
    "claim_queued",
    "fence",
    "finish",
    "finish_many",
    "prune",
    "queued_notices",
    "record",
    "take_over",
    "waiting",
]
