"""Work yields to acks (adapters/priority.py): once `align serve` says so, the threads that run
the engine — the Slack listeners' pool, the inbox's engine groups, the profile lookups — run at
a lower CPU priority than the process, while the thread that writes a request's record before
its ack keeps the process's. Read from the kernel, per thread (Linux)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from adapters import priority
from adapters.inbox import Inbox
from adapters.slack.workers import Workers
from bot.clock import FakeClock
from storage.db import Database
from storage.group_commit import GroupCommit

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no thread priorities")


def _mine(_session: Any = None) -> int:
    """The calling thread's nice value."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(priority, "_lowered_by", 0)  # put back after the test
    priority.work_yields(3)
    yield _mine() + 3


def _in_the_listeners_pool() -> int:
    """The nice value of a thread of the Slack listeners' pool, started by an event loop."""

    async def main() -> int:
        workers = Workers(1)
        try:
            return await workers.run(_mine)
        finally:
            workers.close()

    return asyncio.run(main())


def test_the_listeners_pool_runs_lowered(lowered: int) -> None:
    assert _in_the_listeners_pool() == min(19, lowered)


def test_the_reads_thread_runs_at_the_process_priority(lowered: int) -> None:
    """A read's work is its ack's answer (adapters/slack/workers.py): it is not lowered."""

    async def main() -> tuple[int, int]:
        workers = Workers(1, read_threads=1)
        try:
            return await workers.read(_mine), await workers.run(_mine)
        finally:
            workers.close()

    process = _mine()
    assert asyncio.run(main()) == (process, min(19, lowered))


def test_the_inbox_runs_its_engine_groups_lowered_and_records_at_the_process_priority(
    lowered: int, tmp_path: Any
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'align.db'}")
    inbox = Inbox(
        db,
        FakeClock(),
        secret=b"s" * 32,
        ack_budget=5.0,
        claim_timeout=timedelta(seconds=60),
        retention=timedelta(hours=1),
        max_backlog=10,
    )
    inbox.runs_together()
    profiles = GroupCommit(
        db, name="t-profiles", urgent=False, thread_setup=priority.lower_this_thread
    )
    try:
        ran = [group.submit(_mine).result(timeout=10) for group in inbox._run_groups]
        assert ran and set(ran) == {min(19, lowered)}
        assert profiles.submit(_mine).result(timeout=10) == min(19, lowered)
        # The ack path's writer (records, done marks) is started by the loop, never lowered.
        assert inbox._writes.submit(_mine).result(timeout=10) == lowered - 3
    finally:
        db.dispose()


def test_nothing_is_lowered_until_serve_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority, "_lowered_by", 0)
    assert _in_the_listeners_pool() == _mine()
