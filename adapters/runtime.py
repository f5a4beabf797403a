"""The background half of `align serve`: the scheduler tick and the outbox dispatcher.

APScheduler only wakes the process (an interval job); what is due is decided by the engine from
the injected clock (`bot.jobs.tick`), and claimed in the database, so several processes on one
PostgreSQL database never send a digest twice. APScheduler itself is not trusted to coordinate
processes.

The `Dispatcher` delivers outbox rows (see `bot/outbox.py` for the protocol every replica
follows):

- one task per channel it holds (a lane, claimed in the database): that channel's rows in order,
  each claimed with a fencing check right before its send, at the platform's pace (Slack about
  1 message per second per channel, Teams 7 per second per conversation) — the next slot is
  stored with the lane, so any number of replicas keep the pace together;
- webhook rows each their own task, independent of the channels and of each other;
- a heartbeat renews this worker's leases while anything is being sent, so a slow platform never
  lets another replica take a row that is still on its way;
- exponential backoff with full jitter on failures, the platform's Retry-After on 429 (for the
  whole channel, every replica), a permanent failure recorded (`failed`, `last_error`) and shown
  by `digest status`;
- every send carries the row's stable idempotency key (`Outgoing.idempotency_key`), and a row
  tried before is flagged (`Outgoing.tried_before`) so a sender can look for the earlier attempt
  before repeating it (Slack does).

Platform packages register their senders in `web_app[SENDERS]` from their own `mount`
(`web_app.setdefault(SENDERS, {})["slack"] = SlackSender(...)`); the dispatcher reads that dict
whenever it claims, so the mount order does not matter, and `mount` adds the webhook sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from adapters import process
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

UNLANED = frozenset({"webhook"})
"""Platforms whose rows are delivered each on its own, not in a channel's order."""

CLAIM_EVERY = 1.0
"""Seconds between claims of newly due rows while deliveries are still running."""
MAX_WEBHOOKS_IN_FLIGHT = 50
LEASE = timedelta(seconds=60)
"""How long a claim lasts unless renewed; renewed every third of it while the worker lives, so
it only matters after a crash: another replica takes over that much later."""

BACKOFF_BASE = 2.0
BACKOFF_CAP = 900.0
TICK_SECONDS = 30
DISPATCH_SECONDS = 2


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
        lease: timedelta = LEASE,
        heartbeat: float | None = None,
        batch: int = 50,
        pacing: dict[str, float] | None = None,
        max_attempts: int = outbox.MAX_ATTEMPTS,
        claim_every: float = CLAIM_EVERY,
        max_webhooks: int = MAX_WEBHOOKS_IN_FLIGHT,
    ) -> None:
        self.app = app
        self.senders = senders
        self.worker_id = worker_id or process.worker_id()
        self.rng = rng or random.Random()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.lease = lease
        # Real seconds between renewals (not `sleep`, which tests use to move a fake clock).
        self.heartbeat_every = heartbeat if heartbeat is not None else lease.total_seconds() / 3
        self.heartbeats = 0  # renewals done, for tests
        self.batch = batch
        self.pacing = PACING | (pacing or {})
        self.max_attempts = max_attempts
        self.claim_every = claim_every
        self.max_webhooks = max_webhooks
        # Set at shutdown: the send in flight finishes, nothing new starts, the rest goes back.
        self.stopping = False

    async def run_once(self) -> int:
        """Deliver every due row; return how many were sent (`_run_once`), inside each sender's
        `batch()` when it has one — what a sender may share across the rows of one pass (Slack:
        the installation of each workspace, looked up once)."""
        with contextlib.ExitStack() as batches:
            for sender in list(self.senders.values()):
                batch = getattr(sender, "batch", None)
                if batch is not None:
                    batches.enter_context(batch())
            return await self._run_once()

    async def _run_once(self) -> int:
        """Deliver every due row; return how many were sent.

        Nothing slow holds anyone else (issue 10: one drip-feeding webhook receiver held every
        channel's digests for 57 s): each channel this worker holds is a task of its own, each
        webhook row too, and while anything runs, newly due channels and webhook rows are
        claimed every `claim_every` seconds (or as soon as something finishes) and started.
        Channels held by other replicas are left to them. Returns when nothing is due here and
        nothing is running."""
        tasks: list[asyncio.Task[int]] = []
        webhooks: set[asyncio.Task[int]] = set()
        beat = asyncio.create_task(self._heartbeat())
        try:
            for _ in range(10_000):  # a bound on claim rounds, not an expected count
                if self.stopping:  # shutting down: what runs finishes, nothing new is claimed
                    break
                webhooks = {t for t in webhooks if not t.done()}
                lanes, rows = await asyncio.to_thread(
                    self._claim, self.max_webhooks - len(webhooks)
                )
                for lane in lanes:
                    tasks.append(asyncio.create_task(self._lane(lane)))
                for row in rows:
                    task = asyncio.create_task(self._single(row))
                    tasks.append(task)
                    webhooks.add(task)
                running = [t for t in tasks if not t.done()]
                if not running and not lanes and not rows:
                    break
                if running:
                    await asyncio.wait(
                        running, timeout=self.claim_every, return_when=asyncio.FIRST_COMPLETED
                    )
            await asyncio.gather(*tasks)
        finally:
            for task in (*tasks, beat):
                task.cancel()  # only on an error or cancellation: done tasks ignore it
            await asyncio.gather(*tasks, beat, return_exceptions=True)
        return sum(t.result() for t in tasks if not t.cancelled() and t.exception() is None)

    async def _heartbeat(self) -> None:
        """Renew this worker's leases every `heartbeat_every` seconds while `run_once` runs."""
        while True:
            await asyncio.sleep(self.heartbeat_every)
            try:
                await asyncio.to_thread(self._renew)
                self.heartbeats += 1
            except Exception as exc:  # the next beat tries again; the fence catches a lapse
                log.warning("renewing outbox leases failed: %s", exc)

    # ------------------------------------------------------------ steps, each its own transaction

    def _claim(self, webhook_room: int) -> tuple[list[outbox.Lane], list[outbox.Claimed]]:
        laned = [p for p in sorted(self.senders) if p not in UNLANED]
        single = [p for p in sorted(self.senders) if p in UNLANED] if webhook_room > 0 else []
        if not laned and not single:
            return [], []
        now = self.app.clock.now()
        with self.app.db.uow() as session:
            lanes = outbox.claim_lanes(
                session,
                worker=self.worker_id,
                platforms=laned,
                now=now,
                lease=self.lease,
                limit=self.batch,
            )
            rows = outbox.claim(
                session,
                worker=self.worker_id,
                platforms=single,
                now=now,
                lease=self.lease,
                limit=min(self.batch, webhook_room),
            )
        return lanes, rows

    def _renew(self) -> int:
        with self.app.db.uow() as session:
            return outbox.heartbeat(
                session, worker=self.worker_id, now=self.app.clock.now(), lease=self.lease
            )

    def _next_in_lane(self, lane: outbox.Lane) -> outbox.Turn:
        with self.app.db.uow() as session:
            return outbox.next_in_lane(
                session, lane, worker=self.worker_id, now=self.app.clock.now(), lease=self.lease
            )

    def _has_due(self, lane: outbox.Lane) -> bool:
        with self.app.db.uow() as session:
            return outbox.has_due(session, lane, now=self.app.clock.now())

    def _release_lane(self, lane: outbox.Lane) -> None:
        with self.app.db.uow() as session:
            outbox.release_lane(session, lane, worker=self.worker_id)

    def _mark_sent(
        self,
        row: outbox.Claimed,
        lane: outbox.Lane | None = None,
        next_slot_at: datetime | None = None,
    ) -> bool:
        with self.app.db.uow() as session:
            ok = outbox.mark_sent(
                session,
                row.id,
                worker=self.worker_id,
                now=self.app.clock.now(),
                lane=lane,
                next_slot_at=next_slot_at,
            )
        if not ok:
            log.warning("outbox %s sent but its lease was lost; another worker owns it", row.id)
        return ok

    def _reschedule(
        self, row: outbox.Claimed, delay: float | None, error: str, permanent: bool
    ) -> str:
        now = self.app.clock.now()
        with self.app.db.uow() as session:
            return outbox.reschedule(
                session,
                row.id,
                worker=self.worker_id,
                at=None if delay is None else now + timedelta(seconds=delay),
                error=error,
                permanent=permanent,
                max_attempts=self.max_attempts,
            )

    def _rate_limited(
        self, lane: outbox.Lane, row: outbox.Claimed, error: str, not_before: datetime
    ) -> str:
        """One transaction: the row keeps its place (its attempt counted), the channel waits
        until `not_before` for every worker, and this one lets go of it."""
        with self.app.db.uow() as session:
            status = outbox.reschedule(
                session,
                row.id,
                worker=self.worker_id,
                at=None,
                error=error,
                max_attempts=self.max_attempts,
            )
            outbox.hold_back(session, lane, worker=self.worker_id, not_before=not_before)
            outbox.release_lane(session, lane, worker=self.worker_id)
        return status

    def release_leases(self) -> int:
        """Give back every row and lane this worker still holds (at shutdown, after in-flight
        work was cut short), so another process sends them now rather than when the lease runs
        out."""
        with self.app.db.uow() as session:
            return outbox.release_worker(session, worker=self.worker_id)

    # ------------------------------------------------------------ one channel, in order

    async def _lane(self, lane: outbox.Lane) -> int:
        """Send the channel's due rows one by one, each claimed right before its send, paced by
        the lane's stored next slot; let go of the lane when it is empty or at shutdown, and
        stop at once if another worker took it over."""
        sender = self.senders[lane.platform]
        interval = timedelta(seconds=self.pacing.get(lane.platform, 0.0))
        slot = lane.next_slot_at
        sent = 0
        while True:
            if self.stopping:  # untried rows stay unclaimed: due at once for the next process
                await asyncio.to_thread(self._release_lane, lane)
                return sent
            wait = (slot - self.app.clock.now()).total_seconds() if slot is not None else 0.0
            if wait > 0:
                if not await asyncio.to_thread(self._has_due, lane):
                    break
                await self.sleep(wait)
                if self.stopping:
                    continue
            turn = await asyncio.to_thread(self._next_in_lane, lane)
            if not turn.held:
                log.warning("lost channel %s/%s to another worker", lane.workspace, lane.channel)
                return sent
            if turn.row is None:
                break
            row = turn.row
            message = self._outgoing(row)
            try:
                await sender.send(message)
            except DeliveryError as exc:
                if exc.retry_after is not None:
                    # The platform asked this whole channel to wait: every worker waits.
                    not_before = self.app.clock.now() + timedelta(seconds=exc.retry_after)
                    await asyncio.to_thread(self._rate_limited, lane, row, str(exc), not_before)
                    return sent
                status = await asyncio.to_thread(
                    self._reschedule,
                    row,
                    self._delay(row.attempts, None),
                    str(exc),
                    exc.permanent,
                )
                log.warning("outbox %s to %s: %s (%s)", row.id, lane.channel, exc, status)
                slot = self.app.clock.now() + interval
                continue
            except Exception as exc:  # a bug in a sender: retried like a transient failure
                log.exception("outbox %s: sender %s crashed", row.id, lane.platform)
                await asyncio.to_thread(
                    self._reschedule,
                    row,
                    self._delay(row.attempts, None),
                    f"{type(exc).__name__}: {exc}",
                    False,
                )
                slot = self.app.clock.now() + interval
                continue
            # Measured after the platform answered, so it has the message before the slot opens.
            # A message for one person (`direct_to`: their DM, a personal chat) went to a
            # conversation of its own, not to the channel: it spends none of the channel's pace.
            # Spent, what a channel's lane holds for its people (a poll's private reminders, the
            # receipts a dead worker owed, forwarded there) went out one a second: 60 receipts
            # took a minute (tests/server/test_kill_hand_off.py).
            if not message.reply.direct_to:
                slot = self.app.clock.now() + interval
            if await asyncio.to_thread(self._mark_sent, row, lane, slot):
                sent += 1
        await asyncio.to_thread(self._release_lane, lane)
        return sent

    async def _single(self, row: outbox.Claimed) -> int:
        """One webhook delivery, on its own."""
        try:
            await self.senders[row.platform].send(self._outgoing(row))
        except DeliveryError as exc:
            status = await asyncio.to_thread(
                self._reschedule,
                row,
                self._delay(row.attempts, exc.retry_after),
                str(exc),
                exc.permanent,
            )
            log.warning("outbox %s (%s): %s (%s)", row.id, row.platform, exc, status)
            return 0
        except Exception as exc:
            log.exception("outbox %s: sender %s crashed", row.id, row.platform)
            await asyncio.to_thread(
                self._reschedule,
                row,
                self._delay(row.attempts, None),
                f"{type(exc).__name__}: {exc}",
                False,
            )
            return 0
        return 1 if await asyncio.to_thread(self._mark_sent, row) else 0

    @staticmethod
    def _outgoing(row: outbox.Claimed) -> Outgoing:
        return Outgoing(
            workspace=row.workspace,
            channel=row.channel,
            platform=row.platform,
            reply=reply_from_payload(row.payload),
            idempotency_key=row.key,
            tried_before=row.tried_before,
            queued_at=row.created_at,
        )

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
        dispatcher.setdefault("lease", timedelta(seconds=app.settings.outbox_lease))
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
            try:  # live messages a dead worker left behind; a nicety, never in the way
                await self.app.postings.catch_up()
            except Exception:
                log.exception("catching up on live messages failed")
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
