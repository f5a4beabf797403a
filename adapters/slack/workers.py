"""The thread pool the engine runs in, so the event loop only ever waits, never works.

Engine and database calls are synchronous; running one on the loop would stall every other
request's ack. Sixteen threads keep a burst of clicks moving without exhausting the database pool
(10 + 20 overflow on PostgreSQL). On SQLite every transaction of the process queues for one
write lock, so more than a few threads only wait — and wake up to fight over the GIL with the
event loop that sends the acks: four there (`threads_for`); a 1,000-click burst was counted in
10 s with four against 14 s with sixteen, on this machine.

Read commands on SQLite run in one thread of their own (`read`): WAL gives a read its snapshot
without waiting for the write lock, so a second thread only adds a contender for the GIL. The
driver lets go of the GIL at every row it steps through, and each time another thread waiting
for it wakes up: with twenty reads in flight, four threads cost bench_slack's `questions`
0.1-0.6 ms of CPU more per read than one (three comparisons on one noisy machine; the engine
read on the event loop itself, 0.5 ms less again). A read then waits behind no write either.
On PostgreSQL a read waits on the network, and one thread held twenty reads in flight to its
round trips: reads share the pool there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from adapters import priority

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THREADS = 16
SQLITE_THREADS = 4
SQLITE_READ_THREADS = 1


def threads_for(dialect: str) -> int:
    return SQLITE_THREADS if dialect == "sqlite" else DEFAULT_THREADS


def read_threads_for(dialect: str) -> int | None:
    """Threads of the reads' own pool, or None: reads share the pool (the module docstring)."""
    return SQLITE_READ_THREADS if dialect == "sqlite" else None


class Workers:
    """A thread pool for blocking work, plus the background tasks started after an ack."""

    def __init__(self, threads: int = DEFAULT_THREADS, read_threads: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="align-slack",
            initializer=priority.lower_this_thread,  # the engine's work: acks go first
        )
        self._reads = self._pool
        if read_threads is not None:
            # At the process's priority, not lowered: a read's work is its ack's answer. Lowered,
            # the reads in flight waited for the CPU the acks took, and bench_slack's saturation
            # fell from 0.71-0.73x a bare Bolt app's acks to 0.48-0.49x (5 s phases, two rounds).
            self._reads = ThreadPoolExecutor(
                max_workers=read_threads, thread_name_prefix="align-slack-read"
            )
        self._tasks: set[asyncio.Task[Any]] = set()

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` for a read command, in threads of its own: a read waits behind no write, and
        answers its ack (listeners.py `on_command`) however busy the writers are."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, functools.partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run after the ack; kept referenced until done so it is neither lost nor collected."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def idle(self) -> None:
        """Wait until no background work is left (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._reads is not self._pool:
            self._reads.shutdown(wait=False, cancel_futures=True)
