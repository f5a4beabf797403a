"""Conversation references are written when they change, not on every message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.clock import FakeClock
from storage.models import ConversationRef
from tests.teams.harness import BEN, CHANNEL, TeamsServer, message, teams_server


def _stored(server: TeamsServer) -> ConversationRef:
    with server.app.db.uow() as session:
        (row,) = session.execute(
            select(ConversationRef).where(ConversationRef.channel == CHANNEL)
        ).scalars()
        return row


def test_a_reference_is_written_once_and_again_only_when_it_changes(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await server.say("help")
            first = _stored(server)
            clock.advance(timedelta(hours=1))
            await server.say("decisions")
            await server.say("help", by=BEN)  # another speaker reaches the channel alike
            assert _stored(server).updated_at == first.updated_at

            # The service moved (another URL that reaches the same connector): written anew.
            port = server.service_url.rsplit(":", 1)[1]
            moved = message("help", service_url=f"http://localhost:{port}")
            clock.advance(timedelta(hours=1))
            assert await server.post(moved) in (200, 201)
            now = _stored(server)
            assert now.reference["serviceUrl"] == f"http://localhost:{port}"
            assert now.updated_at == first.updated_at + timedelta(hours=2)

    asyncio.run(main())
