"""The background half of `align serve`: the scheduler tick and the outbox dispatcher.

APScheduler only wakes the process (an interval job); what is due is decided by the engine from
the injected clock (`bot.jobs.tick`), and claimed in the database, so several processes on one
PostgreSQL database never send a digest twice. APScheduler itself is not trusted to coordinate
processes.

The `Dispatcher` delivers outbox rows (see `bot/outbox.py` for the claim → send → mark protocol):

- per-channel pacing (Slack about 1 message per second per channel, Teams 7 per second per
  conversation), kept in the dispatcher;
- exponential backoff with full jitter on failures, the platform's Retry-After on 429, a
  permanent failure recorded (`failed`, `last_error`) and shown by `digest status`;
- every send carries the row's stable idempotency key (`Outgoing.idempotency_key`). Delivery is at
  least once with that key: a process killed after a send and before its mark resends the row once
  after the lease expires, with the same key.

Platform packages register their senders in `web_app[SENDERS]` from their own `mount`
(`web_app.setdefault(SENDERS, {})["slack"] = SlackSender(...)`); the dispatcher reads that dict
whenever it claims, so the mount order does not matter, and `mount` adds the webhook sender.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing, Sender
from adapters.web_keys import SENDERS, SHUTDOWN
from bot import jobs, outbox
from bot.clock import FakeClock
from bot.views import reply_from_payload

log = logging.getLogger("align.runtime")

Sleep = Callable[[float], Awaitable[None]]

PACING: dict[str, float] = {"slack": 1.0, "teams": 1 / 7, "webhook": 0.0, "console": 0.0}
"""Seconds between two messages to one channel of a platform (its documented rate limit)."""

CLAIM_EVERY = 1.0
"""Seconds between claims of newly due rows while deliveries are still running."""
MAX_WEBHOOKS_IN_FLIGHT = 50

BACKOFF_BASE = 2.0
BACKOFF_CAP = 900.0
TICK_SECONDS = 30
DISPATCH_SECONDS = 2


def default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """Delivers due outbox rows through the senders, one platform each."""

    def __init__(
        self,
        app: App,
        senders: dict[str, Sender],
        *,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
        pacing: dict[str, float] | None = None,
        max_attempts: int = outbox.MAX_ATTEMPTS,
        claim_every: float = CLAIM_EVERY,
        max_webhooks: int = MAX_WEBHOOKS_IN_FLIGHT,
    ) -> None:
        self.app = app
        self.senders = senders
        self.worker_id = worker_id or default_worker_id()
        self.rng = rng or random.Random()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.lease = lease
        self.batch = batch
        self.pacing = PACING | (pacing or {})
        self.max_attempts = max_attempts
        self.claim_every = claim_every
        self.max_webhooks = max_webhooks
        # (platform, channel) -> the earliest moment the next message may go there.
        self._next_slot: dict[tuple[str, str], Any] = {}
        # Set at shutdown: the send in flight finishes, nothing new starts, the rest goes back.
        self.stopping = False

    async def run_once(self) -> int:
        """Deliver every due row (claim → send → mark); return how many were sent.

        Nothing slow holds anyone else (issue 10: one drip-feeding webhook receiver held every
        channel's digests for 57 s, because each claim round waited for all of its deliveries):

        - Slack, Teams and console rows go to one lane per (platform, channel): a task that
          sends that channel's rows in order, paced. Lanes run side by side.
        - Webhook rows are each their own task: receivers are independent of each other and of
          the channels (each delivery is bounded by the sender's deadline; their order is not
          promised — every body carries its `at`).
        - While anything is still running, newly due rows are claimed every `claim_every`
          seconds (or as soon as something finishes) and started — for webhooks at once (up
          to `max_webhooks` in flight), for the other platforms once none of that platform's
          lanes is busy, so a channel's rows are never claimed twice over or sent out of order.

        Returns when nothing is due and nothing is running."""
        tasks: list[asyncio.Task[int]] = []
        busy: dict[str, set[asyncio.Task[int]]] = {}  # platform -> its running tasks
        try:
            for _ in range(10_000):  # a bound on claim rounds, not an expected count
                if self.stopping:  # shutting down: what runs finishes, nothing new is claimed
                    break
                running = [t for t in tasks if not t.done()]
                for tasks_of_platform in busy.values():
                    tasks_of_platform.intersection_update(running)
                claimed = await asyncio.to_thread(self._claim, self._claimable(busy))
                for key, rows in self._lanes(claimed).items():
                    task = asyncio.create_task(self._deliver(key, rows))
                    tasks.append(task)
                    busy.setdefault(key[0], set()).add(task)
                running = [t for t in tasks if not t.done()]
                if not running and not claimed:
                    break
                if running:
                    await asyncio.wait(
                        running, timeout=self.claim_every, return_when=asyncio.FIRST_COMPLETED
                    )
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()  # only on an error or cancellation: done tasks ignore it
            await asyncio.gather(*tasks, return_exceptions=True)
        return sum(t.result() for t in tasks if not t.cancelled() and t.exception() is None)

    def _claimable(self, busy: dict[str, set[asyncio.Task[int]]]) -> list[str]:
        """Platforms to claim rows of now: those with no lane still running; webhooks while
        fewer than `max_webhooks` deliveries are in flight."""
        out = []
        for platform in sorted(self.senders):
            running = len(busy.get(platform, ()))
            limit = self.max_webhooks if platform == "webhook" else 1
            if running < limit:
                out.append(platform)
        return out

    @staticmethod
    def _lanes(claimed: list[outbox.Claimed]) -> dict[tuple[str, str], list[outbox.Claimed]]:
        """(platform, channel) → that channel's rows in claim order; one lane per webhook row."""
        lanes: dict[tuple[str, str], list[outbox.Claimed]] = {}
        for row in claimed:
            key = (
                row.platform,
                f"{row.channel}#{row.id}" if row.platform == "webhook" else row.channel,
            )
            lanes.setdefault(key, []).append(row)
        return lanes

    # ------------------------------------------------------------ steps, each its own transaction

    def _claim(self, platforms: list[str]) -> list[outbox.Claimed]:
        if not platforms:
            return []
        with self.app.db.uow() as session:
            return outbox.claim(
                session,
                worker=self.worker_id,
                platforms=platforms,
                now=self.app.clock.now(),
                lease=self.lease,
                limit=self.batch,
            )

    def _mark_sent(self, row: outbox.Claimed) -> bool:
        with self.app.db.uow() as session:
            ok = outbox.mark_sent(session, row.id, worker=self.worker_id, now=self.app.clock.now())
        if not ok:
            log.warning("outbox %s sent but its lease was lost; another worker owns it", row.id)
        return ok

    def _reschedule(self, row: outbox.Claimed, delay: float, error: str, permanent: bool) -> str:
        with self.app.db.uow() as session:
            return outbox.reschedule(
                session,
                row.id,
                worker=self.worker_id,
                at=self.app.clock.now() + timedelta(seconds=delay),
                error=error,
                permanent=permanent,
                max_attempts=self.max_attempts,
            )

    def _release(self, rows: list[outbox.Claimed], not_before: Any) -> None:
        with self.app.db.uow() as session:
            outbox.release(
                session, [r.id for r in rows], worker=self.worker_id, not_before=not_before
            )

    def release_leases(self) -> int:
        """Give back every row this worker still holds (at shutdown, after in-flight work was
        cut short), so another process sends it now rather than when the lease runs out."""
        with self.app.db.uow() as session:
            return outbox.release_worker(session, worker=self.worker_id)

    # ------------------------------------------------------------ one channel, in order

    async def _deliver(self, key: tuple[str, str], rows: list[outbox.Claimed]) -> int:
        sender = self.senders[key[0]]
        interval = self.pacing.get(key[0], 0.0)
        sent = 0
        for index, row in enumerate(rows):
            if self.stopping:  # untried: no attempt counted, due at once for the next process
                await asyncio.to_thread(self._release, rows[index:], self.app.clock.now())
                return sent
            await self._pace(key)
            message = Outgoing(
                workspace=row.workspace,
                channel=row.channel,
                platform=row.platform,
                reply=reply_from_payload(row.payload),
                idempotency_key=row.key,
            )
            try:
                await sender.send(message)
            except DeliveryError as exc:
                delay = self._delay(row.attempts, exc.retry_after)
                if exc.retry_after is not None:
                    # The platform asked this whole channel to wait; the rest of the batch too.
                    not_before = self.app.clock.now() + timedelta(seconds=exc.retry_after)
                    self._next_slot[key] = not_before
                    await asyncio.to_thread(self._reschedule, row, delay, str(exc), False)
                    await asyncio.to_thread(self._release, rows[index + 1 :], not_before)
                    return sent
                status = await asyncio.to_thread(
                    self._reschedule, row, delay, str(exc), exc.permanent
                )
                log.warning("outbox %s to %s: %s (%s)", row.id, key, exc, status)
                continue
            except Exception as exc:  # a bug in a sender: retried like a transient failure
                log.exception("outbox %s: sender %s crashed", row.id, key[0])
                delay = self._delay(row.attempts, None)
                await asyncio.to_thread(
                    self._reschedule, row, delay, f"{type(exc).__name__}: {exc}", False
                )
                continue
            self._next_slot[key] = self.app.clock.now() + timedelta(seconds=interval)
            if await asyncio.to_thread(self._mark_sent, row):
                sent += 1
        return sent

    async def _pace(self, key: tuple[str, str]) -> None:
        slot = self._next_slot.get(key)
        if slot is None:
            return
        wait = (slot - self.app.clock.now()).total_seconds()
        if wait > 0:
            await self.sleep(wait)

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        """Retry-After when the platform gave one; else exponential backoff with full jitter."""
        if retry_after is not None:
            return max(0.0, float(retry_after))
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
        return max(1.0, self.rng.uniform(0, ceiling))


class Runtime:
    """The scheduler tick plus the dispatcher, woken by APScheduler inside an asyncio loop."""

    def __init__(self, app: App, senders: dict[str, Sender], **dispatcher: Any) -> None:
        self.app = app
        self.dispatcher = Dispatcher(app, senders, **dispatcher)
        self._scheduler: Any = None
        self._catch_up: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()  # wake-ups in progress, for shutdown
        self._ticking = asyncio.Lock()
        self._dispatching = asyncio.Lock()

    async def tick(self) -> jobs.TickReport:
        """Decide what is due now (digests, auto-close, reminders, nudges) and queue it."""
        async with self._ticking:
            deps = self.app.engine.deps
            return await asyncio.to_thread(jobs.tick, deps, self.app.clock.now())

    async def dispatch(self) -> int:
        async with self._dispatching:
            return await self.dispatcher.run_once()

    async def tick_and_dispatch(self) -> int:
        await self.tick()
        return await self.dispatch()

    async def _safe(self, job: Callable[[], Awaitable[Any]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await job()
        except Exception:
            log.exception("background job failed; it runs again at the next wake-up")
        finally:
            if task is not None:
                self._running.discard(task)

    def start(
        self, *, tick_seconds: int = TICK_SECONDS, dispatch_seconds: int = DISPATCH_SECONDS
    ) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(timezone="UTC")
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        scheduler.add_job(self._safe, "interval", args=[self.tick], seconds=tick_seconds, **common)
        scheduler.add_job(
            self._safe, "interval", args=[self.dispatch], seconds=dispatch_seconds, **common
        )
        scheduler.start()
        self._scheduler = scheduler
        # Catch up at once on start: a run missed while the process was down goes out now.
        self._catch_up = asyncio.get_running_loop().create_task(self._safe(self.tick_and_dispatch))

    async def aclose(self, grace: float | None = None) -> None:
        """Stop waking up; let the tick or send in flight finish within `grace` seconds (None:
        however long it takes), cancel it after that, and give back every outbox lease this
        process still holds — a row is then sent by the next process at once, not after its
        lease runs out, and never lost."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self.dispatcher.stopping = True
        busy = {t for t in self._running if not t.done()}
        if self._catch_up is not None:
            busy.add(self._catch_up)
            self._catch_up = None
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning(
                    "delivery still running after the %.0f s grace period: cut short", grace
                )
        released = await asyncio.to_thread(self.dispatcher.release_leases)
        if released:
            log.info("released %d outbox lease(s) for the next process", released)


RUNTIME_KEY = web.AppKey("align_runtime", Runtime)


def mount(web_app: web.Application, app: App) -> None:
    """Start the scheduler and the dispatcher with the server, stop them with it.

    The runtime is kept at `web_app[RUNTIME_KEY]`. With an injected FakeClock (tests) nothing
    wakes by itself — real-time intervals mean nothing to a fake clock, and a background
    dispatcher would race the test's own — so tests drive `await runtime.tick_and_dispatch()`.
    """
    # Created now, before the app is frozen; platform mounts add their senders to this same
    # dict in any order, and the dispatcher reads it when it claims.
    senders: dict[str, Sender] = web_app.setdefault(SENDERS, {})
    runtime = Runtime(app, senders)
    web_app[RUNTIME_KEY] = runtime

    async def on_startup(web_app: web.Application) -> None:
        from adapters.webhook_sender import WebhookSender

        if "webhook" not in senders:
            deps = app.engine.deps
            senders["webhook"] = WebhookSender(deps.secret, targets=deps.webhook_targets)
        if not isinstance(app.clock, FakeClock):
            runtime.start()
            log.info("scheduler and dispatcher started for %s", ", ".join(sorted(senders)))

    stopping: list[asyncio.Task[None]] = []

    def grace() -> float | None:
        return web_app[SHUTDOWN].remaining() if SHUTDOWN in web_app else None

    async def on_shutdown(web_app: web.Application) -> None:
        # Stop delivering while in-flight HTTP requests drain: both share the one grace period.
        stopping.append(asyncio.ensure_future(runtime.aclose(grace())))

    async def on_cleanup(web_app: web.Application) -> None:
        # Before any platform closes the clients its sender uses (`align serve` mounts the
        # runtime first, so this cleanup runs first).
        await (stopping[0] if stopping else runtime.aclose(grace()))
        for sender in senders.values():
            close = getattr(sender, "aclose", None)
            if close is not None:
                await close()

    web_app.on_startup.append(on_startup)
    web_app.on_shutdown.append(on_shutdown)
    web_app.on_cleanup.append(on_cleanup)


__all__ = ["PACING", "RUNTIME_KEY", "Dispatcher", "Runtime", "mount"]
