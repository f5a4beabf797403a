"""`claim_queued` and `finish_many` (lists bound as one value, `storage.db.in_list`) at the
edges an IN of bound values took: ids beyond the rows' (and beyond int4), repeated ids, one
platform or several, platforms nobody queued on; and on PostgreSQL two workers claiming at
once never take the same row (SKIP LOCKED)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.bootstrap import App
from storage import inbox as store
from storage.db import Database
from storage.models import InboxEntry
from tests.storage.test_inbox_lists import NOW, queue

UNTIL = NOW + timedelta(minutes=5)


def test_finish_many_with_repeated_ids_and_ids_no_row_has(app: App) -> None:
    first, second, third = queue(app.db, ("slack", "w"), ("teams", "w"), ("slack", "w"))
    with app.db.uow() as session:
        done = store.finish_many(
            session,
            entry_ids=[second, second, 0, -1, 2**31 - 1, first, first],
            worker="w",
            now=NOW,
        )
    assert done == {first, second}
    with app.db.uow() as session:
        assert store.finish_many(session, entry_ids=[third], worker="w", now=NOW) == {third}
        assert store.finish_many(session, entry_ids=[third], worker="w", now=NOW) == set()


def test_claim_queued_with_one_platform_many_platforms_and_none_queued(app: App) -> None:
    ids = queue(app.db, *[(platform, None) for platform in ("teams", "slack") * 4])
    with app.db.uow() as session:
        assert (
            store.claim_queued(session, worker="w", until=UNTIL, platforms=["discord"], limit=5)
            == []
        )
        teams = store.claim_queued(session, worker="w", until=UNTIL, platforms=["teams"], limit=2)
        assert [row.id for row in teams] == ids[0:4:2]
        both = store.claim_queued(
            session, worker="w", until=UNTIL, platforms=["teams", "slack", "teams"], limit=100
        )
        assert [row.id for row in both] == [i for i in ids if i not in ids[0:4:2]]
        assert (
            store.claim_queued(
                session, worker="w", until=UNTIL, platforms=["teams", "slack"], limit=100
            )
            == []
        )


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_claiming_at_once_never_take_the_same_row(migrated_db_url: str) -> None:
    db = Database(migrated_db_url, pool_size=4, max_overflow=0)
    try:
        ids = queue(db, *[("slack", None)] * 40)
        taken: dict[str, list[int]] = {"a": [], "b": []}
        ready = threading.Barrier(2)
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                for _ in range(20):
                    with db.uow() as session:
                        ready.wait(timeout=10)
                        rows = store.claim_queued(
                            session, worker=name, until=UNTIL, platforms=["slack"], limit=3
                        )
                        taken[name].extend(row.id for row in rows)
                        ready.wait(timeout=10)  # both hold their rows, uncommitted
            except BaseException as exc:
                errors.append(exc)
                ready.abort()

        threads = [threading.Thread(target=worker, args=(name,)) for name in taken]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert set(taken["a"]).isdisjoint(taken["b"])
        assert sorted(taken["a"] + taken["b"]) == ids
        with db.uow() as session:
            holders = dict(session.execute(select(InboxEntry.id, InboxEntry.claimed_by)).all())
        assert {i for i, who in holders.items() if who == "a"} == set(taken["a"])
    finally:
        db.dispose()
