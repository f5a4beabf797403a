"""The outbox: messages that are not a direct reply, written in the transaction of their cause.

A digest, a nudge, a poll's result at close or a webhook call is a row here, committed together
with the change that caused it — so a crash either keeps both or neither. The dispatcher
(`adapters/runtime.py`) delivers rows through the platform's `Sender`; every step below is its
own short transaction, and every replica on one database takes part in the same protocol:

- **Channels are lanes.** Rows for a Slack channel, a Teams conversation or the console go out
  in order, at the platform's pace, one worker at a time: `claim_lanes` gives a worker channels
  with due rows that nobody holds (`outbox_lanes`: `held_by` until `held_until`, PostgreSQL
  `FOR UPDATE SKIP LOCKED`) and whose next slot (`next_slot_at`) has come.
- **One message per turn, fenced.** `next_in_lane` first checks that the lane is still this
  worker's (another took it over only if this one stopped renewing), then stamps the channel's
  next row (`claimed_by`, `claimed_until`, `attempts`) — right before it is sent, never a batch
  ahead, so no claimed row waits behind a slow send until its lease runs out.
- **Leases are renewed while sending** (`heartbeat`), so a platform taking longer than the lease
  never lets a second worker take the same row; a worker that dies stops renewing, and once its
  lease runs out another takes over.
- **mark** — `sent` together with the lane's next slot (`mark_sent`), or rescheduled with
  backoff, or `failed` for good (`reschedule`) — only if the row is still this worker's.
- Webhook rows have no lane: each is claimed on its own (`claim`) and delivered independently.

A row whose earlier attempt may have reached the platform (a worker died mid-send, a timeout)
is sent again with the same idempotency key, flagged `tried_before`; the Slack sender then looks
for its marker in the channel before posting (adapters/slack/delivery.py), so a repeat is
detected and skipped. A row marked `sent` is never claimed again.

Engine side only: plain SQLAlchemy through the caller's session, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, tuple_, update

from bot.views import Reply, reply_to_payload
from storage.db import UnitOfWork, dialect_insert
from storage.models import OutboxLane, OutboxMessage

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
    created_at: datetime
    tried_before: bool = False
    """An earlier attempt may have reached the platform (its worker died, or it timed out)."""


def _claimed(row: OutboxMessage) -> Claimed:
    """Stamp `row` as this attempt (the caller set `claimed_by`/`claimed_until`)."""
    row.attempts += 1
    return Claimed(
        id=row.id,
        workspace=row.workspace,
        channel=row.channel,
        platform=row.platform,
        kind=row.kind,
        payload=row.payload,
        key=row.idempotency_key,
        attempts=row.attempts,
        created_at=row.created_at,
        tried_before=row.attempts > 1,
    )


def claim(
    session: UnitOfWork,
    *,
    worker: str,
    platforms: list[str],
    now: datetime,
    lease: timedelta,
    limit: int = 50,
) -> list[Claimed]:
    """Lease due rows of the given platforms to `worker`, each on its own (webhooks: no lane, no
    order). Rows of platforms this process cannot deliver are left alone, so a console and a
    server can share one database.

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
    out = []
    for row in session.execute(stmt).scalars():
        row.claimed_by = worker
        row.claimed_until = now + lease
        out.append(_claimed(row))
    return out


# ---------------------------------------------------------------- lanes: one channel, in order


@dataclass(frozen=True)
class Lane:
    """A channel's queue, held by one worker; `next_slot_at` is when its next message may go."""

    platform: str
    workspace: str
    channel: str
    next_slot_at: datetime | None = None

    def where(self) -> tuple[Any, ...]:
        return (
            OutboxLane.platform == self.platform,
            OutboxLane.workspace == self.workspace,
            OutboxLane.channel == self.channel,
        )

    def rows(self) -> tuple[Any, ...]:
        return (
            OutboxMessage.platform == self.platform,
            OutboxMessage.workspace == self.workspace,
            OutboxMessage.channel == self.channel,
        )


def claim_lanes(
    session: UnitOfWork,
    *,
    worker: str,
    platforms: list[str],
    now: datetime,
    lease: timedelta,
    limit: int = 50,
) -> list[Lane]:
    """Give `worker` up to `limit` channels that have due rows, that nobody holds and whose next
    slot has come. Lane rows are created here, the first time a channel has mail, in sorted
    order (two workers creating the same lanes then wait on each other instead of deadlocking).
    """
    if not platforms:
        return []
    busy = exists().where(
        OutboxLane.platform == OutboxMessage.platform,
        OutboxLane.workspace == OutboxMessage.workspace,
        OutboxLane.channel == OutboxMessage.channel,
        or_(OutboxLane.held_until > now, OutboxLane.next_slot_at > now),
    )
    keys = [
        (p, w, c)
        for p, w, c in session.execute(
            select(OutboxMessage.platform, OutboxMessage.workspace, OutboxMessage.channel)
            .where(
                OutboxMessage.status == PENDING,
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.platform.in_(platforms),
                ~busy,
            )
            .distinct()
            .order_by(OutboxMessage.platform, OutboxMessage.workspace, OutboxMessage.channel)
            .limit(limit)
        ).all()
    ]
    if not keys:
        return []
    table = OutboxLane.__table__
    session.execute(
        _insert(session)(table)
        .values([{"platform": p, "workspace": w, "channel": c} for p, w, c in keys])
        .on_conflict_do_nothing()
    )
    lanes = session.execute(
        select(OutboxLane)
        .where(
            tuple_(OutboxLane.platform, OutboxLane.workspace, OutboxLane.channel).in_(keys),
            or_(OutboxLane.held_until.is_(None), OutboxLane.held_until <= now),
            or_(OutboxLane.next_slot_at.is_(None), OutboxLane.next_slot_at <= now),
        )
        .order_by(OutboxLane.platform, OutboxLane.workspace, OutboxLane.channel)
        .with_for_update(skip_locked=True)
    ).scalars()
    out = []
    for lane in lanes:
        lane.held_by = worker
        lane.held_until = now + lease
        out.append(Lane(lane.platform, lane.workspace, lane.channel, lane.next_slot_at))
    return out


@dataclass(frozen=True)
class Turn:
    """What `next_in_lane` found: whether the lane is still ours, and the row to send now."""

    held: bool
    row: Claimed | None = None


def next_in_lane(
    session: UnitOfWork, lane: Lane, *, worker: str, now: datetime, lease: timedelta
) -> Turn:
    """The fencing check and the claim of one row, right before it is sent: the lane must still
    be `worker`'s (its hold is renewed here), and its first due row is stamped as this attempt.
    `Turn(held=False)`: another worker took the lane over, so this one stops. `row=None`:
    nothing to send now (the lane is empty, or its first row is still another worker's — sent
    after it, never before it)."""
    held = session.execute(
        update(OutboxLane)
        .where(*lane.where(), OutboxLane.held_by == worker)
        .values(held_until=now + lease)
        .returning(OutboxLane.channel)
    ).first()
    if held is None:
        return Turn(held=False)
    row = session.execute(
        select(OutboxMessage)
        .where(*lane.rows(), OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None or (
        row.claimed_by not in (None, worker)
        and row.claimed_until is not None
        and row.claimed_until > now
    ):
        return Turn(held=True)
    row.claimed_by = worker
    row.claimed_until = now + lease
    return Turn(held=True, row=_claimed(row))


def has_due(session: UnitOfWork, lane: Lane, *, now: datetime) -> bool:
    """Is anything due in the lane (worth waiting for its next slot)?"""
    found = session.execute(
        select(OutboxMessage.id)
        .where(*lane.rows(), OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now)
        .limit(1)
    ).first()
    return found is not None


def hold_back(session: UnitOfWork, lane: Lane, *, worker: str, not_before: datetime) -> None:
    """The platform asked this channel to wait (HTTP 429 Retry-After): no message goes to it,
    from any worker, before `not_before`."""
    session.execute(
        update(OutboxLane)
        .where(*lane.where(), OutboxLane.held_by == worker)
        .values(next_slot_at=not_before)
    )


def release_lane(session: UnitOfWork, lane: Lane, *, worker: str) -> None:
    """Let go of a lane (empty, rate-limited, or shutting down); its next slot stays."""
    session.execute(
        update(OutboxLane)
        .where(*lane.where(), OutboxLane.held_by == worker)
        .values(held_by=None, held_until=None)
    )


def heartbeat(session: UnitOfWork, *, worker: str, now: datetime, lease: timedelta) -> int:
    """Renew every lease `worker` holds, rows and lanes, while it is alive and sending; returns
    how many leases were renewed."""
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claimed_by == worker, OutboxMessage.status == PENDING)
        .values(claimed_until=now + lease)
        .returning(OutboxMessage.id)
    ).all()
    lanes = session.execute(
        update(OutboxLane)
        .where(OutboxLane.held_by == worker)
        .values(held_until=now + lease)
        .returning(OutboxLane.channel)
    ).all()
    return len(rows) + len(lanes)


def _ours(message_id: int, worker: str) -> Any:
    return (
        OutboxMessage.id == message_id,
        OutboxMessage.claimed_by == worker,
        OutboxMessage.status == PENDING,
    )


def mark_sent(
    session: UnitOfWork,
    message_id: int,
    *,
    worker: str,
    now: datetime,
    lane: Lane | None = None,
    next_slot_at: datetime | None = None,
) -> bool:
    """Record the delivery, and the lane's next slot with it. False when the lease was lost
    (another worker took the row over, and will look for this send before repeating it)."""
    done = session.execute(
        update(OutboxMessage)
        .where(*_ours(message_id, worker))
        .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
        .returning(OutboxMessage.id)
    ).first()
    if lane is not None and next_slot_at is not None:
        session.execute(
            update(OutboxLane)
            .where(*lane.where(), OutboxLane.held_by == worker)
            .values(next_slot_at=next_slot_at)
        )
    return done is not None


def reschedule(
    session: UnitOfWork,
    message_id: int,
    *,
    worker: str,
    at: datetime | None,
    error: str,
    permanent: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """After a failed send: try again at `at` (None: keep its place in the channel's order, as
    after a rate limit that holds the whole channel back), or give up (`failed`, kept with its
    last error so `digest status` can show it) when the failure is permanent or attempts are
    used up."""
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
    if at is not None:
        row.next_attempt_at = at
    return PENDING


def release_worker(session: UnitOfWork, *, worker: str) -> int:
    """Give back every unsent row and every lane `worker` still holds (it is shutting down):
    rows due as they were, attempts as counted — a send cut short may have reached the
    platform, and the next try carries the same key and looks for it first. Returns how many
    rows were released."""
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claimed_by == worker, OutboxMessage.status == PENDING)
        .values(claimed_by=None, claimed_until=None)
        .returning(OutboxMessage.id)
    ).all()
    session.execute(
        update(OutboxLane).where(OutboxLane.held_by == worker).values(held_by=None, held_until=None)
    )
    return len(rows)


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
    "Lane",
    "Turn",
    "channel_failures",
    "claim",
    "claim_lanes",
    "enqueue",
    "has_due",
    "heartbeat",
    "hold_back",
    "mark_sent",
    "next_in_lane",
    "release_lane",
    "release_worker",
    "reschedule",
]
