"""The outbox: messages that are not a direct reply, written in the transaction of their cause.

A digest, a nudge, a poll's result at close or a webhook call is a row here, committed together
with the change that caused it — so a crash either keeps both or neither. The dispatcher
(`adapters/runtime.py`) delivers rows through the platform's `Sender` in three steps, each its own
transaction:

1. claim   — pick due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several processes never pick
             the same row) and stamp a lease (`claimed_by`, `claimed_until`); commit;
2. send    — outside any transaction, with the row's stable idempotency key;
3. mark    — `sent` (or rescheduled with backoff, or `failed` for good) — only if the lease is
             still ours.

Delivery is therefore *at least once, with a key*: a process killed between 2 and 3 leaves the row
claimed; once the lease expires another worker sends it again, with the same idempotency key, so a
platform (or a receiver of webhooks) that honours the key can drop the duplicate. A row marked
`sent` is never claimed again.

Engine side only: plain SQLAlchemy through the caller's session, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from bot.views import Reply, reply_to_payload
from storage.db import UnitOfWork, dialect_insert
from storage.models import OutboxMessage

PENDING, SENT, FAILED = "pending", "sent", "failed"
MAX_ATTEMPTS = 8


def _insert(session: UnitOfWork) -> Any:
    return dialect_insert(session.get_bind().dialect.name)


def enqueue(
    session: UnitOfWork,
    *,
    workspace: str,
    channel: str,
    platform: str,
    kind: str,
    reply: Reply,
    key: str,
    now: datetime,
) -> bool:
    """Write one outgoing message in the caller's transaction; key is the idempotency key
    (unique) — a second enqueue with the same key is a no-op returning False."""
    stmt = (
        _insert(session)(OutboxMessage)
        .values(
            workspace=workspace,
            channel=channel,
            platform=platform,
            kind=kind,
            payload=reply_to_payload(reply),
            idempotency_key=key[:200],
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.idempotency_key])
        .returning(OutboxMessage.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


@dataclass(frozen=True)
class Claimed:
    """A row leased to one worker: everything needed to send it, detached from the session."""

    id: int
    workspace: str
    channel: str
    platform: str
    kind: str
    payload: dict[str, Any]
    key: str
    attempts: int


def claim(
    session: UnitOfWork,
    *,
    worker: str,
    platforms: list[str],
    now: datetime,
    lease: timedelta,
    limit: int = 50,
) -> list[Claimed]:
    """Lease due rows of the given platforms to `worker`. Rows of platforms this process cannot
    deliver are left alone, so a console and a server can share one database.

    On SQLite the transaction already holds the write lock (`BEGIN IMMEDIATE`), which serialises
    claimers; on PostgreSQL `SKIP LOCKED` lets concurrent claimers take disjoint rows."""
    if not platforms:
        return []
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.platform.in_(platforms),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.execute(stmt).scalars())
    out = []
    for row in rows:
        row.claimed_by = worker
        row.claimed_until = now + lease
        row.attempts += 1
        out.append(
            Claimed(
                id=row.id,
                workspace=row.workspace,
                channel=row.channel,
                platform=row.platform,
                kind=row.kind,
                payload=row.payload,
                key=row.idempotency_key,
                attempts=row.attempts,
            )
        )
    return out


def _ours(message_id: int, worker: str) -> Any:
    return (
        OutboxMessage.id == message_id,
        OutboxMessage.claimed_by == worker,
        OutboxMessage.status == PENDING,
    )


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (`CursorResult.rowcount`; the generic `Result` type lacks it)."""
    return int(getattr(result, "rowcount", 0) or 0)


def mark_sent(session: UnitOfWork, message_id: int, *, worker: str, now: datetime) -> bool:
    """Record the delivery. False when the lease was lost (another worker re-claimed the row
    after it expired, and will send it with the same key)."""
    result = session.execute(
        update(OutboxMessage)
        .where(*_ours(message_id, worker))
        .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
    )
    return bool(_rowcount(result))


def reschedule(
    session: UnitOfWork,
    message_id: int,
    *,
    worker: str,
    at: datetime,
    error: str,
    permanent: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """After a failed send: try again at `at`, or give up (`failed`, kept with its last error so
    `digest status` can show it) when the failure is permanent or attempts are used up."""
    row = session.execute(
        select(OutboxMessage).where(*_ours(message_id, worker)).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return "lost"
    row.last_error = error[:2000]
    row.claimed_by = None
    row.claimed_until = None
    if permanent or row.attempts >= max_attempts:
        row.status = FAILED
        if not permanent:
            row.last_error = f"gave up after {row.attempts} attempts: {error}"[:2000]
        return FAILED
    row.next_attempt_at = at
    return PENDING


def release(session: UnitOfWork, ids: list[int], *, worker: str, not_before: datetime) -> None:
    """Give back rows claimed but not tried (their channel is rate-limited): no attempt counted."""
    if not ids:
        return
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.claimed_by == worker,
            OutboxMessage.status == PENDING,
        )
        .values(
            claimed_by=None,
            claimed_until=None,
            attempts=OutboxMessage.attempts - 1,
            next_attempt_at=func.max(OutboxMessage.next_attempt_at, not_before)
            if session.get_bind().dialect.name == "sqlite"
            else func.greatest(OutboxMessage.next_attempt_at, not_before),
        )
    )


def release_worker(session: UnitOfWork, *, worker: str) -> int:
    """Give back every unsent row `worker` still holds (it is shutting down): due as they were,
    attempts as counted — a send cut short may have reached the platform, and the next try
    carries the same idempotency key. Returns how many rows were released."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claimed_by == worker, OutboxMessage.status == PENDING)
        .values(claimed_by=None, claimed_until=None)
    )
    return _rowcount(result)


@dataclass(frozen=True)
class Failure:
    kind: str
    created_at: datetime
    attempts: int
    error: str


def channel_failures(
    session: UnitOfWork, workspace: str, channel: str, *, limit: int = 5
) -> tuple[list[Failure], int]:
    """The channel's most recent permanent delivery failures, and how many messages wait."""
    rows = session.execute(
        select(OutboxMessage)
        .where(
            OutboxMessage.workspace == workspace,
            OutboxMessage.channel == channel,
            OutboxMessage.status == FAILED,
        )
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    ).scalars()
    failures = [Failure(r.kind, r.created_at, r.attempts, r.last_error or "") for r in rows]
    pending = session.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.workspace == workspace,
            OutboxMessage.channel == channel,
            OutboxMessage.status == PENDING,
        )
    ).scalar_one()
    return failures, int(pending)


__all__ = [
    "FAILED",
    "MAX_ATTEMPTS",
    "PENDING",
    "SENT",
    "Claimed",
    "Failure",
    "channel_failures",
    "claim",
    "enqueue",
    "mark_sent",
    "release",
    "release_worker",
    "reschedule",
]
