"""ALIGN_MAX_BACKLOG on Teams: past the bound a message is answered "busy" in its own turn and
nothing is recorded; once there is room the same command is taken and runs.

The backlog is filled honestly: the fake connector holds the reply to the first message, so its
turn (which Teams waits for) cannot finish.
"""

from __future__ import annotations

import asyncio

from adapters.inbox import BUSY
from bot.clock import FakeClock
from storage.models import InboxEntry, Question
from tests.conftest import count_rows
from tests.teams.harness import BEN, message, teams_server


def test_past_the_backlog_a_message_is_answered_busy_in_its_turn_and_nothing_is_stored(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock, ALIGN_MAX_BACKLOG="1") as server:
            first = message("ask First question?", service_url=server.service_url)
            held = f"*/activities/{first['id']}"
            server.connector.hold(held)
            running = asyncio.create_task(server.post(first))
            await server.connector.wait_held(held)
            assert count_rows(server.app, InboxEntry) == 1

            second = message("ask Second question?", by=BEN, service_url=server.service_url)
            assert await server.post(second) in (200, 201)
            (told,) = [
                r for r in server.connector.sent_of("reply") if r.activity_id == second["id"]
            ]
            assert told.activity["text"] == BUSY
            assert count_rows(server.app, InboxEntry) == 1  # the refused message was not recorded

            server.connector.release(held)
            assert await running in (200, 201)
            assert count_rows(server.app, Question) == 1  # and it never ran

            again = message("ask Second question?", by=BEN, service_url=server.service_url)
            assert await server.post(again) in (200, 201)
            assert count_rows(server.app, Question) == 2
            assert count_rows(server.app, InboxEntry) == 2

    asyncio.run(main())
