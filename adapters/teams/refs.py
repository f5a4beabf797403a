"""The database side of the Teams adapter: conversation references and display names. Plain
synchronous functions; the bot runs them in worker threads.

A conversation reference is stored per (workspace, channel) — for a channel it points at the
channel itself (no `;messageid=`, no activity id), so a proactive message starts a new post
there instead of replying inside whichever thread last spoke to the bot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage import profiles
from storage.db import Database, UnitOfWork, dialect_insert
from storage.models import ConversationRef

PLATFORM = "teams"


def _insert(db: Database) -> Any:
    return dialect_insert(db.dialect)


def save_reference(
    db: Database, *, workspace: str, channel: str, reference: dict[str, Any], now: datetime
) -> bool:
    """Store how to reach this conversation later, unless the stored way is the same (who
    happened to speak last, `user`, does not count: a channel is reached alike whoever spoke).
    True when it was written. A read first, and a write only when it changed: the reference
    is the same on nearly every message, and a write per message held SQLite's write lock."""
    with db.uow() as session:
        found = session.get(ConversationRef, (workspace, channel))
        if (
            found is not None
            and found.platform == PLATFORM
            and same_way_in(dict(found.reference), reference)
        ):
            return False
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
        session.execute(stmt)
    return True


def keep_reference(
    session: UnitOfWork,
    *,
    workspace: str,
    channel: str,
    reference: dict[str, Any],
    now: datetime,
) -> None:
    """Store how to reach this conversation, in the caller's transaction, only if no way in is
    stored yet: a stored one was written by a turn that ran, and is kept. For a request given
    up before any of its turns stored one (the inbox's asker), so the outbox can tell its sender
    in that conversation."""
    session.execute(
        dialect_insert(session.get_bind().dialect.name)(ConversationRef)
        .values(
            workspace=workspace,
            channel=channel,
            platform=PLATFORM,
            reference=reference,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[ConversationRef.workspace, ConversationRef.channel])
    )


def same_way_in(stored: dict[str, Any], reference: dict[str, Any]) -> bool:
    """Whether two serialized conversation references reach the conversation alike."""
    return {k: v for k, v in stored.items() if k != "user"} == {
        k: v for k, v in reference.items() if k != "user"
    }


def load_reference(db: Database, *, workspace: str, channel: str) -> dict[str, Any] | None:
    with db.uow() as session:
        found = session.get(ConversationRef, (workspace, channel))
        if found is None or found.platform != PLATFORM:
            return None
        return dict(found.reference)


def teams_id(db: Database, workspace: str, user: str) -> str:
    """How to name a person to the connector when starting a chat with them: their `29:` id
    (learned from rosters and mentions), else their AAD object id, which Teams also accepts for
    a personal conversation with a bot the person has installed."""
    return load_teams_ids(db, workspace, [user]).get(user, user)


def load_teams_ids(db: Database, workspace: str, users: Iterable[str]) -> dict[str, str]:
    """`29:` ids by AAD id, of those known: a mention in a text message names people by that
    id (a card's takes the AAD id too). Nothing is read for nobody."""
    wanted = sorted(set(users))
    if not wanted:
        return {}
    with db.uow() as session:
        found = {user: profiles.alias_of(session, workspace, user) for user in wanted}
    return {user: alias for user, alias in found.items() if alias}


def load_names(db: Database, workspace: str, users: Iterable[str]) -> dict[str, str]:
    """Display names by AAD id, for rendering `<@id>`."""
    with db.uow() as session:
        return profiles.names(session, workspace, users)
