"""Record, then acknowledge: every request a platform sends is a database row before its 200.

Slack and Teams hand us a command, a click, a form or an event and want an acknowledgement —
Slack within three seconds. Acknowledging first and working in memory lost acknowledged votes
whenever the process died (22 of 473 in a kill -9 test), and nothing stopped a replayed signed
request from running twice. So each adapter, for each request:

1. `record` — one INSERT, keyed by the platform's own id of the request, before the 200. A key
   seen before is a retry or a replay: it is answered and not run again. If the database cannot
   take the row within ALIGN_INBOX_ACK_BUDGET seconds the platform gets no 200 (Slack retries
   events) — nothing acknowledged is ever lost. The row is claimed by this process for
   ALIGN_INBOX_CLAIM_TIMEOUT seconds.
2. `once` — the engine runs through this: the command's effects and the row's `answered` mark
   (with the reply) commit in one transaction (`Database.joined`), after checking that the row
   is still ours. The mark is among the transaction's last statements (`at_commit`), with the
   other calls' of a group: one round trip for a group's marks. A crash before that commit
   leaves nothing done, and the row is run again; a crash after it never runs the engine
   again, only the reply is still owed.
   On SQLite, where every transaction of the process queues for one write lock anyway, the
   engine calls that queue up in a burst run together (`once_together`): one transaction, each
   call with its own `answered` mark in a savepoint of its own — a refusal or an error in one
   rolls back only that one, and a crash before the commit leaves all of them unrun, each row
   then run again on its own. A thousand clicks in five seconds took a commit (and a turn on the
   lock, and a thread hop) each; together, bench_slack's burst was counted 4.4-5.0 s after the
   last ack instead of 6.2-8.3 s, at 9.3-9.9 ms of server CPU a click instead of 11.1-12.8.
   On PostgreSQL a worker taking handed-off requests runs its calls so too (`runs_together`),
   in RUN_SIDE_BY_SIDE groups at once: a transaction a vote there kept a dozen of its
   backends busy on the poll's rows, at a priority ALIGN_WORKER_NICE does not lower, and the
   web process's acks waited for the CPU they took.
3. `run` finishes the row once the work after the ack is over; if showing the reply failed, the
   reply is handed to the outbox instead (`forward`), which retries it. The done marks that
   wait for the writer together (a burst's) are one UPDATE: an UPDATE each was a round trip,
   and a statement's interpreter work, per click on a worker already short of both.

A command the engine says only reads (`Engine.only_reads`: the grammar marks its verb) is not
recorded: it stores nothing, so a replay running it again does no harm, and a crash losing it
loses no data — the person types it again. The adapter `admit`s it instead (a `Pass`, no
database write), runs it like any other (Slack answers it in its ack), and the pass ends with
its work (`run`). That spares a read the three writes a recorded request costs (record, answer,
done mark) and the sealing.

A process holds at most ALIGN_MAX_BACKLOG requests recorded and unfinished (its own and those it
took over) or admitted and running. Past that `record` (and `admit`) raises `Busy` before writing
anything: the adapter answers the person at once and privately with BUSY — never an ack for work
that would only queue — and nothing is stored, so nothing runs later either.

A read a worker runs from a queued row (web processes of earlier versions queued reads; now a
web process admits and answers them itself, as one process does) runs as an admitted one does,
outside `once`: no fence, no `answered` mark, no reply stored, no savepoints — its row is only
finished once its reply is out (`run`); when showing it fails, the row is left for recovery to
run the read again (`forward`). Run again after a crash it does no harm, as above; its reply can
then come twice, as a write's stored reply can when its process dies between showing it and the
done mark. In bench_slack's split read phase the row's transaction (its lock, its two
savepoints, the sealed answer, the group's commit) cost the worker more than the read itself.

A web process can hand its requests off instead of running them (`align serve --role web` with
ALIGN_HAND_OFF): it records them queued — claimed by nobody, `record(hand_off=True)`, the same
one write — and acks, and a worker process takes each within a few tens of milliseconds
(`take_waiting`, adapters/recovery.py) and runs it through the platform's replayer, as it would
a dead process's row. The web process then spends no CPU, and holds no GIL, on the engine,
the rendering or the reply of anything that writes: under a load it cannot keep up with, its
acks stay fast, and the bound is on the shared queue (the rows waiting for a worker, counted
in the database every QUEUE_COUNTED_EVERY) and the reads it is answering.
A request whose ack must carry the engine's answer (a form's errors) still runs where it came
in, and so does a read, answered in its ack: queued, it cost three times the CPU across the two
processes (bench_slack) and its reply came a queue's wait later.

`recover` (at start and every few seconds in the worker/all role, adapters/recovery.py) takes
over rows whose claim ran out — their process died: a `received` row is run again through its
platform's replayer (Slack feeds the stored request through Bolt, Teams through a continued
conversation); an `answered` one only needs its reply sent, through the outbox, to where the
adapter said it belongs (`Destination`). A row every process that took it died with is given up
after MAX_ATTEMPTS, and its sender told so through the outbox where the platform can say who
that is (`add_replayer`'s asker: Slack, privately in their DM with the app; Teams, in the
conversation the message came from, as its errors are shown — in a channel or group chat
addressed to them by a mention). Finished rows are pruned after ALIGN_INBOX_RETENTION_HOURS.

The stored request and reply are sealed under a key derived from ALIGN_SECRET: a click in an
anonymous poll names the voter and the choice, and a reader of the database files must not be
able to pair them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from sqlalchemy.exc import SQLAlchemyError

from adapters import priority, process
from bot import outbox
from bot.clock import Clock
from bot.views import Reply, mention, reply_from_payload, reply_to_payload
from storage import inbox as store
from storage.db import (
    Database,
    UnitOfWork,
    attempted,
    conflicted,
    in_savepoint,
    transient,
)
from storage.group_commit import GroupCommit
from storage.sealing import Seal

log = logging.getLogger("align.inbox")
T = TypeVar("T")

KEY = "align_inbox_entry"
"""Where an adapter keeps the request's `Entry` for its handlers (Bolt context, turn state)."""

MAX_ATTEMPTS = 8
RECOVER_BATCH = 50
RECOVER_IN_PARALLEL = 8
RUN_TOGETHER = 50
"""At most this many engine calls share a transaction (`once_together`): enough for a burst's
commits to stop mattering, few enough that the first in a group is not kept long from its
reply."""
RUN_TOGETHER_SECONDS = 0.005
"""…and on SQLite for at most about this long: the transaction holds SQLite's write lock, which
the records of the acks still to come wait for (a group of fifty votes held them past the ack
budget). At 20 ms, a process past what it can work acked 0.58-0.88x as fast as a bare Bolt app
(bench_slack saturation, 8 runs), its acks waiting out groups; at 5 ms, 0.87-1.13x (4 runs,
interleaved with 4 of 20 ms) — and worked 371 commands a second against 403-409, the CPU that
answers the surplus "busy" sooner taken from the work; a 1,000-click burst unchanged (every
vote counted 0.02-0.03 s after the last ack). Acks first is the point of the bound.
Not on PostgreSQL, where a group holds no lock an ack needs: there a worker's first call alone
outlasted it (a dozen round trips, each waiting its turn on the busy worker's interpreter
lock), and cut short after it, a burst's groups ran 1.1 calls each — a transaction a vote."""
RUN_SIDE_BY_SIDE = 4
"""Groups of calls a PostgreSQL worker runs at once, each in its thread and transaction
(`runs_together`): a group runs its calls one after another, each a few round trips, and one
group at a time fell behind a 1,000-click burst (counted 5-11 s after the last ack instead of
2-3); side by side they wait on each other only for the rows they share (a poll's tally, last)."""


BUSY = "Align is busy; nothing was recorded; try again in a minute."
"""What a person is told, privately and at once, when the backlog is full (`Busy`)."""

GAVE_UP = (
    "Align could not finish your request: it failed {attempts} times on our side, and was "
    "given up. Nothing of it was done. Please try again; if it fails again, tell your admin."
)
"""What a person is told, through the outbox, when their request is given up (MAX_ATTEMPTS):
with ALIGN_HAND_OFF their ack was empty, and nothing else would say so."""

GAVE_UP_IN_COMMON = "{person}, " + GAVE_UP
"""…where others read it too (a Teams channel), addressed to its sender: "your request" alone,
a new post in the channel, would leave everyone wondering whose it was."""


REFUSALS_LOGGED_EVERY = timedelta(seconds=10)
QUEUE_COUNTED_EVERY = 0.25
"""Seconds between counts of the shared queue in a web process that hands off (`backlog`);
between two counts, its own hand-offs are added to the last one."""
QUEUE_COUNT_TRUSTED = 1.0
"""Seconds a count of the shared queue is refused on. A web process counts only when requests
come, so after a quiet spell its last count is as old as the spell: the queue a burst filled
has long been run, and refusing on it answered the first requests after the burst "busy" with
the queue empty (bench_slack, 4 reads in flight after a saturated phase drained: 20 refused).
A request that finds only an older count is let through and the queue counted again; those
that come while that count runs are let through too (a few milliseconds of them)."""


class Busy(Exception):
    """This process already holds ALIGN_MAX_BACKLOG unfinished requests: nothing was recorded;
    answer the person with BUSY (and acknowledge, or not, as the platform needs)."""


class NotRecorded(Exception):
    """The database did not take the request in time, or failed: do not acknowledge it."""


class Lost(Exception):
    """The row is no longer this process's (finished, or taken over once its claim ran out):
    nothing more may happen for it here."""


@dataclass(eq=False)
class Entry:
    """A recorded request this process holds, as the platform sent it."""

    id: int
    platform: str
    payload: dict[str, Any]
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    """The work the adapter started from it (replays wait for it)."""


@dataclass(frozen=True)
class Destination:
    """Where a reply goes through the outbox when it could not be shown directly (the process
    died, the platform failed): the adapter decides, from the reply's typed flags, as it does
    when it shows a reply itself."""

    workspace: str
    channel: str
    """The conversation it goes to; for a reply, the one it was asked in — its effects (a
    vote's live message) belong there even when the reply itself goes `direct_to` the asker."""
    platform: str
    person: str | None = None
    """Whom a notice sent there concerns, when others read that conversation too (a Teams
    channel or group chat): the notice names them and calls on them (`Reply.notify`). None
    where only they read it (a DM, a personal chat) or for a reply, which is shown where it
    was asked for."""
    direct_to: str | None = None
    """The person a reply for the asker only goes to, privately (`Reply.direct_to`: their DM
    with the app), rather than to `channel`."""

    def enqueue(self, session: UnitOfWork, reply: Reply, *, key: str, now: datetime) -> None:
        """`reply` to the outbox, for here, in the caller's transaction (once per `key`). A reply
        the engine itself sent somebody privately keeps that address."""
        outbox.enqueue(
            session,
            workspace=self.workspace,
            channel=self.channel,
            platform=self.platform,
            kind="answer",
            reply=replace(reply, direct_to=self.direct_to or reply.direct_to),
            key=key,
            now=now,
        )


@dataclass(eq=False)
class Pass:
    """A request this process runs without recording it (a read: the module docstring). It
    counts against the backlog until its work is over."""

    platform: str
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    """The work the adapter started from it."""
    running: bool = field(default=True, repr=False)
    answer: tuple[Reply, Destination] | None = field(default=None, repr=False)
    """The engine's reply once it answered, and where it goes when it cannot be shown: with no
    row to run it again from, a reply the platform refused after the ack goes to the outbox
    (`Inbox.run`), as a recorded request's stored reply does."""


Where = Callable[[Reply], Destination | None]
Replayer = Callable[[Entry], Awaitable[None]]
Asker = Callable[[UnitOfWork, dict[str, Any]], Destination | None]
"""Where the person who sent a stored request is told (a platform's own reading of its
payload), and who they are when that place is shared (`Destination.person`), or None when it
names nobody. It runs in the transaction that gives the row up, and may write there what its
outbox sender needs to reach that place and name them (Teams: a conversation reference, the
sender's name, which no turn stored yet)."""


class Inbox:
    """The inbox of one process: records, runs once, finishes, recovers (module docstring)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        secret: bytes,
        ack_budget: float,
        claim_timeout: timedelta,
        retention: timedelta,
        max_backlog: int = 2000,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.seal = Seal.keyed_by_hmac(secret, b"align inbox v1")
        self.ack_budget = ack_budget
        self.claim_timeout = claim_timeout
        self.retention = retention
        self.max_backlog = max_backlog
        self._recording = 0  # inserts in flight: they count against the backlog already
        self._passes = 0  # reads admitted without a row, still running
        self._refusals = 0  # refused since the last log line
        self._refusals_logged_at: datetime | None = None
        self.worker_id = worker_id or process.worker_id()
        # Records and done marks, grouped into shared transactions when they queue up (a burst);
        # the done marks waiting, into one statement too (`_marked_done`).
        self._writes = GroupCommit(db, name="align-inbox")
        self._done_lock = threading.Lock()
        self._done_waiting: list[int] = []
        self._done_marks: asyncio.Future[set[int]] | None = None
        # Engine calls, likewise, each in its own savepoint (`once_together`): on SQLite, where
        # every write waits for the one lock anyway; on PostgreSQL only in a process that takes
        # handed-off requests (`runs_together`) — elsewhere commands run side by side there.
        self._run_groups = [self._run_group()] if db.dialect == "sqlite" else []
        self._turn = 0  # the group the next call goes to, in turn
        self._replayers: dict[str, Replayer] = {}
        self._askers: dict[str, Asker] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Rows this process is working now: its own recovery never takes them over, even when
        # the work outlasts the claim (another process still may; the fence keeps it once).
        self._working: set[int] = set()
        self.hands_off = False
        """Set by a web process that hands its requests to the workers (the module docstring)."""
        self._waiting = 0  # the shared queue at its last count, plus hand-offs since
        self._counted_at = -QUEUE_COUNTED_EVERY  # when the last count started
        self._counting = False
        self._count_landed_at = -QUEUE_COUNT_TRUSTED  # when the last count came back
        self._recounting = False  # a count under way because the last one was too old

    def _run_group(self, n: int = 0) -> GroupCommit:
        return GroupCommit(
            self.db,
            name=f"align-inbox-runs-{n}" if n else "align-inbox-runs",
            urgent=False,
            savepoints=True,
            max_group=RUN_TOGETHER,
            # SQLite's write lock, which the acks' records wait for, is why a group is cut
            # short; a PostgreSQL group holds no lock an ack needs.
            max_seconds=RUN_TOGETHER_SECONDS if self.db.dialect == "sqlite" else None,
            again_alone=transient,  # safe to run again: `_once_in` fences the row, answered once
            thread_setup=priority.lower_this_thread,  # the engine's work: acks go first
        )

    def runs_together(self) -> None:
        """Run this process's engine calls together on PostgreSQL too (`once_together`): a
        worker taking handed-off requests (ALIGN_HAND_OFF) gets a burst's clicks in batches,
        and one transaction a vote — its commit, its turn on the poll's row, its round trips —
        made the worker's PostgreSQL backends, which no ALIGN_WORKER_NICE slows, take the CPU
        the web process's acks wait for. A call that meets a deadlock or a serialization
        failure there (other transactions still run beside the group) runs again alone once the
        group has committed (`GroupCommit`'s `again_alone`), and so does every call of a group
        whose connection was lost before its COMMIT (`storage.db.transient`): told to the
        person, "Something went wrong", and the row finished, such a vote was lost, never run
        again (tests/inbox/test_hand_off.py). Run again, a call whose lost COMMIT did happen
        finds its row answered and gives its stored reply. RUN_SIDE_BY_SIDE groups there."""
        if not self._run_groups:
            self._run_groups = [self._run_group(n) for n in range(RUN_SIDE_BY_SIDE)]

    def _refused(self, platform: str) -> None:
        """Log refusals at most once per REFUSALS_LOGGED_EVERY, with how many were refused since
        the last line: a saturated process refuses hundreds a second, and a line for each would
        bury every other log line and cost the CPU it is short of."""
        self._refusals += 1
        now = self.clock.now()
        if self._refusals_logged_at is not None and now < (
            self._refusals_logged_at + REFUSALS_LOGGED_EVERY
        ):
            return
        log.warning(
            "%d request(s) refused (last: %s): %d requests unfinished here (ALIGN_MAX_BACKLOG)",
            self._refusals,
            platform,
            self.backlog,
        )
        self._refusals = 0
        self._refusals_logged_at = now

    def add_replayer(self, platform: str, replay: Replayer, asker: Asker | None = None) -> None:
        """How this process runs a stored request of `platform` again (its adapter's way in),
        and where it tells the person who sent one that was given up."""
        self._replayers[platform] = replay
        if asker is not None:
            self._askers[platform] = asker

    # ---------------------------------------------------------------- 1. record, before the ack

    async def record(
        self, platform: str, key: str, payload: dict[str, Any], *, hand_off: bool = False
    ) -> Entry | None:
        """Record a request; its Entry, or None when `key` was recorded before (answer it, do
        not run it). Raises NotRecorded when the database does not take it within the budget —
        the insert may still land later, and the request is then run from its row — and Busy,
        writing nothing, when the backlog is full. With `hand_off` the row is queued for the
        worker processes instead of claimed by this one (the module docstring)."""
        if self._full():
            if self.hands_off:  # the workers may have caught up since the last count
                self._count_waiting_soon()
            self._refused(platform)
            raise Busy(platform)
        now = self.clock.now()
        write = partial(
            store.record,
            platform=platform,
            key=key,
            payload=self.seal.close(payload),
            worker=None if hand_off else self.worker_id,
            now=now,
            until=None if hand_off else now + self.claim_timeout,
        )
        inserting = asyncio.wrap_future(self._writes.submit(write))
        self._recording += 1
        try:
            entry_id = await asyncio.wait_for(asyncio.shield(inserting), self.ack_budget)
        except TimeoutError:
            if not hand_off:  # a queued row is a worker's to run, however late it landed
                inserting.add_done_callback(lambda done: self._landed_late(done, platform, payload))
            log.warning(
                "%s request not recorded within %.1f s (database busy): not acknowledged",
                platform,
                self.ack_budget,
            )
            raise NotRecorded(platform) from None
        except SQLAlchemyError as exc:
            log.warning("%s request not recorded (%s): not acknowledged", platform, exc)
            raise NotRecorded(platform) from exc
        finally:
            self._recording -= 1
        if entry_id is None:
            return None
        if hand_off:
            self._waiting += 1
            self._count_waiting_soon()  # after the insert: the count then includes it
        else:
            self._working.add(entry_id)
        return Entry(entry_id, platform, payload)

    def _full(self) -> bool:
        """Whether the backlog is full. A web process that hands off judges the shared queue
        by a count younger than QUEUE_COUNT_TRUSTED only: on an older one it counts again and
        lets requests through until that count is back (never "busy" for a queue that was
        run while nobody asked). What the process holds itself (the reads it answers, its
        recording) it knows exactly: that alone at the bound is full, whatever the count's age."""
        backlog = self.backlog
        if backlog < self.max_backlog:
            return False
        if not self.hands_off or backlog - self._waiting >= self.max_backlog:
            return True
        if self._recounting:
            return False
        if time.monotonic() - self._count_landed_at < QUEUE_COUNT_TRUSTED or self._counting:
            return True
        self._count_waiting_soon(too_old=True)
        return False

    def _count_waiting_soon(self, *, too_old: bool = False) -> None:
        """Count the shared queue again, in the background, at most every QUEUE_COUNTED_EVERY
        (at once when the last count is `too_old` to refuse on): the ack never waits for the
        count."""
        now = time.monotonic()
        if self._counting or (not too_old and now - self._counted_at < QUEUE_COUNTED_EVERY):
            return
        self._counted_at = now
        self._recounting = too_old
        self._track(self.count_waiting())

    async def count_waiting(self) -> None:
        """Count the rows waiting for a worker, for `backlog` (a web process that hands off)."""
        self._counting = True
        try:
            # Another request's hand-off landing while this counts may be left out until the
            # next count: a bound a moment late refuses nobody it should not.
            self._waiting = await asyncio.to_thread(self._waiting_now)
            self._count_landed_at = time.monotonic()
        except SQLAlchemyError as exc:
            log.warning("inbox: the shared queue could not be counted (%s)", exc)
        finally:
            self._counting = False
            self._recounting = False

    def admit(self, platform: str) -> Pass:
        """Let a request run without recording it — only one the engine says only reads. Raises
        Busy when the backlog is full, like `record`; the pass ends with `run` or `release`."""
        if self._full():
            self._refused(platform)
            raise Busy(platform)
        self._passes += 1
        return Pass(platform)

    def _landed_late(
        self, done: asyncio.Future[int | None], platform: str, payload: dict[str, Any]
    ) -> None:
        """An insert that outlasted the ack budget finished: the row is ours, so run it (its
        platform retries with the same key, and is answered as a repeat)."""
        if done.cancelled() or done.exception() is not None:
            return
        entry_id = done.result()
        if entry_id is not None:
            log.info("%s request recorded late: run from inbox %s", platform, entry_id)
            self._working.add(entry_id)
            self._track(self._replay(Entry(entry_id, platform, payload)))

    # ---------------------------------------------------------------- 2. the engine, once

    def once(
        self, entry: Entry | None, where: Where, run: Callable[..., Reply], *args: Any
    ) -> Reply:
        """`run(*args)` (an engine call) for `entry`, in one transaction with the row's
        `answered` mark, unless it already ran — then its stored reply. Synchronous: call it in
        a worker thread. Raises Lost when the row is no longer ours. Without an entry (a path
        that records nothing) it is just `run(*args)`."""
        if entry is None:  # no fence: only a conflict, whose transaction surely rolled back
            return attempted(partial(run, *args), again=conflicted)
        # An error of the moment (a deadlock, the connection lost) is tried again at once: the
        # row's fence makes a second try safe, even after a COMMIT that did happen.
        return self.db.attempted(lambda session: self._once_in(session, entry, where, run, *args))

    def once_together(
        self,
        entry: Entry,
        where: Where,
        run: Callable[..., Reply],
        *args: Any,
        then: Callable[[Reply], T],
    ) -> asyncio.Future[T] | None:
        """`once`, in a transaction shared with the other engine calls waiting (a burst), each
        in a savepoint of its own; the future holds `then(reply)`, built after the commit in
        the writer thread (a reply's rendering, kept off the event loop). None where calls do
        not run together (PostgreSQL, but in a worker taking hand-offs): the caller runs `once`
        in a worker thread instead."""
        if not self._run_groups:
            return None

        def write(session: UnitOfWork) -> Reply:
            return self._once_in(session, entry, where, run, *args)

        runs = self._run_groups[self._turn % len(self._run_groups)]
        self._turn += 1
        return asyncio.wrap_future(runs.submit(write, then))

    def _once_in(
        self,
        session: UnitOfWork,
        entry: Entry,
        where: Where,
        run: Callable[..., Reply],
        *args: Any,
    ) -> Reply:
        """`once`'s work in the caller's transaction: fence the row, run the engine joined to
        it unless it ran already, store the reply as the row's answer."""
        fenced = store.fence(session, entry.id, worker=self.worker_id)
        if fenced is None:
            raise Lost(entry.id)
        if fenced.answer is not None:
            return reply_from_payload(self.seal.open(fenced.answer)["reply"])
        with self.db.joined(session):
            reply = run(*args)
        destination = where(reply)
        answer = {
            "reply": reply_to_payload(reply),
            "to": None if destination is None else asdict(destination),
        }
        # Written with the other answered marks of the transaction, as its last statements but
        # for the poll tallies' (`store.answered_at_commit`): a group's, in one round trip.
        store.answered_at_commit(
            session,
            entry.id,
            answer=self.seal.close(answer),
            until=self.clock.now() + self.claim_timeout,
        )
        return reply

    # ---------------------------------------------------------------- 3. finish

    async def run(self, entry: Entry | Pass, work: Coroutine[Any, Any, Any]) -> None:
        """Do the work after the ack for `entry`, then finish it. When the work fails, a reply
        the engine already gave goes out through the outbox instead of being lost. A `Pass`
        has nothing to finish: it ends, its reply handed to the outbox if it was not shown."""
        if isinstance(entry, Pass):
            try:
                await work
            except Exception:
                log.exception("%s read: the work after the ack failed", entry.platform)
                if entry.answer is not None:
                    await self._send_later(*entry.answer)
            finally:
                self.release(entry)
            return
        try:
            await work
        except Lost:
            log.info("inbox %s was taken over by another process; stopped here", entry.id)
            self.release(entry)
            return
        except Exception:
            log.exception("inbox %s: the work after the ack failed", entry.id)
            await self.forward(entry, rerun_unanswered=True)
            return
        await self.finish(entry)

    async def _send_later(self, reply: Reply, to: Destination) -> None:
        """A read's reply, shown nowhere, to the outbox (which retries it), in a transaction of
        its own: nothing else of a read is stored. One key for every try: a try whose COMMIT
        landed unseen is not sent twice."""
        key = f"read:{secrets.token_hex(16)}"

        def enqueue(session: UnitOfWork) -> None:
            to.enqueue(session, reply, key=key, now=self.clock.now())

        try:
            await asyncio.to_thread(self.db.attempted, enqueue)
        except SQLAlchemyError as exc:
            log.warning("%s read: its reply was not handed to the outbox (%s)", to.platform, exc)
        else:
            log.info("%s read: its reply goes through the outbox", to.platform)

    def release(self, entry: Entry | Pass) -> None:
        """This process stops working `entry` without finishing it: once its claim runs out,
        recovery (here or elsewhere) takes it over. A `Pass` just ends (once)."""
        if isinstance(entry, Pass):
            if entry.running:
                entry.running = False
                self._passes -= 1
            return
        self._working.discard(entry.id)

    async def finish(self, entry: Entry) -> None:
        try:
            try:
                await asyncio.shield(self._marked_done(entry.id))
            except SQLAlchemyError as exc:
                if not transient(exc):
                    raise
                # The statement's connection was lost (a database restart) or it met a
                # conflict: this row's mark alone, again. Left unmarked, the row's claim runs
                # out and recovery sends its stored reply a second time. Safe whatever became
                # of the first try: it only finishes a row this process still holds unfinished.
                await asyncio.to_thread(self._finish_alone, entry.id)
        except SQLAlchemyError as exc:
            log.warning("inbox %s not marked done (%s); it will be picked up again", entry.id, exc)
        finally:
            self.release(entry)

    def _finish_alone(self, entry_id: int) -> bool:
        """A done mark in a transaction of its own, tried again at once while it meets an
        error of the moment (`storage.db.attempted`)."""

        return self.db.attempted(
            lambda session: store.finish(
                session, entry_id=entry_id, worker=self.worker_id, now=self.clock.now()
            ),
            urgent=True,
        )

    def _marked_done(self, entry_id: int) -> asyncio.Future[set[int]]:
        """The done mark of `entry_id`, in the one statement that marks every row waiting for
        its mark when that statement runs (`_mark_waiting_done`): a burst's rows finish a few
        dozen at a time. The future is shared by those rows (shield it before awaiting)."""
        with self._done_lock:
            self._done_waiting.append(entry_id)
            # Done already: its transaction failed before the statement took the rows waiting
            # (they wait on, for this next one).
            if self._done_marks is None or self._done_marks.done():
                submitted = self._writes.submit(self._mark_waiting_done)
                self._done_marks = asyncio.wrap_future(submitted)
            return self._done_marks

    def _mark_waiting_done(self, session: UnitOfWork) -> set[int]:
        """In the writer thread: take every row waiting for its done mark, and mark them in one
        statement; a row asking after this is taken by the next statement."""
        with self._done_lock:
            entry_ids, self._done_waiting = self._done_waiting, []
            self._done_marks = None
        return store.finish_many(
            session, entry_ids=entry_ids, worker=self.worker_id, now=self.clock.now()
        )

    async def forward(self, entry: Entry, *, rerun_unanswered: bool = False) -> bool:
        """Hand the reply the engine gave for `entry` (if it gave one) to the outbox, and finish
        the row — one transaction. True when a reply was handed over.

        A row with no reply stored is finished too, unless `rerun_unanswered`: the work after
        the ack failed without one — a handed-off read, whose reply is never stored
        (it stores nothing; showing it failed), or a write before its engine call — and the row
        is left to recovery, which runs the request again once its claim runs out (as it does
        a dead process's; MAX_ATTEMPTS bounds it, then the sender is told). Finishing it would
        leave the person who asked with nothing shown and nothing owed."""
        try:
            return await asyncio.to_thread(self._forward, entry.id, rerun_unanswered)
        except SQLAlchemyError as exc:
            log.warning("inbox %s not forwarded (%s); it will be picked up again", entry.id, exc)
            return False
        finally:
            self.release(entry)

    def _forward(self, entry_id: int, rerun_unanswered: bool = False) -> bool:
        now = self.clock.now()
        with self.db.uow() as session:
            fenced = store.fence(session, entry_id, worker=self.worker_id)
            if fenced is None:
                return False
            if fenced.answer is None and rerun_unanswered:
                log.info("inbox %s: nothing answered to forward; left to run again", entry_id)
                return False
            answer = self._open(entry_id, fenced.answer)
            to = answer.get("to") if answer else None
            if answer and to:
                reply = reply_from_payload(answer["reply"])
                Destination(**to).enqueue(session, reply, key=f"inbox:{fenced.key}", now=now)
            store.finish(session, entry_id=entry_id, worker=self.worker_id, now=now)
        return bool(answer and to)

    def _open(self, entry_id: int, sealed: str | None) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            opened: dict[str, Any] = self.seal.open(sealed)
        except (InvalidTag, ValueError):
            log.error("inbox %s cannot be opened with this ALIGN_SECRET; dropped", entry_id)
            return None
        return opened

    # ---------------------------------------------------------------- recovery

    async def recover(self) -> int:
        """Take over the unfinished rows whose claim ran out and finish them: re-run a request
        the engine never finished, send a reply that never went out. Returns how many."""
        taken, _ = await asyncio.to_thread(self._take_over)
        if not taken:
            return 0
        log.info("inbox: %d unfinished request(s) picked up again", len(taken))
        # Ours from the take on, though most wait for the gate: were they left out of `_working`
        # till their turn, a claim running out meanwhile would let this process's queue take
        # them again, and both copies pass the fence (one worker id) — the engine still runs
        # once, but the stored reply was shown twice (tests/server/test_kill_hand_off.py).
        self._working.update(row.id for row in taken)
        gate = asyncio.Semaphore(RECOVER_IN_PARALLEL)

        async def one(row: store.Unfinished) -> None:
            try:
                async with gate:
                    await self._work_taken(row)
            finally:
                self._working.discard(row.id)  # also when cut short before its turn

        await asyncio.gather(*(one(row) for row in taken))
        return len(taken)

    async def take_waiting(
        self, limit: int, *, look_first: bool = True
    ) -> list[asyncio.Task[None]]:
        """A worker's turn at the shared queue: take up to `limit` waiting rows (handed off by
        a web process, or left by a dead one) and start each; the tasks that run them. With
        `look_first` a read goes first on SQLite, so an idle queue costs one index probe and no
        write lock (during a burst the caller knows better, and skips it)."""
        if limit <= 0:
            return []
        # On SQLite a claim takes the database's one write lock: a read looks first. On
        # PostgreSQL the claim itself is as cheap as the look (row locks, SKIP LOCKED).
        sqlite = self.db.dialect == "sqlite"
        if look_first and sqlite and not await asyncio.to_thread(self._any_waiting):
            return []
        taken = await asyncio.to_thread(self._claim_queued, limit)
        # Nothing new: requests some process died with, if any (a reply owed is recovery's).
        if not taken and await asyncio.to_thread(self._any_waiting):
            taken, _ = await asyncio.to_thread(partial(self._take_over, limit, for_queue=True))
        return [self._track(self._work_taken(row)) for row in taken]

    def _waiting_now(self) -> int:
        with self.db.reading(), self.db.uow() as session:
            return store.waiting(session, now=self.clock.now())

    def _any_waiting(self) -> bool:
        platforms = sorted(self._replayers)
        with self.db.reading(), self.db.uow() as session:
            return store.any_waiting(session, now=self.clock.now(), platforms=platforms)

    async def _work_taken(self, row: store.Unfinished) -> None:
        """Finish a row taken over: send the reply it owes, or run the request again."""
        payload = self._open(row.id, row.payload)
        entry = Entry(row.id, row.platform, payload or {})
        self._working.add(entry.id)
        if row.status == store.ANSWERED or payload is None:
            await self.forward(entry)
        else:
            await self._replay(entry)

    def _claim_queued(self, limit: int) -> list[store.Unfinished]:
        with self.db.uow() as session:
            return store.claim_queued(
                session,
                worker=self.worker_id,
                until=self.clock.now() + self.claim_timeout,
                platforms=sorted(self._replayers),
                limit=limit,
            )

    def _take_over(
        self, limit: int = RECOVER_BATCH, *, for_queue: bool = False
    ) -> tuple[list[store.Unfinished], int]:
        """Take over rows whose claim ran out (`store.take_over`) — `for_queue`, only requests
        to run, one at a time if a process died with them; those given up are logged here,
        whichever loop found them."""
        now = self.clock.now()
        with self.db.uow() as session:
            taken, given_up = store.take_over(
                session,
                worker=self.worker_id,
                now=now,
                until=now + self.claim_timeout,
                platforms=sorted(self._replayers),
                max_attempts=MAX_ATTEMPTS,
                limit=limit,
                skip=sorted(self._working),
                replies_owed=not for_queue,
                retried_alone=for_queue,
                on_give_up=self._tell_given_up,
            )
        if given_up:
            log.error(
                "inbox: %d request(s) given up after %d attempts (each attempt's process died)",
                given_up,
                MAX_ATTEMPTS,
            )
        return taken, given_up

    def _tell_given_up(self, session: UnitOfWork, row: store.Unfinished) -> None:
        """A request given up after MAX_ATTEMPTS: its sender is told so through the outbox, in
        the transaction that gives it up — once, whatever happens next. Privately where the
        platform can; in a conversation others read, by name, calling on them."""
        payload = self._open(row.id, row.payload)
        asker = self._askers.get(row.platform)
        if asker is None or payload is None:
            return
        try:
            # In a savepoint: an asker that fails (a payload it cannot read) must not undo the
            # give-up, or the row would be given up, and fail, at every recovery turn.
            with in_savepoint(session):
                to = asker(session, payload)
        except Exception:
            log.exception("inbox %s: its sender cannot be told it was given up", row.id)
            return
        if to is None:
            return
        if to.person:
            text = GAVE_UP_IN_COMMON.format(person=mention(to.person), attempts=row.attempts)
            notify: tuple[str, ...] = (to.person,)
        else:
            text, notify = GAVE_UP.format(attempts=row.attempts), ()
        gave_up = Reply(ok=False, kind="error", text=text, notify=notify)
        to.enqueue(session, gave_up, key=f"inbox-given-up:{row.id}", now=self.clock.now())

    async def _replay(self, entry: Entry) -> None:
        replay = self._replayers.get(entry.platform)
        try:
            if replay is not None:  # else not this process's platform: another takes it over
                await replay(entry)
        except Exception:
            log.exception("inbox %s: running it again failed; it is tried again later", entry.id)
        finally:
            self.release(entry)

    async def prune(self) -> int:
        """Delete finished rows older than the retention; returns how many went."""
        before = self.clock.now() - self.retention
        gone = await asyncio.to_thread(self._prune, before)
        if gone:
            log.info("inbox: pruned %d finished request(s) received before %s", gone, before)
        return gone

    def _prune(self, before: datetime) -> int:
        with self.db.uow() as session:
            return store.prune(session, before=before)

    # ---------------------------------------------------------------- bookkeeping

    def _track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    @property
    def backlog(self) -> int:
        """Requests this process holds recorded and unfinished, is recording now, or runs
        admitted without a row — and, when it hands off, those waiting for a worker."""
        waiting = self._waiting if self.hands_off else 0
        return len(self._working) + self._recording + self._passes + waiting

    async def idle(self) -> None:
        """Wait until no late-recorded request is still running (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


__all__ = [
    "BUSY",
    "GAVE_UP",
    "GAVE_UP_IN_COMMON",
    "KEY",
    "Busy",
    "Destination",
    "Entry",
    "Inbox",
    "Lost",
    "NotRecorded",
    "Pass",
    "Seal",
]
