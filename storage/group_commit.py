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
the transaction) and every caller gets the error. The thread ends after a second with nothing to
do and starts again with the next write.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from storage.db import Database, UnitOfWork

T = TypeVar("T")
Write = Callable[[UnitOfWork], Any]

MAX_GROUP = 200
IDLE_SECONDS = 1.0


class GroupCommit:
    def __init__(
        self, db: Database, *, name: str = "align-group-commit", urgent: bool = True
    ) -> None:
        """`urgent=False` for writes no ack waits for (profiles): they queue behind the
        engine's transactions on SQLite like any other, only grouped."""
        self.db = db
        self.name = name
        self.urgent = urgent
        self._queue: queue.SimpleQueue[tuple[Write, Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def submit(self, write: Callable[[UnitOfWork], T]) -> Future[T]:
        """Queue `write`; the future holds its result once its transaction has committed."""
        future: Future[T] = Future()
        self._queue.put((write, future))
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
        return future

    def _run(self) -> None:
        while True:
            try:
                group = [self._queue.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                with self._lock:  # a write queued before this check is seen here, or the
                    if self._queue.empty():  # next submit sees _running False and starts one
                        self._running = False
                        return
                continue
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[tuple[Write, Future[Any]]]) -> None:
        live = [(write, future) for write, future in group if future.set_running_or_notify_cancel()]
        try:
            with self.db.uow(urgent=self.urgent) as session:
                results = [write(session) for write, _ in live]
        except Exception as exc:
            for _, future in live:
                future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)


__all__ = ["GroupCommit"]
