"""The endpoint's guard (Bot Framework tokens once an app id is set) and the connector's rate
limit (429 with Retry-After, which botbuilder itself does not retry)."""

from __future__ import annotations

import asyncio

import jwt
from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import ConversationRef, Decision, InboxEntry
from tests.teams.harness import THREAD, TeamsServer, message, teams_server

APP = {
    "MICROSOFT_APP_ID": "0b6fe6d1-0000-4000-8000-00000000b0t1",
    "MICROSOFT_APP_PASSWORD": "not-a-real-secret",
}


def count(server: TeamsServer, model: type) -> int:
    with server.app.db.uow() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_with_an_app_id_a_request_without_a_valid_token_is_401_and_changes_nothing(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    forged = jwt.encode(
        {"iss": "https://attacker.example", "aud": APP["MICROSOFT_APP_ID"]},
        "a-forger's-own-secret-of-32-bytes!",  # long enough that PyJWT does not warn
        algorithm="HS256",
    )

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **APP) as server:
            activity = message("decide Ship it", service_url=server.service_url)
            assert await server.post(activity) == 401
            assert await server.post(activity, token="not-a-jwt") == 401
            assert await server.post(activity, token=forged) == 401
            assert server.connector.requests == []
            assert count(server, Decision) == 0
            assert count(server, ConversationRef) == 0
            assert count(server, InboxEntry) == 0

    asyncio.run(main())


def test_without_an_app_id_the_endpoint_is_open_as_the_emulator_expects(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            activity = message("decide Ship it", service_url=server.service_url)
            assert await server.post(activity) == 201
            [reply] = server.connector.sent_of("reply")
            assert reply.authorization is None  # anonymous connector client: no token sent
            assert count(server, Decision) == 1

    asyncio.run(main())


def test_a_reply_rate_limited_by_the_connector_is_retried_after_retry_after(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            server.connector.fail_next("reply", status=429, retry_after=3, times=2)
            await server.say("decide Ship it")
            assert [f.status for f in server.connector.failed] == [429, 429]
            [reply] = server.connector.sent_of("reply")
            assert reply.conversation_id == THREAD
            assert server.slept == [3.0, 3.0]  # the connector's word, not a guess
            assert count(server, Decision) == 1

    asyncio.run(main())


def test_a_reply_still_rate_limited_after_the_retries_is_given_up_and_logged(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            server.connector.fail_next("reply", status=429, retry_after=1, times=10)
            activity = message("decide Ship it", service_url=server.service_url)
            assert await server.post(activity) == 201  # Teams must not redeliver it
            assert len(server.connector.failed) >= 4
            assert server.slept == [1.0, 1.0, 1.0]
            assert count(server, Decision) == 1  # the decision itself was recorded once

    asyncio.run(main())
