"""Who is in a Teams conversation, and who a mention names.

`roster_fetch` lists a conversation's members through the connector's paged members API for the
shared roster cache (`adapters/roster.py`); on the way it keeps each member's display name (so
cards can show names) and `29:` id → AAD object id (mention entities carry the `29:` id; Align
keys people by AAD id) in the `profiles` table, so every process resolves mentions alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

from botframework.connector.aio import ConnectorClient

from adapters.roster import Fetch
from storage import profiles
from storage.db import Database, UnitOfWork

log = logging.getLogger("align.teams.people")

PAGE_SIZE = 500
MAX_PAGES = 20  # 10,000 members: past that, "who has not voted" is not a useful list


def remember(
    db: Database,
    workspace: str,
    *,
    names: dict[str, str],
    aliases: dict[str, str],
    now: datetime,
) -> None:
    """Display names by AAD id, and `29:` id → AAD id pairs, in `profiles`."""
    if names or aliases:
        with db.uow() as session:
            profiles.save_names(session, workspace, names, now=now, aliases=aliases)


def roster_fetch(
    client: ConnectorClient, db: Database, *, workspace: str, conversation: str, now: datetime
) -> Fetch:
    """The Teams `Fetch`: every member with an AAD object id (bots and guests without one cannot
    vote by that id), page by page."""

    async def fetch() -> list[str] | None:
        members: list[str] = []
        names: dict[str, str] = {}
        aliases: dict[str, str] = {}
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.conversations.get_conversation_paged_members(
                conversation, page_size=PAGE_SIZE, continuation_token=token
            )
            for account in page.members or []:
                if not account.aad_object_id:
                    continue
                members.append(account.aad_object_id)
                if account.id:
                    aliases[account.id] = account.aad_object_id
                if account.name:
                    names[account.aad_object_id] = account.name
            token = page.continuation_token
            if not token:
                break
        await asyncio.to_thread(remember, db, workspace, names=names, aliases=aliases, now=now)
        return members

    return fetch


def keep_name(
    session: UnitOfWork,
    workspace: str,
    *,
    user: str,
    name: str | None,
    teams_id: str | None,
    now: datetime,
) -> bool:
    """A sender's display name (and `29:` id), in the caller's transaction, only if no name is
    stored for them yet — one stored by a turn or a roster is as new or newer. For a message
    given up before any of its turns stored it (the inbox's asker), so that its notice in the
    channel can name and mention them. Whether a name is known for them now."""
    if profiles.names(session, workspace, [user]):
        return True
    if not name:
        return False
    aliases = {teams_id: user} if teams_id and teams_id != user else {}
    profiles.save_names(session, workspace, {user: name}, now=now, aliases=aliases)
    return True


def aad_ids(db: Database, workspace: str, teams_ids: Iterable[str]) -> dict[str, str]:
    """The AAD object ids known for these `29:` ids."""
    with db.uow() as session:
        found = {t: profiles.user_by_alias(session, workspace, t) for t in set(teams_ids)}
    return {t: aad for t, aad in found.items() if aad}


__all__ = ["aad_ids", "keep_name", "remember", "roster_fetch"]
