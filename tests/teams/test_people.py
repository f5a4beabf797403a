"""Teams rosters go into the one shared roster (the `rosters` table): fetched once per TTL from the
connector's paged members API, read by the engine from the database — by any process — with
names and `29:` ids kept in `profiles` for rendering and mentions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.bootstrap import build
from adapters.roster import ROSTER_TTL
from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.teams.harness import ANA, BEN, CHANNEL, TEAM, WORKSPACE, teams_server


def test_the_roster_is_fetched_once_per_ttl_and_read_by_the_engine(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            roster = server.app.roster
            assert roster.members(WORKSPACE, CHANNEL) is None  # never fetched: fall back

            await server.say("help")
            await server.say("help", by=BEN)
            assert roster.members(WORKSPACE, CHANNEL) == sorted(p.aad for p in TEAM)
            [read] = server.connector.sent_of("get_paged_members")
            assert read.conversation_id == CHANNEL  # the channel, not the thread

            clock.advance(ROSTER_TTL + timedelta(seconds=1))
            await server.say("help")
            assert len(server.connector.sent_of("get_paged_members")) == 2

    asyncio.run(main())


def test_another_process_counts_participation_from_the_same_roster(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await server.say("poll “Ship?” “Yes” “No”")
            other = build(
                make_settings(migrated_db_url), clock=clock
            )  # a second replica, no Teams turn
            try:
                result = other.engine.handle(server.actor(ANA), "results P-1")
                assert result.ok, result.error
                assert result.data["participation"]["eligible"] == len(TEAM)
                assert sorted(result.data["participation"]["not_voted"]) == sorted(
                    p.aad for p in TEAM
                )
            finally:
                other.db.dispose()

    asyncio.run(main())


def test_names_from_the_roster_render_people_in_cards(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await server.say("ask Which regions? owner:<at>Ben</at>", mentions=(BEN,))
            reply = server.connector.sent_of("reply")[-1]
            body = str(reply.activity["attachments"][0]["content"])
            assert "Ben" in body and BEN.aad not in body

    asyncio.run(main())


def test_a_mention_is_resolved_from_the_roster_without_asking_the_connector(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await server.say("help")  # fetches the roster: Ben's 29: id → AAD id is now known
            await server.say("ask Which regions? owner:<at>Ben</at>", mentions=(BEN,))
            assert server.connector.sent_of("get_member") == []
            shown = server.app.engine.handle(server.actor(ANA), "show Q-1")
            assert shown.data["owner"] == BEN.aad

    asyncio.run(main())
