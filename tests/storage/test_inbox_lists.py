"""The inbox statements that take a list (`claim_queued`'s platforms, `finish_many`'s ids) run on
the raw cursor with the list bound as one value — an array on PostgreSQL, JSON text unpacked by
`json_each` on SQLite (`storage.db.in_list`): each matches exactly the rows an IN of those values
matches, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from adapters.bootstrap import App
from storage import inbox as store
from storage.db import Database
from storage.models import InboxEntry

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def queue(db: Database, *rows: tuple[str, str | None]) -> list[int]:
    """Record a row per (platform, worker): queued without a worker, claimed with one."""
    ids = []
    with db.uow() as session:
        for number, (platform, worker) in enumerate(rows):
            until = NOW + timedelta(minutes=1) if worker else None
            found = store.record(
                session,
                platform=platform,
                key=f"k{number}",
                payload=f"p{number}",
                worker=worker,
                now=NOW,
                until=until,
            )
            assert found is not None
            ids.append(found)
    return ids


def test_claim_queued_takes_the_oldest_queued_rows_of_the_platforms_given(app: App) -> None:
    slack_1, teams, claimed, slack_2, other, slack_3 = queue(
        app.db,
        ("slack", None),
        ("teams", None),
        ("slack", "web-1"),
        ("slack", None),
        ("discord", None),
        ("slack", None),
    )
    until = NOW + timedelta(minutes=5)
    with app.db.uow() as session:
        taken = store.claim_queued(
            session, worker="w", until=until, platforms=["slack", "teams"], limit=3
        )
    assert taken == [
        store.Unfinished(slack_1, "slack", store.RECEIVED, "p0", None, 1),
        store.Unfinished(teams, "teams", store.RECEIVED, "p1", None, 1),
        store.Unfinished(slack_2, "slack", store.RECEIVED, "p3", None, 1),
    ]
    with app.db.uow() as session:
        assert store.claim_queued(session, worker="w", until=until, platforms=[], limit=9) == []
        rest = store.claim_queued(session, worker="w", until=until, platforms=["slack"], limit=9)
        assert [row.id for row in rest] == [slack_3]
        held = session.execute(
            select(InboxEntry.id, InboxEntry.claimed_by, InboxEntry.claimed_until)
            .where(InboxEntry.claimed_by == "w")
            .order_by(InboxEntry.id)
        ).all()
    assert [tuple(row) for row in held] == [
        (row_id, "w", until) for row_id in (slack_1, teams, slack_2, slack_3)
    ]
    assert {claimed, other}.isdisjoint(row[0] for row in held)


def test_finish_many_finishes_only_the_listed_rows_the_worker_holds(app: App) -> None:
    mine_1, mine_2, theirs, mine_3, unlisted = queue(
        app.db, ("slack", "w"), ("slack", "w"), ("slack", "x"), ("slack", "w"), ("slack", "w")
    )
    with app.db.uow() as session:
        assert store.finish(session, entry_id=mine_3, worker="w", now=NOW)
    with app.db.uow() as session:
        done = store.finish_many(
            session, entry_ids=[mine_1, theirs, mine_3, mine_2, 10_000], worker="w", now=NOW
        )
        assert store.finish_many(session, entry_ids=[], worker="w", now=NOW) == set()
    assert done == {mine_1, mine_2}
    with app.db.uow() as session:
        statuses = dict(session.execute(select(InboxEntry.id, InboxEntry.status)).all())
    assert statuses == {
        mine_1: store.DONE,
        mine_2: store.DONE,
        theirs: store.RECEIVED,
        mine_3: store.DONE,
        unlisted: store.RECEIVED,
    }
