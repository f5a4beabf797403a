"""Test doubles for the time tests: a recording Sender (the platform boundary), shortcuts to
tick the scheduler and run the dispatcher with the app's FakeClock, and a Teams server with the
runtime mounted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from adapters import runtime
from adapters.bootstrap import App, build
from adapters.delivery import DeliveryError, Outgoing, Sender
from adapters.runtime import Dispatcher
from adapters.server import create_web_app
from adapters.teams import http as teams_http
from adapters.web_keys import Serving
from bot import jobs
from bot.clock import FakeClock
from storage.models import OutboxMessage, ScheduleRun
from tests.conftest import make_settings
from tests.fakes import FakeBotConnector
from tests.teams.harness import CHANNEL as TEAMS_CHANNEL
from tests.teams.harness import TEAM as TEAMS_ROSTER
from tests.teams.harness import TeamsServer


@dataclass
class Recorder:
    """A Sender that records what it was asked to send, and when (by the fake clock). `fail` may
    raise for a given message to play a failing platform."""

    platform: str
    clock: FakeClock
    fail: Callable[[Outgoing, int], None] | None = None
    sent: list[tuple[datetime, Outgoing]] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def send(self, message: Outgoing) -> None:
        with self.lock:
            self.calls += 1
            calls = self.calls
        if self.fail is not None:
            self.fail(message, calls)
        await asyncio.sleep(0)  # let a concurrent dispatcher interleave
        with self.lock:
            self.sent.append((self.clock.now(), message))

    @property
    def keys(self) -> list[str]:
        return [m.idempotency_key for _, m in self.sent]

    @property
    def texts(self) -> list[str]:
        return [m.reply.text for _, m in self.sent]


def tick(app: App) -> jobs.TickReport:
    return jobs.tick(app.engine.deps, app.clock.now())


def deliver(app: App, senders: dict[str, Sender], **kw: Any) -> int:
    return asyncio.run(Dispatcher(app, senders, **kw).run_once())


def outbox_rows(app: App, **where: Any) -> list[OutboxMessage]:
    with app.db.uow() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(OutboxMessage, key) == value)
        return list(session.execute(stmt).scalars())


def runs(app: App, job: str = "digest") -> list[ScheduleRun]:
    with app.db.uow() as session:
        return list(
            session.execute(
                select(ScheduleRun).where(ScheduleRun.job == job).order_by(ScheduleRun.period)
            ).scalars()
        )


def rate_limited(retry_after: float) -> DeliveryError:
    return DeliveryError("HTTP 429 ratelimited", retry_after=retry_after)


@asynccontextmanager
async def teams_server_with_runtime(db_url: str, clock: FakeClock) -> AsyncIterator[TeamsServer]:
    """`tests.teams.harness.teams_server`, plus the runtime mount, as `align serve` has them: the
    Teams routes and `TeamsSender`, the scheduler tick and the dispatcher (driven by the test
    through `web_app[runtime.RUNTIME_KEY]`, since the clock is fake)."""
    async with FakeBotConnector() as connector:
        connector.members[TEAMS_CHANNEL] = [p.roster_entry() for p in TEAMS_ROSTER]
        app = build(make_settings(db_url), clock=clock)
        web_app = await create_web_app(
            app,
            mounts=[teams_http.mount, runtime.mount],
            serving=Serving(teams_emulator=True),  # the recorded activities carry no token
        )
        server = TeamsServer(app, web_app, connector, url="")

        async def no_wait(seconds: float) -> None:
            server.slept.append(seconds)

        web_app[teams_http.TEAMS].retry.sleep = no_wait
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        try:
            yield server
        finally:
            await runner.cleanup()
            app.db.dispose()
