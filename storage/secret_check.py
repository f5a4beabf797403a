"""The fingerprint of ALIGN_SECRET kept in the database, so that every process sharing it can
check it holds the same secret before it starts.

Everything Align seals or keys — inbox requests, pending anonymous ballots, anonymous ballots'
voter keys, webhook signing secrets — derives from ALIGN_SECRET; a process started with another
one (a typo in one replica's environment) would seal requests no other process can open, and
count anonymous ballots under keys nobody else recognises. Nothing in the data says so until it
is too late, so the first process stores a fingerprint and every later one compares.

The fingerprint is a key of its own, derived from ALIGN_SECRET for this purpose only (`derive`,
HKDF-SHA256): it says nothing about the secret or any other key derived from it. Whoever holds
the database could test guesses of a weak secret against it — as they already can against any
sealed row — so ALIGN_SECRET must be long and random, as the README says.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from storage.db import Database, dialect_insert
from storage.inbox import UNFINISHED
from storage.models import InboxEntry, PendingBallot, SecretFingerprint, Webhook
from storage.sealing import derive

NAME = "ALIGN_SECRET"
_PURPOSE = b"align secret fingerprint v1"


def fingerprint(secret: bytes) -> str:
    """The fingerprint stored and compared: hex of a 32-byte key derived for this purpose."""
    return derive(secret, _PURPOSE).hex()


def stored(db: Database) -> str | None:
    """The fingerprint this database holds, or None before any process stored one."""
    with db.uow() as session:
        return session.execute(
            select(SecretFingerprint.fingerprint).where(SecretFingerprint.name == NAME)
        ).scalar_one_or_none()


def claim(db: Database, mine: str, *, now: datetime) -> str:
    """Store `mine` unless a fingerprint is stored already, and return the one stored.

    INSERT … ON CONFLICT DO NOTHING, then read back in the same transaction: two processes
    starting together on an empty database both insert, one wins, and both read the winner's —
    the loser then sees a mismatch if its secret differs, instead of each storing its own."""
    with db.uow() as session:
        insert = dialect_insert(session.get_bind().dialect.name)
        session.execute(
            insert(SecretFingerprint)
            .values(name=NAME, fingerprint=mine, stored_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return session.execute(
            select(SecretFingerprint.fingerprint).where(SecretFingerprint.name == NAME)
        ).scalar_one()


def replace(db: Database, mine: str, *, now: datetime) -> str | None:
    """Store `mine` whatever was stored (the operator adopts a new secret); returns the
    fingerprint it replaced, or None."""
    with db.uow() as session:
        before = session.execute(
            select(SecretFingerprint.fingerprint)
            .where(SecretFingerprint.name == NAME)
            .with_for_update()
        ).scalar_one_or_none()
        insert = dialect_insert(session.get_bind().dialect.name)
        session.execute(
            insert(SecretFingerprint)
            .values(name=NAME, fingerprint=mine, stored_at=now)
            .on_conflict_do_update(
                index_elements=["name"], set_={"fingerprint": mine, "stored_at": now}
            )
        )
        return before


def sealed_counts(db: Database) -> dict[str, int]:
    """What the old secret still holds shut, for the operator about to adopt a new one: pending
    anonymous ballots, inbox requests not finished, webhooks (their signing secrets change)."""
    with db.uow() as session:

        def count(model: type, *where: object) -> int:
            query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
            return int(session.execute(query).scalar_one())

        return {
            "pending": count(PendingBallot),
            "inbox": count(InboxEntry, InboxEntry.status.in_(UNFINISHED)),
            "webhooks": count(Webhook, Webhook.removed_at.is_(None)),
        }


__all__ = ["NAME", "claim", "fingerprint", "replace", "sealed_counts", "stored"]
