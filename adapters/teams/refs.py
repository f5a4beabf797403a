"""The database side of the Teams adapter: conversation references, handled activity ids and
display names. Plain synchronous functions; the bot runs them in worker threads.

A conversation reference is stored per (workspace, channel) — for a channel it points at the
channel itself (no `;messageid=`, no activity id), so a proactive message starts a new post
there instead of replying inside whichever thread last spoke to the bot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage import profiles
from storage.db import Database, dialect_insert
from storage.models import ConversationRef

PLATFORM = "teams"


def _insert(db: Database) -> Any:
    return dialect_insert(db.dialect)


def save_reference(
    db: Database, *, workspace: str, channel: str, reference: dict[str, Any], now: datetime
) -> None:
    """Insert or refresh how to reach this conversation later (one statement: no race)."""
    values = {
        "workspace": workspace,
        "channel": channel,
        "platform": PLATFORM,
        "reference": reference,
        "updated_at": now,
    }
    stmt = (
        _insert(db)(ConversationRef)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[ConversationRef.workspace, ConversationRef.channel],
            set_={"reference": reference, "updated_at": now, "platform": PLATFORM},
        )
    )
    with db.uow() as session:
        session.execute(stmt)


def load_reference(db: Database, *, workspace: str, channel: str) -> dict[str, Any] | None:
    with db.uow() as session:
        found = session.get(ConversationRef, (workspace, channel))
        if found is None or found.platform != PLATFORM:
            return None
        return dict(found.reference)


def first_time(db: Database, *, conversation: str, activity_id: str, now: datetime) -> bool:
    """Record an incoming activity; False when it was handled before (Teams redelivers an
    activity when the bot was slow to answer, and a vote or a decision must not happen twice)."""
    digest = hashlib.sha256(f"{conversation}\n{activity_id}".encode()).hexdigest()[:48]
    return db.first_time(f"teams:{digest}", platform=PLATFORM, now=now)


def teams_id(db: Database, workspace: str, user: str) -> str:
    """How to name a person to the connector when starting a chat with them: their `29:` id
    (learned from rosters and mentions), else their AAD object id, which Teams also accepts for
    a personal conversation with a bot the person has installed."""
    with db.uow() as session:
        return profiles.alias_of(session, workspace, user) or user


def load_names(db: Database, workspace: str, users: Iterable[str]) -> dict[str, str]:
    """Display names by AAD id, for rendering `<@id>`."""
    with db.uow() as session:
        return profiles.names(session, workspace, users)
