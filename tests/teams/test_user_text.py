"""User text through Teams: NUL and lone surrogates get a clear answer and store nothing; a
Markdown link typed into a title is shown as typed, not as a link hiding its target."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import Decision
from tests.teams.harness import TeamsServer, card_of, message, teams_server


def decisions(server: TeamsServer) -> int:
    with server.app.db.uow() as session:
        return int(session.scalar(select(func.count()).select_from(Decision)) or 0)


def test_nul_and_lone_surrogates_get_a_clear_answer(migrated_db_url: str, clock: FakeClock) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            for text in ("decide Use\x00Postgres", "decide Half \ud83d emoji"):
                assert await server.post(message(text, service_url=server.service_url)) == 201
            replies = [r.text for r in server.connector.sent_of("reply")]
            assert len(replies) == 2
            assert "NUL characters" in replies[0]
            assert "broken character" in replies[1]
            assert decisions(server) == 0

    asyncio.run(main())


def test_a_markdown_link_in_a_title_is_not_a_link(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await server.say("decide [Read the plan](https://evil.example/x) before Friday")
            await server.say("decisions")
            sent = server.connector.sent_of("reply")
            cards = [json.dumps(card_of(r.activity), ensure_ascii=False) for r in sent]
            assert any("Read the plan]\u200b(https://evil.example/x)" in c for c in cards)
            assert not any("](" in c for c in cards)

    asyncio.run(main())
