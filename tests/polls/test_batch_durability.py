"""Counting a batch of anonymous ballots does not wait for the disk (PostgreSQL commits it with
`synchronous_commit` off), because losing that commit loses nothing: the ballots it moved still
wait, durably, and the next count takes them. A vote, a close and everything else still commit
durably.

A lost asynchronous commit is a transaction that never happened (PostgreSQL replays its log in
order and stops at the last record on disk), so "the count was lost in a crash" is tested here as
"the count's transaction did not commit"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from adapters.bootstrap import App
from bot.polls import batches
from storage.db import UnitOfWork
from storage.models import Ballot, PendingBallot
from tests.conftest import Chat


def _rows(app: App, model: type) -> int:
    with app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


class LostInACrash(Exception):
    """Stands for the crash that takes an unflushed commit with it."""


def test_a_count_lost_before_it_reached_the_disk_loses_no_vote(chat: Chat, app: App) -> None:
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    for n, voter in enumerate(["ana", "ben", "cy", "dee", "eve"]):
        chat.ok(f"vote P-1 {n % 2 + 1} | why{n}", user=voter)

    def crash(_session: UnitOfWork, _poll: Any) -> None:
        raise LostInACrash

    with pytest.raises(LostInACrash):
        batches.flush_due(app.engine.deps, crash)
    # Nothing of the count remains, and every ballot still waits, whole.
    assert _rows(app, Ballot) == 0 and _rows(app, PendingBallot) == 5
    # The next look counts them, as the next tick would: the five ballots, reasons and all.
    res = chat.ok("results P-1").data
    assert "uncounted" not in res
    assert res["counts"] == {"Yes": 3, "No": 2} and res["ballots"] == 5
    assert sorted(r["reason"] for r in res["reasons"]) == [f"why{n}" for n in range(5)]
    assert _rows(app, Ballot) == 5 and _rows(app, PendingBallot) == 0


def test_a_lost_count_after_the_tick_is_taken_again_by_the_next_tick(chat: Chat, app: App) -> None:
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    for voter in ("ana", "ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 1", user=voter)

    def crash(_session: UnitOfWork, _poll: Any) -> None:
        raise LostInACrash

    with pytest.raises(LostInACrash):
        batches.flush_due(app.engine.deps, crash)
    moved: list[int] = []
    assert batches.flush_due(app.engine.deps, lambda _s, poll: moved.append(poll.id)) == 1
    assert len(moved) == 1
    assert _rows(app, Ballot) == 5 and _rows(app, PendingBallot) == 0
    assert chat.ok("close P-1").data["counts"] == {"Yes": 5, "No": 0}


def _synchronous_commit(session: UnitOfWork) -> str:
    return str(session.execute(text("SHOW synchronous_commit")).scalar_one())


def test_only_the_batch_count_commits_without_waiting_for_the_disk(chat: Chat, app: App) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit (SQLite commits without a sync anyway)")
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    for voter in ("ana", "ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 1", user=voter)
    seen: list[str] = []
    batches.flush_due(
        app.engine.deps, lambda session, _poll: seen.append(_synchronous_commit(session))
    )
    assert seen == ["off"]
    # Only that transaction: the next one on the same pooled connections is durable again.
    for _ in range(3):
        with app.db.uow() as session:
            assert _synchronous_commit(session) == "on"
    # A vote and a close (which counts what waits) commit durably: nothing relaxes them.
    with statements(app) as sent:
        chat.ok("vote P-1 2", user="fay")
        chat.ok("results P-1")  # one waits: nothing to count
        chat.ok("close P-1")
    assert sent and not [s for s in sent if "synchronous_commit" in s]


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    sent: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(app.db.engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(app.db.engine, "before_cursor_execute", before)


def test_durable_false_is_ignored_inside_work_that_must_be_durable(app: App) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit")
    db = app.db
    with db.uow() as outer, db.joined(outer):
        with db.uow(durable=False) as inner:
            assert _synchronous_commit(inner) == "on"
        assert _synchronous_commit(outer) == "on"
    with db.command(), db.uow(durable=False) as first:
        assert _synchronous_commit(first) == "on"
    with db.uow(durable=False) as own:
        assert _synchronous_commit(own) == "off"
