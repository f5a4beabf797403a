"""A thread's read transactions (`Database.reading`) share one Session, kept between them and
reset after each: nothing of one read — an object, a per-transaction cache in `info`, a
connection — is there in the next, which sees what was committed meanwhile."""

from __future__ import annotations

import threading

from sqlalchemy import select

from storage.db import Database
from storage.models import Counter


def test_a_threads_reads_share_one_session_reset_between_them(migrated_db_url: str) -> None:
    db = Database(migrated_db_url)
    try:
        with db.uow() as session:
            session.add(Counter(workspace="w", kind="D", last=1))
        with db.reading(), db.uow() as first:
            assert first.scalars(select(Counter)).one().last == 1
            first.info["a cache of this transaction"] = True
        with db.uow() as session:  # a write in between
            session.get_one(Counter, ("w", "D")).last = 2
        with db.reading(), db.uow() as second:
            assert second is first
            assert len(second.identity_map) == 0
            assert second.info == {}
            assert second.scalars(select(Counter)).one().last == 2  # not the object read before
    finally:
        db.dispose()


def test_a_read_inside_a_read_and_a_read_on_another_thread_have_sessions_of_their_own(
    migrated_db_url: str,
) -> None:
    db = Database(migrated_db_url)
    others: list[object] = []

    def elsewhere() -> None:
        with db.reading(), db.uow() as session:
            others.append(session)

    try:
        with db.reading(), db.uow() as outer:
            with db.uow() as inner:
                assert inner is not outer
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
        with db.reading(), db.uow() as again:  # the outer one is kept, not the inner
            assert again is outer
        assert others and others[0] is not outer
        with db.uow() as write:  # a write transaction is a session of its own
            assert write is not outer
    finally:
        db.dispose()
