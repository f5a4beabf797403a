"""`align serve --socket`: the same Bolt app over Socket Mode — Slack's websocket instead of HTTP.

A stand-in for Slack's socket endpoint (`apps.connections.open` on the fake hands out its URL)
pushes a slash command envelope; Align must ack the envelope and then post the reply.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSMsgType, web

from adapters.preflight import ConfigError
from adapters.web_keys import SOCKET_MODE, SOCKET_STARTERS
from bot.clock import FakeClock
from tests.slack.conftest import CHANNEL, USER, running_slack_server

# `align serve` sets web_app[SOCKET_MODE] before it starts the app; these tests flip it on a
# running one, which aiohttp merely frowns upon.
pytestmark = pytest.mark.filterwarnings("ignore:Changing state of started:DeprecationWarning")


class SocketEndpoint:
    """Slack's side of one Socket Mode connection: says hello, sends envelopes, reads acks."""

    def __init__(self) -> None:
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.socket: web.WebSocketResponse | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._serve)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self.runner.addresses[0][1]}/link"

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1})
        self.connected.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self.acks.put(json.loads(message.data))
        return socket

    async def send(self, envelope: dict[str, Any]) -> None:
        await asyncio.wait_for(self.connected.wait(), 10)
        assert self.socket is not None
        await self.socket.send_json(envelope)

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.runner is not None:
            await self.runner.cleanup()


def test_a_slash_command_over_socket_mode_is_acked_and_answered(
    sqlite_url: str, clock: FakeClock
) -> None:
    with running_slack_server(sqlite_url, clock, SLACK_APP_TOKEN="xapp-test") as server:
        endpoint = SocketEndpoint()
        server.loop.run(endpoint.start())
        server.fake.respond_with("apps.connections.open", {"url": endpoint.url})
        try:
            server.web_app[SOCKET_MODE] = True  # what `align serve --socket` sets
            for start in server.web_app[SOCKET_STARTERS]:
                server.loop.run(start())
            (opened,) = server.fake.calls_to("apps.connections.open")
            assert opened.token == "xapp-test"

            payload = dict(parse_qsl(server.command_body("decide Over the socket")))
            envelope = {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }

            async def exchange() -> dict[str, Any]:
                await endpoint.send(envelope)
                return await asyncio.wait_for(endpoint.acks.get(), 10)

            ack = server.loop.run(exchange())
            assert ack["envelope_id"] == "env-1"
            (post,) = server.fake.wait_for_sync("chat.postMessage")
            assert post.args["channel"] == CHANNEL
            assert "Over the socket" in json.dumps(post.args["blocks"])
            assert server.fake.calls_to("users.info")[0].args["user"] == USER
        finally:
            server.loop.run(endpoint.stop())


def test_socket_mode_without_an_app_token_says_what_is_missing(
    sqlite_url: str, clock: FakeClock
) -> None:
    with running_slack_server(sqlite_url, clock) as server:
        server.web_app[SOCKET_MODE] = True
        (start,) = server.web_app[SOCKET_STARTERS]
        with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
            server.loop.run(start())
