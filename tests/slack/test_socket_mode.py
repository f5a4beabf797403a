"""`align serve --socket`: the same Bolt app over Socket Mode — Slack's websocket instead of HTTP.

A stand-in for Slack's socket endpoint (`apps.connections.open` on the fake hands out its URL)
pushes a slash command envelope; Align must ack the envelope and then post the reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSMsgType, web

from adapters.preflight import ConfigError
from adapters.slack.http import SLACK_KEY
from adapters.web_keys import SOCKET_MODE, SOCKET_STARTERS
from bot.clock import FakeClock
from tests.slack.conftest import CHANNEL, USER, SlackServer, running_slack_server

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

    async def command(self, envelope_id: str, payload: dict[str, str]) -> dict[str, Any]:
        """A slash command in its envelope, as Slack sends it over the socket; the app's ack."""
        await self.send(
            {
                "envelope_id": envelope_id,
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        return await asyncio.wait_for(self.acks.get(), 10)


@contextmanager
def socket_mode(server: SlackServer) -> Iterator[SocketEndpoint]:
    """The running server connected over Socket Mode to an endpoint of ours, as `align serve
    --socket` connects (SOCKET_MODE set, then its starters run); the endpoint closed after."""
    endpoint = SocketEndpoint()
    server.loop.run(endpoint.start())
    server.fake.respond_with("apps.connections.open", {"url": endpoint.url})
    try:
        server.web_app[SOCKET_MODE] = True
        for start in server.web_app[SOCKET_STARTERS]:
            server.loop.run(start())
        yield endpoint
    finally:
        server.loop.run(endpoint.stop())


def test_a_slash_command_over_socket_mode_is_acked_and_answered(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    with (
        running_slack_server(migrated_sqlite_url, clock, SLACK_APP_TOKEN="xapp-test") as server,
        socket_mode(server) as endpoint,
    ):
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

        # A read is answered in the envelope's ack, as over HTTP.
        payload = dict(parse_qsl(server.command_body("decisions")))
        envelope = {**envelope, "envelope_id": "env-2", "payload": payload}
        ack = server.loop.run(exchange())
        assert ack["envelope_id"] == "env-2"
        assert ack["payload"]["response_type"] == "in_channel"
        assert "Over the socket" in json.dumps(ack["payload"]["blocks"])
        server.settle()
        assert len(server.fake.calls_to("chat.postMessage")) == 1  # the decision's only


def test_socket_mode_without_an_app_token_says_what_is_missing(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_sqlite_url, clock) as server:
        server.web_app[SOCKET_MODE] = True
        (start,) = server.web_app[SOCKET_STARTERS]
        with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
            server.loop.run(start())


class Stop(Exception):
    """Raised by the recording sleep to end a retry loop the test has seen enough of."""


def recording_sleep(delays: list[float], *, stop_after: int | None = None) -> Any:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if stop_after is not None and len(delays) >= stop_after:
            raise Stop

    return sleep


def test_slack_out_of_reach_backs_off_with_one_line_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from slack_bolt.async_app import AsyncApp

    from adapters.slack import socket as socket_mode
    from tests.server.process import free_port

    closed = f"http://127.0.0.1:{free_port()}/api/"
    delays: list[float] = []

    async def main() -> None:
        bolt = AsyncApp(signing_secret="", token="xoxb-test", request_verification_enabled=False)
        with pytest.raises(Stop):
            await socket_mode.connect(
                bolt, "xapp-test", api_url=closed, sleep=recording_sleep(delays, stop_after=4)
            )

    with caplog.at_level(logging.WARNING, logger="align.slack.socket"):
        asyncio.run(main())
    assert delays == [1.0, 2.0, 4.0, 8.0]  # exponential backoff, capped at MAX_DELAY
    lines = [r for r in caplog.records if r.name == "align.slack.socket"]
    assert len(lines) == 4
    for record in lines:
        assert record.exc_info is None
        assert "\n" not in record.getMessage()
        assert f"cannot reach Slack at {closed}" in record.getMessage()


def test_an_outage_at_start_is_waited_out_then_socket_mode_connects(
    migrated_sqlite_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with running_slack_server(migrated_sqlite_url, clock, SLACK_APP_TOKEN="xapp-test") as server:
        endpoint = SocketEndpoint()
        server.loop.run(endpoint.start())
        server.fake.fail_next("apps.connections.open", status=503, times=2)
        server.fake.respond_with("apps.connections.open", {"url": endpoint.url})
        delays: list[float] = []
        server.web_app[SLACK_KEY].socket_sleep = recording_sleep(delays)
        try:
            server.web_app[SOCKET_MODE] = True
            with caplog.at_level(logging.WARNING, logger="align.slack.socket"):
                for start in server.web_app[SOCKET_STARTERS]:
                    server.loop.run(start())
                server.loop.run(asyncio.wait_for(endpoint.connected.wait(), 10))
            assert delays == [1.0, 2.0]
            assert [r.getMessage() for r in caplog.records if r.name == "align.slack.socket"] == [
                "Slack Socket Mode: apps.connections.open answered internal_error; retrying in 1 s",
                "Slack Socket Mode: apps.connections.open answered internal_error; retrying in 2 s",
            ]
            assert len(server.fake.calls_to("apps.connections.open")) == 1
        finally:
            server.loop.run(endpoint.stop())


def test_a_refused_app_token_is_a_config_error_at_once(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_sqlite_url, clock, SLACK_APP_TOKEN="xapp-revoked") as server:
        server.fake.fail_next("apps.connections.open", status=200, error="invalid_auth")
        delays: list[float] = []
        server.web_app[SLACK_KEY].socket_sleep = recording_sleep(delays)
        server.web_app[SOCKET_MODE] = True
        (start,) = server.web_app[SOCKET_STARTERS]
        with pytest.raises(ConfigError, match=r"Slack refused SLACK_APP_TOKEN \(invalid_auth\)"):
            server.loop.run(start())
        assert delays == []  # no retry: no retry can fix a refused token
