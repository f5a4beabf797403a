"""The scheduler and outbox delivery inside `align chat`, so a digest due while you chat appears in
the terminal on time.

It is the very `Runtime` of `align serve` (`adapters/runtime.py`: APScheduler wakes the tick and
the dispatcher; the engine decides what is due from the app's clock), run on an event loop of its
own in a background thread, since the chat itself reads the terminal synchronously. Rows of
platform "console" are delivered by printing them; webhook rows go out over HTTP as on a server.
Tests call `tick()` with a FakeClock instead of starting the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from adapters.bootstrap import App
from adapters.console.repl import Console
from adapters.delivery import Outgoing, Sender
from adapters.runtime import Runtime
from adapters.webhook_sender import WebhookSender

log = logging.getLogger("align.console")

T = TypeVar("T")
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
    """`Runtime` on a background event loop; `stop()` when the chat ends."""

    def __init__(self, app: App, console: Console, *, senders: dict[str, Sender] | None = None):
        deps = app.engine.deps
        self.senders: dict[str, Sender] = senders or {
            "console": ConsoleSender(console),
            "webhook": WebhookSender(deps.secret, targets=deps.webhook_targets),
        }
        self.runtime = Runtime(app, self.senders)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="align-console-runtime", daemon=True
        )
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def tick(self) -> int:
        """Queue what is due now and deliver it; returns how many messages went out."""
        return self._run(self.runtime.tick_and_dispatch())

    def start(self, *, seconds: int = TICK_SECONDS) -> None:
        async def start() -> None:
            self.runtime.start(tick_seconds=seconds, dispatch_seconds=seconds)

        self._run(start())

    def stop(self) -> None:
        async def stop() -> None:
            await self.runtime.aclose(grace=5.0)
            for sender in self.senders.values():
                close = getattr(sender, "aclose", None)
                if close is not None:
                    await close()

        try:
            self._run(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


def start_console_runtime(app: App, console: Console, *, start: bool = True) -> ConsoleRuntime:
    """Called by `align chat`; tests pass start=False and call `tick()` themselves."""
    runtime = ConsoleRuntime(app, console)
    if start:
        runtime.start()
    return runtime
