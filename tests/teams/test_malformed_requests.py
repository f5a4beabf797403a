"""Malformed activities to /api/messages: an activity without `conversation` or `from` is a 400
and stores nothing; no field of any wrong type gives a 500, with or without an app id."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import ConversationRef, Decision, InboxEntry, Member
from tests.teams.harness import TeamsServer, message, teams_server

APP = {
    "MICROSOFT_APP_ID": "0b6fe6d1-0000-4000-8000-00000000b0t1",
    "MICROSOFT_APP_PASSWORD": "not-a-real-secret",
}
FIELDS = ["conversation", "from", "recipient", "channelData", "entities", "text", "serviceUrl",
          "channelId", "id", "value", "attachments", "timestamp", "type", "locale"]  # fmt: skip
VALUES: list[Any] = [None, "x", 5, [], {}, [1], {"id": 5}, {"id": ""}, True]


def stored(server: TeamsServer) -> dict[str, int]:
    with server.app.db.uow() as session:
        return {
            m.__tablename__: int(session.scalar(select(func.count()).select_from(m)) or 0)
            for m in (ConversationRef, Decision, Member, InboxEntry)
        }


async def post_raw(server: TeamsServer, body: bytes, content_type: str = "application/json") -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        return response.status


def variants(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The activity with each field removed, and set to each value of a wrong type."""
    out = {}
    for key in FIELDS:
        removed = copy.deepcopy(base)
        removed.pop(key, None)
        out[f"-{key}"] = removed
        for value in VALUES:
            changed = copy.deepcopy(base)
            changed[key] = value
            out[f"{key}={value!r}"] = changed
    return out


def test_without_conversation_or_from_is_400_and_stores_nothing(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            base = message("decide Ship it", service_url=server.service_url)
            broken = [
                {k: v for k, v in base.items() if k != "conversation"},
                {k: v for k, v in base.items() if k != "from"},
                {**base, "conversation": None},
                {**base, "from": {"name": "no id"}},
                {**base, "conversation": {"id": ""}},
                {**base, "from": {"id": 5}},
                {**base, "conversation": "19:abc@thread.tacv2"},
            ]
            statuses = [await post_raw(server, json.dumps(a).encode()) for a in broken]
            assert statuses == [400] * len(broken)
            assert stored(server) == {
                "conversation_refs": 0, "decisions": 0, "members": 0, "inbox": 0,
            }  # fmt: skip
            assert server.connector.requests == []
            # The untouched activity goes through.
            assert await post_raw(server, json.dumps(base).encode()) == 201
            assert stored(server)["decisions"] == 1

    asyncio.run(main())


@pytest.mark.parametrize("settings", [{}, APP], ids=["emulator", "app-id"])
def test_no_malformed_activity_gets_a_500(
    migrated_sqlite_url: str, clock: FakeClock, settings: dict[str, str]
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **settings) as server:
            base = message("decide Ship it", service_url=server.service_url)
            cases = {name: json.dumps(a).encode() for name, a in variants(base).items()}
            cases |= {
                "not json": b"{nope",
                "not utf-8": b"\xff\xfe{}",
                "array": b"[1, 2]",
                "string": b'"hello"',
                "null": b"null",
                "empty": b"",
            }
            statuses = {name: await post_raw(server, body) for name, body in cases.items()}
            assert {n: s for n, s in statuses.items() if s >= 500} == {}
            for name in ("-conversation", "-from", "conversation='x'", "from=5"):
                assert statuses[name] == 400
            if settings:  # with an app id nothing unauthenticated gets through
                assert set(statuses.values()) <= {400, 401}
                assert stored(server)["decisions"] == 0

    asyncio.run(main())
