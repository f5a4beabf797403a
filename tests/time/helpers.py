"""Test doubles for the time tests: a recording Sender (the platform boundary) and shortcuts to
tick the scheduler and run the dispatcher with the app's FakeClock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing, Sender
from adapters.runtime import Dispatcher
from bot import schedules
from bot.clock import FakeClock
from storage.models import OutboxMessage, ScheduleRun


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


def tick(app: App) -> schedules.TickReport:
    return schedules.tick(app.engine.deps, app.clock.now())


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
