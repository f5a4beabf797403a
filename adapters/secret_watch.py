"""While `align serve` runs, whatever its role: stop once the database's ALIGN_SECRET is no
longer this process's.

`check_secret` (adapters/bootstrap.py) compares secrets only at start. When an operator runs
`align adopt-secret` with a process still running on the old secret, that process would go on
acknowledging requests and sealing them with a secret the new processes cannot open: they drop
them, and the work is lost without a word. So every SECRET_RECHECK_EVERY seconds each process
reads the stored fingerprint again (one read by primary key); once it is another one, the
process logs one sentence at ERROR and stops the way SIGTERM stops it — work in flight finishes
within ALIGN_SHUTDOWN_GRACE — then exits 1, so a supervisor shows it (and restarts it, with the
new secret once the operator has set it). A database that cannot be read is no reason to stop:
a WARNING, and the next re-check tries again.

With an injected FakeClock nothing wakes by itself, as with the runtime: tests call
`SecretWatch.round()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web

from adapters.bootstrap import App, secret_fingerprint
from adapters.web_keys import STOP
from bot.clock import FakeClock
from storage import secret_check

log = logging.getLogger("align.secret")

SECRET_RECHECK_EVERY = 30.0
"""Seconds between two reads of the stored fingerprint: a process on a replaced secret stops
within about this long, plus the grace period."""

SECRET_REPLACED = (
    "ALIGN_SECRET was replaced in the database (`align adopt-secret`) while this process ran "
    "with the old one: stopping, so that it neither seals what the other processes cannot open "
    "nor drops what they sealed — restart it with the new ALIGN_SECRET."
)


def still_ours(app: App, mine: str) -> bool:
    """Whether the database still holds `mine`, this process's fingerprint. None stored (the
    row deleted by hand) contradicts nothing: the next process to start stores its own."""
    held = secret_check.stored(app.db)
    return held is None or held == mine


class SecretWatch:
    """One background loop: wait, re-check, until the secret changed or the server stops."""

    def __init__(
        self,
        app: App,
        on_replaced: Callable[[], None],
        *,
        every: float = SECRET_RECHECK_EVERY,
    ) -> None:
        self.app = app
        self.on_replaced = on_replaced
        self.every = every
        self.mine = secret_fingerprint(app.settings)
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def round(self) -> bool:
        """Re-check once; False when the secret was replaced (logged, and `on_replaced` called)."""
        try:
            ours = await asyncio.to_thread(still_ours, self.app, self.mine)
        except Exception as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(
                "could not re-check ALIGN_SECRET against the database (%s); trying again in %.0f s",
                cause,
                self.every,
            )
            return True
        if not ours:
            log.error("%s", SECRET_REPLACED)
            self.on_replaced()
        return ours

    async def loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every)
            if not self._stop.is_set() and not await self.round():
                return

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.loop())

    async def stop(self) -> None:
        """Stop watching; a read in flight is left to finish in its thread."""
        self._stop.set()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


SECRET_WATCH = web.AppKey("secret_watch", SecretWatch)


def mount(web_app: web.Application, app: App) -> None:
    """Every role: a web process seals what it records, a worker opens it."""
    every = app.settings.secret_recheck_for_tests or SECRET_RECHECK_EVERY

    def replaced() -> None:
        if STOP in web_app:  # set by `align serve`; an app a test starts has no process to stop
            web_app[STOP].fail()

    watch = web_app[SECRET_WATCH] = SecretWatch(app, replaced, every=every)

    async def on_startup(_: web.Application) -> None:
        if not isinstance(app.clock, FakeClock):
            watch.start()

    async def on_cleanup(_: web.Application) -> None:
        await watch.stop()

    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)


__all__ = ["SECRET_RECHECK_EVERY", "SECRET_REPLACED", "SECRET_WATCH", "SecretWatch", "mount"]
