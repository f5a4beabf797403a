"""Many people at once: numbers are handed out once each, and SQLite's writers queue instead of
failing with "database is locked" — on both databases, through the engine as adapters call it."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from adapters.bootstrap import App
from bot.context import Actor
from bot.views import Reply
from storage import upgrade
from storage.db import Database
from storage.models import Decision, ItemScore, Member

THREADS = 50


def at_once(count: int, work: Callable[[int], Reply]) -> list[Reply]:
    """Run `work(i)` in `count` threads released together; every reply, in thread order."""
    barrier = threading.Barrier(count)
    replies: list[Reply | None] = [None] * count

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        replies[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in replies), "a thread did not finish"
    return [r for r in replies if r is not None]


def failures(replies: list[Reply]) -> list[str]:
    return [str(r.error) for r in replies if not r.ok]


def test_fifty_people_deciding_at_once_get_fifty_distinct_ids(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    replies = at_once(
        THREADS,
        lambda i: app.engine.handle(Actor("local", "general", f"u{i}"), f"decide Thread {i}"),
    )
    assert failures(replies) == []
    ids = sorted((r.data["id"] for r in replies), key=lambda ref: int(ref[2:]))
    assert ids == [f"D-{n}" for n in range(1, THREADS + 1)]
    with app.db.uow() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == THREADS
    assert "database is locked" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_one_persons_first_commands_at_once_all_succeed(app: App) -> None:
    """Each command remembers who is in the channel; two first commands of one person at once
    used to race to insert that row and fail on PostgreSQL."""
    me = Actor("local", "general", "pm")
    replies = at_once(THREADS, lambda i: app.engine.handle(me, "help"))
    assert failures(replies) == []
    with app.db.uow() as session:
        assert session.scalar(select(func.count()).select_from(Member)) == 1


def test_concurrent_writes_to_one_item_do_not_deadlock(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    creator = Actor("local", "general", "pm")
    assert app.engine.handle(creator, "item SSO").ok

    def work(i: int) -> Reply:
        actor = Actor("local", "general", f"u{i % 10}")
        if i % 3 == 0:
            return app.engine.handle(actor, f"score I-1 reach:{i + 1} effort:{i % 4 + 1}")
        if i % 3 == 1:
            return app.engine.handle(actor, f"decide D{i} tag:t{i % 5}")
        return app.engine.handle(actor, f"edit I-1 title:“SSO take {i}”")

    replies = at_once(30, work)
    assert failures(replies) == []
    with app.db.uow() as session:
        scorers = session.scalar(select(func.count()).select_from(ItemScore))
    assert scorers == len({i % 10 for i in range(30) if i % 3 == 0})
    assert "database is locked" not in caplog.text


def test_a_first_connection_waits_for_the_lock_it_needs_to_put_the_file_in_wal(
    sqlite_url: str,
) -> None:
    """The migrations leave a new file in rollback-journal mode; the first connection of each
    process puts it in WAL. With another connection's write under way (processes started
    together: another's first request, or its own switch), the switch failed at once with
    "database is locked", the busy timeout not waited for: a web replica's first request was
    refused (tests/inbox/test_hand_off_promises.py, 2-3 runs in 10 on SQLite). It waits for
    the lock as a write does, then switches."""
    upgrade(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    other.execute("BEGIN IMMEDIATE")  # another process's write, under way
    other.execute("INSERT INTO counters (workspace, kind, last) VALUES ('w', 'D', 1)")
    asked = threading.Event()  # the new connection waits for the write lock

    def commit_once_asked() -> None:
        if asked.wait(30):
            other.execute("COMMIT")

    writer = threading.Thread(target=commit_once_asked)
    writer.start()
    db = Database(sqlite_url)

    @event.listens_for(db.engine, "connect", insert=True)
    def _traced(dbapi_connection: Any, _record: Any) -> None:
        def trace(statement: str) -> None:
            if statement == "BEGIN IMMEDIATE":
                asked.set()

        dbapi_connection.set_trace_callback(trace)

    try:
        with db.uow() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        asked.set()
        writer.join(30)
        other.close()
        db.dispose()
