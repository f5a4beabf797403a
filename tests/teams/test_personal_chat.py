"""A personal chat with the bot (Teams' 1:1, the app's "Chat" tab): commands are typed without
a mention and answered in that chat, which is its own space for ids and records."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from storage.models import Decision
from tests.teams.harness import ANA, BOT, TENANT, message, teams_server

PERSONAL = "a:1Kp1xUq7zTnYbWl0XGv8qgq3-personal-chat-with-ana"


def personal(text: str, *, service_url: str) -> dict[str, Any]:
    """A line Ana types in her 1:1 chat with Align, as Teams posts it: a `personal`
    conversation, no team or channel in channelData, no mention of the bot."""
    activity = message(text, service_url=service_url, mention_bot=False)
    activity["conversation"] = {
        "conversationType": "personal",
        "tenantId": TENANT,
        "id": PERSONAL,
    }
    activity["channelData"] = {"tenant": {"id": TENANT}}
    activity["recipient"] = copy.deepcopy(BOT)
    activity["from"] = ANA.account()
    return activity


def test_a_command_in_a_personal_chat_is_answered_there(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            server.connector.members[PERSONAL] = [ANA.roster_entry()]
            activity = personal("decide Ship it | said in private", service_url=server.service_url)
            assert await server.post(activity) in (200, 201)
            [reply] = server.connector.sent_of("reply")
            assert reply.conversation_id == PERSONAL
            assert "Ship it" in str(reply.activity)
            with server.app.db.uow() as session:
                stored = [(d.workspace, d.channel) for d in session.scalars(select(Decision))]
            assert stored == [(f"teams:{TENANT}", PERSONAL)]

            help_activity = personal("help", service_url=server.service_url)
            assert await server.post(help_activity) in (200, 201)
            assert len(server.connector.sent_of("reply")) == 2

    asyncio.run(main())
