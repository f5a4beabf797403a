"""Outgoing webhooks, through a real receiver on 127.0.0.1 (reachable only because these tests
set ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS): bodies signed with each webhook's own secret, shown once;
only the channel's chosen events are sent; failures retried or recorded. Names are resolved by
an injected resolver (tests have no DNS) — which is also how DNS rebinding is played."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import update

from adapters.bootstrap import App, build
from adapters.runtime import Dispatcher
from adapters.webhook_sender import WebhookSender
from bot.clock import FakeClock
from bot.webhook_targets import TargetPolicy, Unresolved
from bot.webhooks import verify
from storage.models import Webhook
from tests.conftest import Chat, make_settings
from tests.time.helpers import outbox_rows

SERVER_KEY = b"test-secret"  # ALIGN_SECRET in tests/conftest.make_settings


class FakeDns:
    """The resolver port: answers from a table, records every question, and can change its
    answers between questions (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []
        self.then: dict[str, list[str]] = {}  # answers from the second question on

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if self.asked.count(host) > 1 and host in self.then:
            return self.then[host]
        if host not in self.table:
            raise Unresolved(host)
        return self.table[host]


class Receiver:
    """Another tool's endpoint: verifies signatures with the secret it was given."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.secret = b""
        self.handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    def verified(self) -> list[bool]:
        return [
            verify(
                self.secret,
                r["headers"]["X-Align-Timestamp"],
                r["raw"],
                r["headers"]["X-Align-Signature"],
            )
            for r in self.received
        ]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.received.append(
            {"raw": raw, "body": json.loads(raw), "headers": dict(request.headers)}
        )
        if self.handler is not None:
            return await self.handler(request)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, headers={"Retry-After": "5"} if status == 429 else {})

    async def start(self, ssl_context: Any = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self.runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns({"hooks.example.com": ["93.184.215.14"], "hooks.align.test": ["127.0.0.1"]})


@pytest.fixture
def hook_app(migrated_db_url: str, clock: FakeClock, dns: FakeDns) -> Iterator[App]:
    """The app with loopback allowed (the test-only setting) and the fake resolver."""
    app = build(
        make_settings(migrated_db_url, ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS="true"), clock=clock
    )
    assert app.engine.deps.webhook_targets.allow_loopback
    app.engine.deps.webhook_targets = TargetPolicy(resolve=dns, allow_loopback=True)
    yield app
    app.db.dispose()


def run(scenario: Callable[[Receiver], Awaitable[None]]) -> None:
    async def main() -> None:
        receiver = Receiver()
        await receiver.start()
        try:
            await scenario(receiver)
        finally:
            await receiver.stop()

    asyncio.run(main())


def sender_for(app: App, clock: FakeClock, **kw: Any) -> WebhookSender:
    return WebhookSender(
        app.engine.deps.secret, targets=app.engine.deps.webhook_targets, clock=clock, **kw
    )


async def dispatch(app: App, clock: FakeClock, **kw: Any) -> int:
    sender = sender_for(app, clock, **kw)
    try:
        return await Dispatcher(app, {"webhook": sender}).run_once()
    finally:
        await sender.aclose()


def add(chat: Chat, url: str, events: str = "decision,poll,digest") -> str:
    """`webhook add`; the secret it shows (once)."""
    reply = chat.ok(f"webhook add {url} events:{events}")
    assert reply.ephemeral  # the secret is shown to the person who added it, nobody else
    return str(reply.data["secret"])


def test_events_arrive_signed_with_the_webhooks_own_secret(hook_app: App, clock: FakeClock) -> None:
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        receiver.secret = add(chat, receiver.url, "decision,poll").encode()
        assert receiver.secret.startswith(b"whsec_")
        chat.ok("decide Use Postgres | boring")
        chat.ok("item SSO")  # items are not a webhook event
        chat.ok('poll "Ship?" "yes" "no"')
        chat.ok("close P-1")
        chat.ok("digest")  # not subscribed
        assert await dispatch(hook_app, clock) == 3
        assert receiver.verified() == [True, True, True]
        events = [r["body"]["event"] for r in receiver.received]
        assert sorted(events) == ["decision.recorded", "poll.closed", "poll.opened"]
        first = next(r for r in receiver.received if r["body"]["event"] == "decision.recorded")
        assert first["body"]["data"]["title"] == "Use Postgres"
        assert first["headers"]["X-Align-Delivery"] == first["body"]["delivery"]
        stamp = first["headers"]["X-Align-Timestamp"]
        assert stamp == str(int(clock.now().timestamp()))
        signature = first["headers"]["X-Align-Signature"]
        # ALIGN_SECRET does not verify it: a receiver's key is not the server's.
        assert not verify(SERVER_KEY, stamp, first["raw"], signature)
        assert not verify(
            receiver.secret, stamp, first["raw"].replace(b"Postgres", b"MySQL"), signature
        )

    run(scenario)


def test_a_failing_receiver_is_retried_and_a_gone_one_recorded(
    hook_app: App, clock: FakeClock
) -> None:
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        receiver.statuses = [500, 200, 410]
        add(chat, receiver.url, "decision")
        chat.ok("decide One")
        assert await dispatch(hook_app, clock) == 0
        clock.advance(timedelta(minutes=5))
        assert await dispatch(hook_app, clock) == 1
        chat.ok("decide Two")
        assert await dispatch(hook_app, clock) == 0
        rows = outbox_rows(hook_app, platform="webhook")
        assert [r.status for r in rows] == ["sent", "failed"]
        assert "HTTP 410" in (rows[1].last_error or "")
        assert len(receiver.received) == 3
        keys = [r["headers"]["X-Align-Delivery"] for r in receiver.received]
        assert keys[0] == keys[1] != keys[2]  # both tries of the first carried one key
        assert chat.ok("digest status").data["failures"][0]["kind"] == "webhook"

    run(scenario)


def test_add_list_rotate_remove(chat: Chat, app: App) -> None:
    """With the real policy (no loopback) and no DNS: names that do not resolve are accepted
    with a warning; the secret appears in the add and rotate replies only."""
    added = chat.ok("webhook add https://hooks.example.com/align/abc events:digest")
    assert {k: added.data[k] for k in ("id", "url", "events")} == {
        "id": 1,
        "url": "https://hooks.example.com/align/abc",
        "events": ["digest"],
    }
    assert "does not resolve yet" in added.data["warning"]
    secret = added.data["secret"]
    assert secret in json.dumps([str(b) for b in added.blocks])
    chat.ok("webhook add https://b.example/x")
    listed = chat.ok("webhook list")
    assert [w["id"] for w in listed.data["webhooks"]] == [1, 2]
    assert all(w["own_secret"] for w in listed.data["webhooks"])
    assert "whsec_" not in json.dumps([str(b) for b in listed.blocks]) + json.dumps(listed.data)
    rotated = chat.ok("webhook rotate 1")
    assert rotated.ephemeral and rotated.data["secret"].startswith("whsec_")
    assert rotated.data["secret"] != secret
    chat.ok("webhook remove 1")
    assert [w["id"] for w in chat.ok("webhook list").data["webhooks"]] == [2]
    assert chat.fails("webhook remove 1").data["code"] == "not_found"
    assert chat.fails("webhook rotate 9").data["code"] == "not_found"
    assert chat.ok("webhook list", channel="elsewhere").data["webhooks"] == []
    assert chat.ok("webhook add https://c.example/x").data["id"] == 3  # numbers never reused
    assert "events" in (chat.fails("webhook add https://a.example events:votes").error or "")
    chat.ok("digest")
    assert [r.payload["data"]["url"] for r in outbox_rows(app, platform="webhook")] == [
        "https://b.example/x",
        "https://c.example/x",
    ]


def test_a_webhook_from_before_keeps_the_server_key_until_rotated(
    hook_app: App, clock: FakeClock
) -> None:
    """Migration 0004_webhook_secrets leaves existing webhooks without a salt: their receivers
    verify with ALIGN_SECRET, so they keep working; `webhook list` says so, `webhook rotate`
    fixes it."""
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        add(chat, receiver.url, "decision")
        with hook_app.db.uow() as session:
            session.execute(
                update(Webhook).values(key_salt=None)
            )  # as the migration leaves old rows
        [hook] = chat.ok("webhook list").data["webhooks"]
        assert hook["own_secret"] is False
        assert "webhook rotate 1" in str(chat.ok("webhook list").blocks)
        chat.ok("decide Before rotation")
        receiver.secret = SERVER_KEY
        assert await dispatch(hook_app, clock) == 1
        assert receiver.verified() == [True]
        receiver.secret = chat.ok("webhook rotate 1").data["secret"].encode()
        receiver.received.clear()
        chat.ok("decide After rotation")
        assert await dispatch(hook_app, clock) == 1
        assert receiver.verified() == [True]
        headers = receiver.received[0]["headers"]
        assert not verify(
            SERVER_KEY,
            headers["X-Align-Timestamp"],
            receiver.received[0]["raw"],
            headers["X-Align-Signature"],
        )

    run(scenario)


REFUSED = [
    "http://127.0.0.1/x",
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://2130706433/",
    "https://127.1/",
    "https://127.0.1/",
    "https://0x7f.1/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://017700000001/",
    "https://0/",
    "https://0.0.0.0/",
    "https://[::]/",
    "https://0xa9fea9fe/",
    "https://2852039166/",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.8/",
    "https://012.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://100.127.255.254/",
    "https://224.0.0.1/",
    "https://239.255.255.250/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://198.18.0.1/",
    "https://192.0.2.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:7f00:1::]/",
    "https://[::127.0.0.1]/",
    "https://[fe80::1]/",
    "https://[fe80::1%25eth0]/",
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://[ff02::1]/",
    "https://localhost/",
    "https://api.localhost/",
    "https://127.0.0.1.nip.io/",
    "https://metadata.internal.example/",
    "https://999.1.1.1/",
    "https://1.2.3.4.5/",
    "https://user:pw@hooks.example.com/",
    "ftp://hooks.example.com/",
    "http://hooks.example.com/",
    "https://hooks.example.com:99999/",
]


def test_every_spelling_of_an_internal_address_is_refused(app: App, chat: Chat) -> None:
    dns = FakeDns(
        {
            "127.0.0.1.nip.io": ["127.0.0.1"],
            "metadata.internal.example": ["93.184.215.14", "169.254.169.254"],
            "hooks.example.com": ["93.184.215.14"],
        }
    )
    app.engine.deps.webhook_targets = TargetPolicy(resolve=dns)  # the production policy
    accepted = [url for url in REFUSED if chat.say(f"webhook add {url}").ok]
    assert accepted == []
    assert outbox_rows(app) == []
    for url in [
        "https://hooks.example.com/x",
        "https://93.184.215.14/x",
        "https://[2606:4700:4700::1111]/x",
        "https://134744072/x",  # 8.8.8.8, spelled as one number: public, so fine
    ]:
        assert chat.ok(f"webhook add {url}").data.get("warning") is None, url


def test_a_name_is_checked_again_at_delivery_and_rebinding_is_permanent(
    hook_app: App, clock: FakeClock, dns: FakeDns
) -> None:
    """Public at `webhook add`, loopback or private at delivery: nothing is sent, the row fails
    for good (no retries against an internal address)."""
    chat = Chat(hook_app)
    dns.table["rebind.example"] = ["93.184.215.14"]
    dns.then["rebind.example"] = ["10.0.0.7"]
    dns.table["later.example"] = ["93.184.215.14"]
    dns.then["later.example"] = ["169.254.169.254"]

    async def scenario(receiver: Receiver) -> None:
        chat.ok("webhook add https://rebind.example/hook events:decision")
        chat.ok(f"webhook add https://later.example:{receiver.port}/hook events:decision")
        unresolved = chat.ok("webhook add https://not-yet.example/hook events:decision")
        assert "does not resolve yet" in unresolved.data["warning"]
        chat.ok("decide Ship it")
        assert await dispatch(hook_app, clock) == 0
        rows = {r.payload["data"]["url"]: r for r in outbox_rows(hook_app, platform="webhook")}
        assert rows["https://rebind.example/hook"].status == "failed"
        assert "10.0.0.7" in (rows["https://rebind.example/hook"].last_error or "")
        assert rows[f"https://later.example:{receiver.port}/hook"].status == "failed"
        # Still not resolving at delivery: retried later, not dropped.
        assert rows["https://not-yet.example/hook"].status == "pending"
        assert receiver.received == []

    run(scenario)


def test_the_connection_goes_to_the_address_that_was_checked(
    hook_app: App, clock: FakeClock, dns: FakeDns
) -> None:
    """The name is resolved once per delivery, by us; the request reaches the checked address
    with the name in the Host header (httpx never looks the name up: it has no DNS here)."""
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        receiver.secret = add(
            chat, f"http://hooks.align.test:{receiver.port}/hook", "decision"
        ).encode()
        dns.asked.clear()
        chat.ok("decide Ship it")
        assert await dispatch(hook_app, clock) == 1
        assert dns.asked == ["hooks.align.test"]
        assert receiver.received[0]["headers"]["Host"] == f"hooks.align.test:{receiver.port}"
        assert receiver.verified() == [True]

    run(scenario)


def test_tls_is_verified_for_the_name_while_connecting_to_the_checked_address(
    hook_app: App, clock: FakeClock
) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("hooks.align.test").configure_cert(server_ctx)
        await receiver.stop()
        await receiver.start(ssl_context=server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        add(chat, f"https://hooks.align.test:{receiver.port}/hook", "decision")
        add(chat, f"https://127.0.0.1:{receiver.port}/hook", "decision")  # cert has no IP
        chat.ok("decide Ship it")
        assert await dispatch(hook_app, clock, verify=client_ctx) == 1
        assert len(receiver.received) == 1
        assert receiver.received[0]["headers"]["Host"] == f"hooks.align.test:{receiver.port}"
        failed = [r for r in outbox_rows(hook_app, platform="webhook") if r.status != "sent"]
        assert [r.payload["data"]["url"] for r in failed] == [
            f"https://127.0.0.1:{receiver.port}/hook"
        ]
        assert "CERTIFICATE_VERIFY_FAILED" in (failed[0].last_error or "")

    run(scenario)


def test_redirects_are_not_followed(hook_app: App, clock: FakeClock) -> None:
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        async def redirect(request: web.Request) -> web.StreamResponse:
            if request.path == "/hook":
                raise web.HTTPFound("http://169.254.169.254/latest/meta-data")
            return web.Response()

        receiver.handler = redirect
        add(chat, receiver.url, "decision")
        chat.ok("decide Ship it")
        assert await dispatch(hook_app, clock) == 0
        [row] = outbox_rows(hook_app, platform="webhook")
        assert row.status == "failed" and "redirects are not followed" in (row.last_error or "")
        assert len(receiver.received) == 1

    run(scenario)


def test_a_drip_feeding_receiver_holds_nobody_else(hook_app: App, clock: FakeClock) -> None:
    """One receiver answers a byte at a time and holds on until the test lets go. Meanwhile
    the other receiver of the same channel, another channel's digest, and a row queued after the
    slow delivery started are all delivered: nothing waits for the slow one."""
    from tests.time.helpers import Recorder

    chat = Chat(hook_app)
    slack = Recorder("slack", clock)

    async def scenario(fast: Receiver) -> None:
        slow = Receiver()
        release = asyncio.Event()

        async def drip(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            await response.prepare(request)
            while not release.is_set():
                await response.write(b".")
                await asyncio.sleep(0.05)
            return response

        slow.handler = drip
        await slow.start()
        try:
            add(chat, slow.url, "decision")
            add(chat, fast.url, "decision")
            chat.ok("decide Ship it")
            from tests.time.test_dispatcher import put

            put(hook_app, 2, channel="C-other", platform="slack")
            sender = sender_for(hook_app, clock, deadline=60)
            dispatcher = Dispatcher(hook_app, {"webhook": sender, "slack": slack}, claim_every=0.05)
            running = asyncio.create_task(dispatcher.run_once())
            async with asyncio.timeout(10):
                while not (fast.received and len(slack.sent) == 2 and slow.received):
                    await asyncio.sleep(0.01)
                chat.ok("decide Later one")  # queued while the slow delivery is in flight
                while len(fast.received) < 2:
                    await asyncio.sleep(0.01)
            assert not running.done()  # the slow one is still dripping
            release.set()
            assert await asyncio.wait_for(running, 10) == 6
            await sender.aclose()
        finally:
            release.set()
            await slow.stop()

    run(scenario)


def test_a_receiver_that_never_finishes_is_cut_off_at_the_deadline(
    hook_app: App, clock: FakeClock
) -> None:
    chat = Chat(hook_app)

    async def scenario(receiver: Receiver) -> None:
        async def forever(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            await response.prepare(request)
            while True:
                await response.write(b".")
                await asyncio.sleep(0.02)

        receiver.handler = forever
        add(chat, receiver.url, "decision")
        chat.ok("decide Ship it")
        assert await asyncio.wait_for(dispatch(hook_app, clock, deadline=0.5), 10) == 0
        [row] = outbox_rows(hook_app, platform="webhook")
        assert row.status == "pending"  # a transient failure: tried again later
        assert "no answer within 0.5 s" in (row.last_error or "")

    run(scenario)


def test_a_huge_response_is_not_read(hook_app: App, clock: FakeClock) -> None:
    """The receiver offers 400 MB; the sender reads a few KB and hangs up."""
    import resource

    chat = Chat(hook_app)
    offered = 400 * 1024 * 1024
    written = [0]

    async def scenario(receiver: Receiver) -> None:
        async def huge(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Length": str(offered)})
            await response.prepare(request)
            chunk = b"x" * 65536
            try:
                while written[0] < offered:
                    await response.write(chunk)
                    written[0] += len(chunk)
            except (ConnectionError, RuntimeError):
                pass  # the client hung up
            return response

        receiver.handler = huge
        add(chat, receiver.url, "decision")
        chat.ok("decide Ship it")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert await dispatch(hook_app, clock) == 1
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert grown_mb < 50, grown_mb
        assert written[0] < offered / 4  # the rest was never sent: nobody was reading it

    run(scenario)
