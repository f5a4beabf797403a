"""Outgoing webhooks: a real receiver on 127.0.0.1 verifies each body's HMAC signature; only the
channel's chosen events are sent; non-https URLs are refused except loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from adapters.bootstrap import App
from adapters.runtime import Dispatcher
from adapters.webhook_sender import WebhookSender
from bot.clock import FakeClock
from tests.conftest import Chat
from tests.time.helpers import outbox_rows

SECRET = b"test-secret"  # ALIGN_SECRET in tests/conftest.make_settings


class Receiver:
    """Another tool's endpoint: verifies the signature as its own documentation would tell it."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.verified: list[bool] = []
        self.statuses = statuses or []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers["X-Align-Timestamp"]
        expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        self.verified.append(
            hmac.compare_digest(request.headers["X-Align-Signature"], f"v1={expected}")
        )
        self.received.append({"body": json.loads(body), "headers": dict(request.headers)})
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, headers={"Retry-After": "5"} if status == 429 else {})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def run(app: App, scenario: Any) -> None:
    async def main() -> None:
        receiver = Receiver()
        await receiver.start()
        try:
            await scenario(receiver)
        finally:
            await receiver.stop()

    asyncio.run(main())


async def dispatch(app: App, clock: FakeClock) -> int:
    sender = WebhookSender(app.engine.deps.secret, clock=clock)
    try:
        return await Dispatcher(app, {"webhook": sender}).run_once()
    finally:
        await sender.aclose()


def test_events_arrive_signed_and_verifiable(chat: Chat, app: App, clock: FakeClock) -> None:
    async def scenario(receiver: Receiver) -> None:
        chat.ok(f"webhook add {receiver.url} events:decision,poll")
        chat.ok("decide Use Postgres | boring")
        chat.ok("item SSO")  # items are not a webhook event
        chat.ok('poll "Ship?" "yes" "no"')
        chat.ok("close P-1")
        chat.ok("digest")  # not subscribed
        assert await dispatch(app, clock) == 3
        assert receiver.verified == [True, True, True]
        events = [r["body"]["event"] for r in receiver.received]
        assert events == ["decision.recorded", "poll.opened", "poll.closed"]
        first = receiver.received[0]
        assert first["body"]["data"]["title"] == "Use Postgres"
        assert first["headers"]["X-Align-Delivery"] == first["body"]["delivery"]
        assert first["headers"]["X-Align-Timestamp"] == str(int(clock.now().timestamp()))
        # A tampered body does not verify.
        body = json.dumps(first["body"]).replace("Postgres", "MySQL").encode()
        stamp = first["headers"]["X-Align-Timestamp"]
        forged = hmac.new(b"wrong", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        from bot.webhooks import verify

        assert not verify(SECRET, stamp, body, first["headers"]["X-Align-Signature"])
        assert not verify(SECRET, stamp, body, f"v1={forged}")

    run(app, scenario)


def test_a_failing_receiver_is_retried_and_a_gone_one_recorded(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    from datetime import timedelta

    async def scenario(receiver: Receiver) -> None:
        receiver.statuses = [500, 200, 410]
        chat.ok(f"webhook add {receiver.url} events:decision")
        chat.ok("decide One")
        assert await dispatch(app, clock) == 0
        clock.advance(timedelta(minutes=5))
        assert await dispatch(app, clock) == 1
        chat.ok("decide Two")
        assert await dispatch(app, clock) == 0
        rows = outbox_rows(app, platform="webhook")
        assert [r.status for r in rows] == ["sent", "failed"]
        assert "HTTP 410" in (rows[1].last_error or "")
        assert len(receiver.received) == 3
        # Both tries of the first one carried the same delivery key.
        keys = [r["headers"]["X-Align-Delivery"] for r in receiver.received]
        assert keys[0] == keys[1] != keys[2]
        assert chat.ok("digest status").data["failures"][0]["kind"] == "webhook"

    run(app, scenario)


def test_webhook_add_list_remove_and_refusals(chat: Chat, app: App) -> None:
    added = chat.ok("webhook add https://hooks.example.com/align/abc events:digest")
    assert added.data == {
        "id": 1,
        "url": "https://hooks.example.com/align/abc",
        "events": ["digest"],
    }
    chat.ok("webhook add http://localhost:8080/x")
    assert [w["id"] for w in chat.ok("webhook list").data["webhooks"]] == [1, 2]
    assert "https" in (chat.fails("webhook add http://example.com/hook").error or "")
    assert chat.fails("webhook add ftp://127.0.0.1/x").usage
    assert "private" in (chat.fails("webhook add https://169.254.169.254/x").error or "")
    assert "private" in (chat.fails("webhook add https://10.0.0.8/x").error or "")
    assert "events" in (chat.fails("webhook add https://a.example events:votes").error or "")
    chat.ok("webhook remove 1")
    assert [w["id"] for w in chat.ok("webhook list").data["webhooks"]] == [2]
    assert chat.fails("webhook remove 1").data["code"] == "not_found"
    assert chat.ok("webhook list", channel="elsewhere").data["webhooks"] == []
    # Numbers are never reused.
    assert chat.ok("webhook add https://b.example/x").data["id"] == 3
    # A removed webhook gets nothing.
    chat.ok("digest")
    assert [r.payload["data"]["url"] for r in outbox_rows(app, platform="webhook")] == [
        "http://localhost:8080/x",
        "https://b.example/x",
    ]
