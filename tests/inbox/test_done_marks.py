"""A burst's done marks: the rows whose work ended while the inbox's writer was busy are marked
done in one statement (`Inbox.finish`), not one UPDATE each — and a row another process took
over meanwhile is left to it, as a done mark of its own would have left it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from adapters.bootstrap import App
from adapters.inbox import Entry
from storage import inbox as store
from storage.models import InboxEntry


def test_done_marks_waiting_together_take_one_statement_and_spare_a_row_taken_over(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = app.inbox
    now = app.clock.now()
    until = now + inbox.claim_timeout

    async def scenario() -> list[int]:
        entries = []
        for n in range(6):
            entry = await inbox.record("slack", f"slack:done-{n}", {"n": n})
            assert entry is not None
            entries.append(entry)
        taken = entries[5]  # its claim ran out, and another process took it over
        with app.db.uow() as session:
            row = session.get(InboxEntry, taken.id)
            assert row is not None
            row.claimed_by, row.claimed_until = "another-process", until

        statements: list[int] = []  # the rows each done-mark statement carried
        finish, finish_many = store.finish, store.finish_many

        def one(session: Any, **kw: Any) -> bool:
            statements.append(1)
            return finish(session, **kw)

        def many(session: Any, *, entry_ids: list[int], **kw: Any) -> set[int]:
            statements.append(len(entry_ids))
            return finish_many(session, entry_ids=entry_ids, **kw)

        # The writer is busy (a record's transaction, say) while the work of all six ends.
        busy, free = threading.Event(), threading.Event()

        def hold(_session: Any) -> None:
            busy.set()
            free.wait(10)

        held = asyncio.wrap_future(inbox._writes.submit(hold))
        await asyncio.to_thread(busy.wait, 10)
        monkeypatch.setattr(store, "finish", one)
        monkeypatch.setattr(store, "finish_many", many)
        marks = [asyncio.ensure_future(inbox.finish(entry)) for entry in entries]
        await asyncio.sleep(0)
        free.set()
        await held
        await asyncio.gather(*marks)
        assert not inbox._working  # each is released, whoever finished it
        return statements

    statements = asyncio.run(scenario())

    assert statements == [6]  # six done marks, one UPDATE
    with app.db.uow() as session:
        rows = session.execute(
            select(InboxEntry.dedupe_key, InboxEntry.status, InboxEntry.claimed_by)
        ).all()
    status = {key: (state, by) for key, state, by in rows}
    assert all(status[f"slack:done-{n}"] == (store.DONE, None) for n in range(5))
    assert status["slack:done-5"] == (store.RECEIVED, "another-process")  # still its to finish


def test_a_done_mark_that_fails_leaves_the_row_to_be_picked_up_again(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement that marks the waiting rows fails (the database is away): every row in it
    stays unfinished, for recovery to pick up once its claim runs out — and is released here."""
    inbox = app.inbox

    async def scenario() -> list[Entry]:
        entries = [await inbox.record("slack", f"slack:fails-{n}", {"n": n}) for n in range(3)]
        kept = [entry for entry in entries if entry is not None]

        def fail(*_: Any, **__: Any) -> set[int]:
            raise OperationalError("UPDATE inbox", {}, Exception("connection lost"))

        monkeypatch.setattr(store, "finish_many", fail)
        monkeypatch.setattr(store, "finish", fail)
        await asyncio.gather(*(inbox.finish(entry) for entry in kept))
        assert not inbox._working
        return kept

    kept = asyncio.run(scenario())
    with app.db.uow() as session:
        states = session.scalars(select(InboxEntry.status)).all()
    assert len(kept) == 3 and set(states) == {store.RECEIVED}


def test_a_transaction_that_fails_before_its_done_marks_leaves_later_ones_working(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's transaction fails before the statement took the rows waiting (the
    connection refused at its BEGIN): those rows stay unfinished, and the next done marks
    still go out, taking the rows left waiting with them."""
    inbox = app.inbox
    uow = app.db.uow
    failures = [OperationalError("BEGIN", {}, Exception("connection refused"))]

    def failing_once(**kw: Any) -> Any:
        if failures:
            raise failures.pop()
        return uow(**kw)

    async def scenario() -> None:
        first = await inbox.record("slack", "slack:later-0", {})
        second = await inbox.record("slack", "slack:later-1", {})
        assert first is not None and second is not None
        monkeypatch.setattr(app.db, "uow", failing_once)
        await inbox.finish(first)  # its transaction failed: not marked, left for recovery
        monkeypatch.setattr(app.db, "uow", uow)
        assert _status(app, "slack:later-0") == store.RECEIVED
        await inbox.finish(second)

    asyncio.run(scenario())
    assert _status(app, "slack:later-1") == store.DONE
    assert _status(app, "slack:later-0") == store.DONE  # went with it: its work was over


def _status(app: App, key: str) -> str:
    with app.db.uow() as session:
        found = session.scalars(select(InboxEntry.status).where(InboxEntry.dedupe_key == key))
        return str(found.one())
