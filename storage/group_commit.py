"""Group commit: short writes from many requests, one transaction for whatever is waiting.

Every Slack or Teams request now writes twice outside its command — the inbox row before the
ack, its "done" mark after the reply — and on SQLite every write queues for the one write lock.
One transaction each cost more in BEGIN, COMMIT and lock hand-over than the writes themselves,
and halved the commands a busy server completed. Here one writer thread takes every write
waiting when it is free and runs them in one transaction: alone, a write is one transaction as
before (nothing waits on purpose); in a burst, forty acks share one commit. Each caller learns
its own result only once the transaction that holds its write has committed, so an ack still
means the request is stored. The transaction is `urgent`: on SQLite it goes before the engine's
transactions waiting for the process's write lock, so an ack never queues behind a burst's work.

A write is a function of the session; if one fails, the whole group fails with it (they share
the transaction) and every caller gets the error — unless the group commit is made with
`savepoints`: then each write runs in a savepoint of its own, and one that fails is rolled back
alone (its caller gets the error) while the others commit. The inbox runs the engine calls that
queue up in a burst so (`Inbox.once_together`): a thousand votes in a few seconds share a few
dozen commits instead of each taking SQLite's write lock, and a refusal or an error in one undoes
none of the others. A `then` given with a write runs after the commit, in the writer thread (the
reply's rendering: never on the event loop), its error its caller's alone. The thread ends
after a second with nothing to do and starts again with the next write.

On PostgreSQL other transactions run beside a group, and a write can meet a deadlock or a
serialization failure that a transaction of its own would not have met (the group held rows
it needed): with `again_alone` saying which errors those are, such a write is run again,
in a transaction of its own, once its group has committed (up to `storage.db.ATTEMPTS_NOW`
times while it meets one alone too), and its caller gets that outcome.
A group whose own transaction fails with such an error, or after a write of it met one (its
connection lost before or at the COMMIT, a conflict at the COMMIT), has each of its writes run
again so, alone. `again_alone` is for writes that can run again whatever became of the first
try (the inbox's: a row answered once gives its stored answer): a connection lost during the
COMMIT leaves it unknown.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from storage.db import Database, UnitOfWork, in_savepoint

T = TypeVar("T")
Write = Callable[[UnitOfWork], Any]
Then = Callable[[Any], Any]
Item = tuple[Write, Then | None, "Future[Any]"]

MAX_GROUP = 200
IDLE_SECONDS = 1.0


def yield_the_interpreter() -> None:
    """Let another thread waiting for the interpreter lock run now — in one process, the event
    loop that acks. A group's writes (a burst's engine calls) otherwise run back to back: each
    lets the lock go inside SQLite or psycopg, only to take it straight back, so a loop with
    requests waiting got it only when the 5 ms switch interval forced it out — and past what
    the process could work, acks went at the work's pace instead of the backlog answering the
    surplus busy. bench_slack, one process, interleaved pairs (on SQLite, with the 20 ms groups
    of the time; adapters.inbox.RUN_TOGETHER_SECONDS has the figures since): saturation
    0.40-0.74x a bare Bolt app's acks without, 0.89-1.18x with; commands worked a second 533
    against 568; the burst unchanged (every vote counted within 0.02 s of the last ack)."""
    time.sleep(0)


class GroupCommit:
    def __init__(
        self,
        db: Database,
        *,
        name: str = "align-group-commit",
        urgent: bool = True,
        savepoints: bool = False,
        max_group: int = MAX_GROUP,
        max_seconds: float | None = None,
        again_alone: Callable[[Exception], bool] | None = None,
        thread_setup: Callable[[], None] | None = None,
    ) -> None:
        """`urgent`: the transaction goes before the engine's on SQLite's writer lock (what an
        ack waits for); `savepoints`: each write alone in a savepoint (the module docstring);
        `max_seconds`: a group takes no further write once its transaction has run that long
        (the rest go in the next) — on SQLite a transaction holds the process's write lock, and
        an ack waiting for its record must not wait for a whole burst's engine work."""
        self.db = db
        self.name = name
        self.urgent = urgent
        self.savepoints = savepoints
        self.max_group = max_group
        self.max_seconds = max_seconds
        self.again_alone = again_alone
        self.thread_setup = thread_setup
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def submit(
        self, write: Callable[[UnitOfWork], T], then: Callable[[T], Any] | None = None
    ) -> Future[Any]:
        """Queue `write`; the future holds its result — or what `then` made of it — once its
        transaction has committed."""
        future: Future[Any] = Future()
        self._queue.put((write, then, future))
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
        return future

    def _run(self) -> None:
        if self.thread_setup is not None:
            self.thread_setup()
        carried: list[Item] = []  # taken from the queue but left out of the last group
        while True:
            if carried:
                group, carried = carried, []
            else:
                try:
                    group = [self._queue.get(timeout=IDLE_SECONDS)]
                except queue.Empty:
                    with self._lock:  # a write queued before this check is seen here, or the
                        if self._queue.empty():  # next submit sees _running False: starts one
                            self._running = False
                            return
                    continue
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            carried = self._commit(group)

    def _commit(self, group: list[Item]) -> list[Item]:
        """Run what fits of `group` in one transaction and commit it; the writes left over (the
        time budget ran out) are returned, untouched, for the next group."""
        done: list[tuple[Item, tuple[bool, Any]]] = []
        left: list[Item] = []
        try:
            with self.db.uow(urgent=self.urgent) as session:
                began = time.perf_counter()
                for n, item in enumerate(group):
                    spent = time.perf_counter() - began
                    if done and self.max_seconds is not None and spent > self.max_seconds:
                        left = group[n:]
                        break
                    if n:
                        yield_the_interpreter()
                    if item[2].set_running_or_notify_cancel():
                        done.append((item, self._one(session, item[0])))
        except Exception as exc:  # the transaction failed: every write of the group with it
            # …unless its error, or one a write of it met first (the connection lost mid-group
            # leaves the later statements, and the COMMIT, failing otherwise), is one of those
            # `again_alone` names: then each write runs again alone.
            errors = [exc, *(result for _, (ok, result) in done if not ok)]
            again = self.again_alone is not None and any(map(self.again_alone, errors))
            for write, then, future in group[: len(group) - len(left)]:
                if future.running() or future.set_running_or_notify_cancel():
                    ok, result = self._alone(write) if again else (False, exc)
                    self._settle(then, future, ok, result)
            return left
        for (write, then, future), (ok, result) in done:
            if not ok and self.again_alone is not None and self.again_alone(result):
                ok, result = self._alone(write)
            self._settle(then, future, ok, result)
        return left

    @staticmethod
    def _settle(then: Then | None, future: Future[Any], ok: bool, result: Any) -> None:
        """Give a write's caller its outcome: its error, or what `then` makes of its result."""
        if not ok:
            future.set_exception(result)
            return
        try:
            future.set_result(result if then is None else then(result))
        except Exception as exc:
            future.set_exception(exc)

    def _alone(self, write: Write) -> tuple[bool, Any]:
        """A write run again in a transaction of its own (`again_alone`) — tried again so, up
        to ATTEMPTS_NOW times, while it meets such an error alone too (`storage.db.attempted`)."""
        assert self.again_alone is not None
        try:
            return True, self.db.attempted(write, urgent=self.urgent, again=self.again_alone)
        except Exception as exc:
            return False, exc

    def _one(self, session: UnitOfWork, write: Write) -> tuple[bool, Any]:
        """One write: (True, its result); with savepoints a failure is rolled back alone and
        returned as (False, the error) — without, it fails the whole group."""
        if not self.savepoints:
            return True, write(session)
        try:
            with in_savepoint(session):
                return True, write(session)
        except Exception as exc:
            return False, exc


__all__ = ["GroupCommit"]
