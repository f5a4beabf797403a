"""`align serve`'s runtime: mounted on the aiohttp app, it ticks and delivers through the senders
the platform mounts registered in `web_app[SENDERS]`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from aiohttp import web

from adapters import runtime
from adapters.bootstrap import App, build
from adapters.delivery import Outgoing
from adapters.server import create_web_app
from adapters.web_keys import SENDERS
from bot.clock import FakeClock
from tests.conftest import Chat, make_settings
from tests.time.helpers import Recorder


def test_the_mounted_runtime_delivers_through_registered_senders(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    async def scenario() -> None:
        web_app = await create_web_app(app, mounts=[runtime.mount])
        console = Recorder("console", clock)
        web_app[SENDERS]["console"] = console  # as a platform mount would
        runner = web.AppRunner(web_app)
        await runner.setup()
        try:
            assert set(web_app[SENDERS]) == {"console", "webhook"}
            mounted: runtime.Runtime = web_app[runtime.RUNTIME_KEY]
            chat.ok("digest weekly thu 09:00")
            assert await mounted.tick_and_dispatch() == 0
            clock.advance(timedelta(days=1))
            assert await mounted.tick_and_dispatch() == 1
            assert console.sent[0][1].reply.kind == "digest"
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


class StoppedWallClock:
    """A real-looking clock (not a FakeClock), so the runtime starts its scheduler."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_on_start_the_runtime_catches_up_at_once(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    wall = StoppedWallClock(clock.now())
    app = build(make_settings(migrated_sqlite_url), clock=wall)
    Chat(app).ok("digest weekly wed 08:00")  # an hour ago: due at the next run…
    wall.at += timedelta(days=7)  # …a week later the process starts, an hour after 08:00

    async def scenario() -> None:
        delivered = asyncio.Event()

        class Console:
            platform = "console"
            sent: list[Outgoing] = []

            async def send(self, message: Outgoing) -> None:
                self.sent.append(message)
                delivered.set()

        web_app = await create_web_app(app, mounts=[runtime.mount])
        web_app[SENDERS]["console"] = sender = Console()
        runner = web.AppRunner(web_app)
        await runner.setup()  # on_startup: APScheduler starts, and a catch-up tick runs now
        try:
            await asyncio.wait_for(delivered.wait(), timeout=10)
            assert [m.reply.kind for m in sender.sent] == ["digest"]
        finally:
            await runner.cleanup()

    try:
        asyncio.run(scenario())
    finally:
        app.db.dispose()
