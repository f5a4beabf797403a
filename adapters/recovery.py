"""The inbox's chores in `align serve --role worker|all`: pick up what a dead process left.

At start — a process restarted after a crash finishes what it had acknowledged — and every
ALIGN_INBOX_RECOVER_EVERY seconds (default 5), `Inbox.recover` takes over requests whose claim
ran out; once an hour `Inbox.prune` deletes finished ones past the retention. `web` replicas
only record and work their own requests; a deployment runs at least one worker (or `all`)
process.

With ALIGN_HAND_OFF, web processes leave their requests to the workers, and a worker watches the
shared queue closely (`Queue`): every WATCH_EVERY seconds when it is idle, every GATHER seconds
while rows keep coming, up to IN_FLIGHT requests at a time per process (what they wait for is
the database and Slack; more would only queue for the engine's threads). On PostgreSQL an idle
worker instead waits for the notification a queued row sends when it is committed
(storage/inbox.py `queued_notices`), and looks by itself only every IDLE_LISTENING seconds (rows
a dead process left; recovery takes those too): looking every WATCH_EVERY cost an idle worker
55-85 ms of CPU a second, and bench_slack's split read phase (reads were queued then), 20 reads
in flight paced on their replies, paid it per read. While its listening connection is lost it
looks every WATCH_EVERY again.

With an injected FakeClock nothing wakes by itself, as with the runtime: tests call
`app.inbox.recover()` after moving the clock, and `Queue.round()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from adapters.bootstrap import App
from adapters.web_keys import SHUTDOWN
from bot.clock import FakeClock
from storage import inbox as store

log = logging.getLogger("align.inbox")

PRUNE_EVERY = timedelta(hours=1)
WATCH_EVERY = 0.05
GATHER = 0.01
IN_FLIGHT = 32
IDLE_LISTENING = 1.0
LISTEN_AGAIN_AFTER = 1.0


class Recovery:
    """One background loop: recover, sometimes prune, wait, until stopped."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.every = app.settings.inbox_recover_every
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
                log.exception("inbox recovery failed; tried again in %.0f s", self.every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every)

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


class Queue:
    """A worker's loop over the requests web processes handed off (ALIGN_HAND_OFF)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.woken = asyncio.Event()
        """Set by a notification of a queued row (PostgreSQL): look at the queue now."""
        self.listening = False
        """Whether notifications come: then an idle worker waits for them (`listen`)."""
        self._listener: asyncio.Task[None] | None = None

    async def round(self, *, look_first: bool = True) -> int:
        """Take what is waiting, as far as this process has room; how many were taken."""
        room = IN_FLIGHT - len(self._running)
        started = await self.app.inbox.take_waiting(room, look_first=look_first)
        for task in started:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(started)

    async def loop(self) -> None:
        stopped = asyncio.ensure_future(self._stop.wait())
        taken = 0
        try:
            while not self._stop.is_set():
                # Cleared before the look: a row notified while it runs wakes the next wait.
                self.woken.clear()
                try:
                    # Rows came last time: more are likely waiting, and looking costs a read.
                    taken = await self.round(look_first=not taken)
                except Exception:
                    log.exception("inbox: taking handed-off requests failed; tried again")
                    taken = 0
                await self._pause(stopped, taken)
        finally:
            stopped.cancel()

    async def _pause(self, stopped: asyncio.Future[bool], taken: int) -> None:
        """Until the next look. A burst: after a moment, for more at once (one claim per
        batch); full: as soon as one of ours is done; idle: at a notification (or every
        IDLE_LISTENING), or without them shortly."""
        if len(self._running) >= IN_FLIGHT:
            wake: list[asyncio.Future[Any]] = [stopped, *self._running]
            await asyncio.wait(wake, timeout=WATCH_EVERY, return_when=FIRST_COMPLETED)
        elif taken:
            await asyncio.wait([stopped], timeout=GATHER)
        elif self.listening:
            woken = asyncio.ensure_future(self.woken.wait())
            try:
                await asyncio.wait(
                    [stopped, woken], timeout=IDLE_LISTENING, return_when=FIRST_COMPLETED
                )
            finally:
                woken.cancel()
        else:
            await asyncio.wait([stopped], timeout=WATCH_EVERY)

    async def listen(self) -> None:
        """Keep a connection listening for queued rows (PostgreSQL), and listen again a
        moment after it is lost; every notification sets `woken`."""
        while not self._stop.is_set():
            try:
                async with store.queued_notices(self.app.db) as notices:
                    self.listening = True
                    self.woken.set()  # rows queued before the LISTEN: look once now
                    async for _ in notices:
                        self.woken.set()
            except Exception as exc:
                log.warning(
                    "inbox: not listening for handed-off requests (%s); looking every %.2f s",
                    exc,
                    WATCH_EVERY,
                )
            finally:
                self.listening = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), LISTEN_AGAIN_AFTER)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self.loop())
        if self.app.db.dialect == "postgresql":
            self._listener = loop.create_task(self.listen())

    async def stop(self) -> None:
        """Take nothing more; what was taken finishes with the inbox's other work."""
        self._stop.set()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


RECOVERY = web.AppKey("inbox_recovery", Recovery)
QUEUE = web.AppKey("inbox_queue", Queue)


def mount(web_app: web.Application, app: App) -> None:
    recovery = web_app[RECOVERY] = Recovery(app)
    queue = Queue(app) if app.settings.hand_off else None
    if queue is not None:
        web_app[QUEUE] = queue
        app.inbox.runs_together()  # a burst handed off arrives here: votes batched

    async def on_startup(_: web.Application) -> None:
        if not isinstance(app.clock, FakeClock):
            recovery.start()
            if queue is not None:
                queue.start()

    def grace() -> float:
        return web_app[SHUTDOWN].remaining() if SHUTDOWN in web_app else 5.0

    async def on_cleanup(_: web.Application) -> None:
        if queue is not None:
            await queue.stop()
        await recovery.stop(grace())
        try:
            await asyncio.wait_for(app.inbox.idle(), grace())
        except TimeoutError:
            log.warning("requests recorded late were still running at the end of the grace period")

    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)


__all__ = ["QUEUE", "RECOVERY", "Queue", "Recovery", "mount"]
