"""The scheduler and outbox delivery inside `align chat`, so a digest due while you chat appears in
the terminal on time.

A BackgroundScheduler wakes `tick()` every few seconds; the engine decides what is due from the
app's clock (`bot.jobs.tick`) and the outbox dispatcher delivers rows of platform "console"
by printing them (and webhook rows over HTTP). Tests call `tick()` directly with a FakeClock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from adapters.bootstrap import App
from adapters.console.repl import Console
from adapters.delivery import Outgoing, Sender
from adapters.runtime import Dispatcher
from adapters.webhook_sender import WebhookSender
from bot import jobs

log = logging.getLogger("align.console")

TICK_SECONDS = 10


class ConsoleSender:
    """Delivers to the terminal: the Reply as `align chat` prints any answer."""

    platform = "console"

    def __init__(self, console: Console) -> None:
        self.console = console

    async def send(self, message: Outgoing) -> None:
        here = self.console.actor
        if message.reply.direct_to:
            self.console.print_text(f"── to @{message.reply.direct_to}, privately ──")
        elif (message.workspace, message.channel) != (here.workspace, here.channel):
            self.console.print_text(f"── in #{message.channel} ({message.workspace}) ──")
        self.console.print_reply(message.reply)


class ConsoleRuntime:
    """Ticks the scheduler and delivers the outbox; `stop()` when the chat ends."""

    def __init__(self, app: App, console: Console, *, senders: dict[str, Sender] | None = None):
        self.app = app
        self.console = console
        self.senders: dict[str, Sender] = senders or {
            "console": ConsoleSender(console),
            "webhook": WebhookSender(
                app.engine.deps.secret, targets=app.engine.deps.webhook_targets
            ),
        }
        self.dispatcher = Dispatcher(app, self.senders)
        # One loop for the life of the chat (the webhook client's connections belong to it);
        # the lock lets the scheduler thread and a test drive it in turn.
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._scheduler: Any = None

    def tick(self) -> int:
        """Queue what is due now and deliver it; returns how many messages went out."""
        with self._lock:
            jobs.tick(self.app.engine.deps, self.app.clock.now())
            return self._loop.run_until_complete(self.dispatcher.run_once())

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:
            log.exception("console scheduler tick failed; retrying at the next one")

    def start(self, *, seconds: int = TICK_SECONDS) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
        scheduler.add_job(
            self._safe_tick,
            "interval",
            seconds=seconds,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler
        # Catch up at once: a digest missed while nobody was chatting goes out now.
        threading.Thread(target=self._safe_tick, daemon=True).start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        with self._lock:
            for sender in self.senders.values():
                close = getattr(sender, "aclose", None)
                if close is not None:
                    self._loop.run_until_complete(close())
            self._loop.close()


def start_console_runtime(app: App, console: Console, *, start: bool = True) -> ConsoleRuntime:
    """Called by `align chat`; tests pass start=False and call `tick()` themselves."""
    runtime = ConsoleRuntime(app, console)
    if start:
        runtime.start()
    return runtime
