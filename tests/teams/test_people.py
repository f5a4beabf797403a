"""The engine's Directory for Teams: rosters from the connector's paged members API, cached and
read synchronously by the engine; names kept for rendering."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.teams.http import TEAMS
from bot.clock import FakeClock
from tests.teams.harness import ANA, BEN, CHANNEL, TEAM, WORKSPACE, teams_server


class Console:
    def members(self, workspace: str, channel: str) -> list[str] | None:
        return ["local-user"]


def test_the_roster_is_fetched_once_per_ttl_and_read_by_the_engine(
    sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(sqlite_url, clock) as server:
            directory = server.web_app[TEAMS].directory
            assert server.app.engine.deps.directory is directory
            assert directory.members(WORKSPACE, CHANNEL) is None  # never fetched: fall back

            await server.say("help")
            await server.say("help", by=BEN)
            assert directory.members(WORKSPACE, CHANNEL) == sorted(p.aad for p in TEAM)
            [read] = server.connector.sent_of("get_paged_members")
            assert read.conversation_id == CHANNEL  # the channel, not the thread

            clock.advance(timedelta(minutes=11))
            await server.say("help")
            assert len(server.connector.sent_of("get_paged_members")) == 2

    asyncio.run(main())


def test_names_from_the_roster_render_people_in_cards(sqlite_url: str, clock: FakeClock) -> None:
    async def main() -> None:
        async with teams_server(sqlite_url, clock) as server:
            await server.say("ask Which regions? owner:<at>Ben</at>", mentions=(BEN,))
            reply = server.connector.sent_of("reply")[-1]
            body = str(reply.activity["attachments"][0]["content"])
            assert "Ben" in body and BEN.aad not in body

    asyncio.run(main())


def test_other_platforms_workspaces_go_to_the_directory_that_was_there_before(
    sqlite_url: str, clock: FakeClock
) -> None:
    from adapters.bootstrap import build
    from adapters.teams.http import build as build_teams
    from tests.conftest import make_settings

    app = build(make_settings(sqlite_url), clock=clock, directory=Console())
    try:
        teams = build_teams(app)
        assert teams.directory.members("local", "general") == ["local-user"]
        assert teams.directory.members(WORKSPACE, CHANNEL) is None
        assert ANA.aad not in (teams.directory.members("local", "general") or [])
    finally:
        app.db.dispose()
