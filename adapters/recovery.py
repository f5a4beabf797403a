"""The inbox's chores in `align serve --role worker|all`: pick up what a dead process left.

At start — a process restarted after a crash finishes what it had acknowledged — and every
RECOVER_EVERY seconds, `Inbox.recover` takes over requests whose claim ran out; once an hour
`Inbox.prune` deletes finished ones past the retention. `web` replicas only record and work
their own requests; a deployment runs at least one worker (or `all`) process.

With an injected FakeClock nothing wakes by itself, as with the runtime: tests call
`app.inbox.recover()` after moving the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from aiohttp import web

from adapters.bootstrap import App
from adapters.web_keys import SHUTDOWN
from bot.clock import FakeClock

log = logging.getLogger("align.inbox")

RECOVER_EVERY = 5.0
PRUNE_EVERY = timedelta(hours=1)


class Recovery:
    """One background loop: recover, sometimes prune, wait, until stopped."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._stop = asyncio.Event()
        self._pruned: datetime | None = None
        self.task: asyncio.Task[None] | None = None

    async def round(self) -> None:
        inbox = self.app.inbox
        await inbox.recover()
        now = self.app.clock.now()
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            await inbox.prune()
            self._pruned = now

    async def loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.round()
            except Exception:
                log.exception("inbox recovery failed; tried again in %.0f s", RECOVER_EVERY)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RECOVER_EVERY)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.loop())

    async def stop(self, grace: float) -> None:
        """Let the round in flight finish within `grace` seconds, then cut it: a request cut
        short stays claimed and is taken over once its claim runs out."""
        self._stop.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace)
        except TimeoutError:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            log.warning("inbox recovery still running at the end of the grace period: cut short")


RECOVERY = web.AppKey("inbox_recovery", Recovery)


def mount(web_app: web.Application, app: App) -> None:
    recovery = web_app[RECOVERY] = Recovery(app)

    async def on_startup(_: web.Application) -> None:
        if not isinstance(app.clock, FakeClock):
            recovery.start()

    def grace() -> float:
        return web_app[SHUTDOWN].remaining() if SHUTDOWN in web_app else 5.0

    async def on_cleanup(_: web.Application) -> None:
        await recovery.stop(grace())
        try:
            await asyncio.wait_for(app.inbox.idle(), grace())
        except TimeoutError:
            log.warning("requests recorded late were still running at the end of the grace period")

    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)


__all__ = ["RECOVERY", "RECOVER_EVERY", "Recovery", "mount"]
