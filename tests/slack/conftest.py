"""Align's real server and the fake Slack Web API, talked to the way Slack talks to them.

`slack_server` starts `create_web_app(app)` on 127.0.0.1 (aiohttp AppRunner + TCPSite, port 0)
and a `FakeSlackApi` as SLACK_API_URL, both on one event loop in a background thread, so tests
are plain synchronous functions: they send signed requests in Slack's own formats (slash
commands form-encoded, interactivity as `payload=<json>`, events as JSON) over HTTP and read what
the bot sent back from the fake (`server.fake.calls_to("chat.postMessage")`,
`server.fake.wait_for_responses_sync()`).

`server.settle()` waits until the work Align started after its acks is done (poll updates,
replies), without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web

from adapters.bootstrap import App, build
from adapters.server import create_web_app
from adapters.slack.http import SLACK_KEY
from adapters.web_keys import Serving
from bot.clock import FakeClock
from tests.conftest import make_settings, paced_by_the_clock
from tests.fakes import FakeSlackApi, sign_slack_request

T = TypeVar("T")

SIGNING_SECRET = "slack-test-signing-secret"
BOT_TOKEN = "xoxb-test"
CHANNEL = "C0PRODUCT1"
USER = "U0ANA00001"
APP_ID = "A0APP00001"


class LoopThread:
    """An event loop in a daemon thread; `run(coro)` blocks the caller until it finishes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="slack")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class SlackServer:
    """Align serving Slack on 127.0.0.1, and the fake Slack it calls."""

    app: App
    url: str
    fake: FakeSlackApi
    web_app: web.Application
    loop: LoopThread
    http: httpx.Client
    signing_secret: str = SIGNING_SECRET
    team: str = field(default="")

    # -- raw ---------------------------------------------------------------------------------

    def post(
        self,
        body: str,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """POST /slack/events, signed like Slack signs it (or with another secret or time)."""
        signed = sign_slack_request(secret or self.signing_secret, body, timestamp)
        return self.http.post(
            self.url + "/slack/events",
            content=body.encode(),
            headers={"Content-Type": content_type, **signed, **(headers or {})},
        )

    # -- Slack's three request shapes -------------------------------------------------------

    def command_body(
        self,
        text: str,
        *,
        user: str = USER,
        channel: str = CHANNEL,
        response_url: str | None = None,
        team: str | None = None,
        enterprise: str | None = None,
    ) -> str:
        fields = {
            "token": "legacy-verification-token",
            "team_id": team or self.team,
            "team_domain": "align-test",
            "channel_id": channel,
            "channel_name": "product",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/align",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "true" if enterprise else "false",
            "response_url": response_url or self.fake.response_url(f"cmd-{uuid.uuid4().hex[:8]}"),
            "trigger_id": f"{time.time_ns()}.1761091294307.7f8d01a322363a013721e32e83af484b",
        }
        if enterprise:
            fields["enterprise_id"] = enterprise
        return urlencode(fields)

    def post_command(self, text: str, **kw: Any) -> httpx.Response:
        """`/align <text>` typed in a channel (form-urlencoded, as Slack sends it)."""
        return self.post(self.command_body(text, **kw), "application/x-www-form-urlencoded")

    def action_payload(
        self,
        *,
        action_id: str,
        value: str,
        user: str = USER,
        channel: str = CHANNEL,
        message_ts: str = "1700000000.000100",
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": self.team,
            },
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": trigger_id or f"{time.time_ns()}.1761091294307.570d0b2a4b5e",
            "team": {"id": self.team, "domain": "align-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "product"},
            "message": {"type": "message", "ts": message_ts, "text": "poll", "blocks": []},
            "state": {"values": {}},
            "response_url": response_url
            or self.fake.response_url(f"act-{user}-{uuid.uuid4().hex[:6]}"),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "text": {"type": "plain_text", "text": "button", "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def post_action(self, *, action_id: str, value: str, **kw: Any) -> httpx.Response:
        """A button click (interactivity: form-encoded `payload=<json>`)."""
        payload = self.action_payload(action_id=action_id, value=value, **kw)
        return self.post_payload(payload)

    def post_payload(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def view_submission(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = USER
    ) -> dict[str, Any]:
        """A modal submitted: `view` as views.open received it, `values` its state by block."""
        return {
            "type": "view_submission",
            "team": {"id": self.team, "domain": "align-test"},
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": self.team,
            },
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "trigger_id": f"{time.time_ns()}.222.valid",
            "view": {
                "id": "V0FAKE00001",
                "team_id": self.team,
                "type": "modal",
                "blocks": view.get("blocks", []),
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "state": {"values": values},
                "hash": "1596530361.3wRYuk3R",
                "title": view.get("title"),
                "previous_view_id": None,
                "root_view_id": "V0FAKE00001",
                "app_id": APP_ID,
                "external_id": "",
                "app_installed_team_id": self.team,
                "bot_id": self.fake.bot_id,
            },
            "response_urls": [],
            "is_enterprise_install": False,
        }

    def event_body(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        return json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": self.team,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.team,
                        "user_id": self.fake.bot_user_id,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
            }
        )

    def post_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> httpx.Response:
        """An Events API delivery (JSON); `retry_num` adds Slack's retry headers."""
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(
            self.event_body(event, event_id=event_id), "application/json", headers=headers
        )

    # -- waiting -----------------------------------------------------------------------------

    def paced_by_the_clock(self) -> None:
        """tests.conftest.paced_by_the_clock: live-message edits and channel posts keep their
        pace on the FakeClock, without real waits."""
        paced_by_the_clock(self.app, self.web_app)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until the work started after the acks (replies, poll updates) is done."""
        self.loop.run(self._idle(), timeout)

    async def _idle(self) -> None:
        workers, postings, roster = (
            self.web_app[SLACK_KEY].workers,
            self.app.postings,
            self.app.roster,
        )
        while True:
            await self.app.inbox.idle()
            await workers.idle()
            await postings.idle()
            await roster.idle()
            if not (workers.busy or postings.busy or self.app.inbox.busy or roster.busy):
                return

    def poll_message(self, poll_number: int = 1) -> Any:
        """The chat.postMessage call that posted poll P-<n>."""
        for call in self.fake.calls_to("chat.postMessage"):
            blocks = call.args.get("blocks") or []
            if blocks and blocks[0].get("text", {}).get("text", "").startswith(f"P-{poll_number} "):
                return call
        raise AssertionError(f"P-{poll_number} was not posted: {self.fake.calls_summary()}")


@contextmanager
def running_slack_server(
    db_url: str,
    clock: FakeClock,
    *,
    serving: Serving | None = None,
    fake: FakeSlackApi | None = None,
    **settings: str,
) -> Iterator[SlackServer]:
    """Align (single-workspace bot token) and the fake Slack, served until the block ends; as
    `serving` says (`--role`), and with another server's fake when given one (replicas)."""
    loop = LoopThread()
    own_fake = fake is None
    fake = fake or FakeSlackApi()
    if own_fake:
        loop.run(fake.start())
    app = build(
        make_settings(
            db_url,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_API_URL=fake.url,
            **settings,
        ),
        clock=clock,
    )

    async def start() -> tuple[web.AppRunner, web.Application]:
        web_app = await create_web_app(app, serving=serving)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, web_app

    runner, web_app = loop.run(start())
    port = runner.addresses[0][1]
    http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100))
    server = SlackServer(
        app=app,
        url=f"http://127.0.0.1:{port}",
        fake=fake,
        web_app=web_app,
        loop=loop,
        http=http,
        team=fake.team_id,
    )
    try:
        yield server
    finally:
        http.close()
        loop.run(runner.cleanup())
        if own_fake:
            loop.run(fake.stop())
        loop.stop()
        app.db.dispose()


@pytest.fixture
def slack_server(migrated_sqlite_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    """Align on SQLite with a single-workspace bot token, and the fake Slack Web API."""
    with running_slack_server(migrated_sqlite_url, clock) as server:
        yield server


@pytest.fixture
def slack_server_any_db(migrated_db_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    """The same, once on SQLite and once on PostgreSQL."""
    with running_slack_server(migrated_db_url, clock) as server:
        yield server
