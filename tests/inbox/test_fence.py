"""`storage.inbox.fence`, the check every engine call of the inbox runs first (on the raw
cursor): a row this worker holds unfinished is locked for the rest of the transaction and its
stored answer given; a row it does not hold, or one finished, gives nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from adapters.bootstrap import App
from storage import inbox as store


def _row(app: App, key: str, worker: str | None) -> int:
    now = app.clock.now()
    with app.db.uow() as session:
        entry_id = store.record(
            session, platform="slack", key=key, payload="sealed", worker=worker, now=now,
            until=now,
        )  # fmt: skip
    assert entry_id is not None
    return entry_id


def test_the_fence_finds_only_a_row_this_worker_holds_unfinished(app: App) -> None:
    ours, theirs, done = (_row(app, f"slack:fence-{n}", "w") for n in range(3))
    now = app.clock.now()
    with app.db.uow() as session:
        store.answered_at_commit(session, ours, answer="stored answer", until=now)
        session.execute(
            text("UPDATE inbox SET claimed_by = 'other' WHERE id = :id"), {"id": theirs}
        )
        store.finish(session, entry_id=done, worker="w", now=now)
    with app.db.uow() as session:
        assert store.fence(session, ours, worker="w") == store.Fenced(
            "slack:fence-0", store.ANSWERED, "stored answer"
        )
        assert store.fence(session, theirs, worker="w") is None
        assert store.fence(session, done, worker="w") is None
        assert store.fence(session, ours, worker="other") is None


def test_the_fence_locks_its_row_till_the_transaction_ends(app: App) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("SQLite: the transaction holds the database's one write lock instead")
    entry_id = _row(app, "slack:fence-lock", "w")
    with app.db.uow() as session:
        assert store.fence(session, entry_id, worker="w") is not None
        with app.db.engine.connect() as other, pytest.raises(OperationalError):
            other.execute(text("SELECT id FROM inbox WHERE id = :id FOR UPDATE NOWAIT"),
                          {"id": entry_id})  # fmt: skip
    with app.db.engine.connect() as other:  # committed: free again
        found = other.execute(
            text("SELECT id FROM inbox WHERE id = :id FOR UPDATE NOWAIT"), {"id": entry_id}
        ).scalar_one()
        assert found == entry_id
