"""Statements run on the raw cursor (`Prepared`, `PreparedUpsert`) store what `session.execute`
would, and read back what it gives: the columns' own conversions (UTC datetimes, JSON, booleans)
apply, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, bindparam, insert, literal_column, null, select, text, update
from sqlalchemy.exc import DBAPIError

from adapters.bootstrap import App
from bot.common import AUDIT_COLUMNS
from storage.db import Prepared, PreparedUpsert, raw
from storage.models import AuditEntry, Member, Poll

_AUDIT = Prepared(
    lambda _dialect: (
        insert(AuditEntry.__table__)  # type: ignore[arg-type]
        .values({name: bindparam(name) for name in AUDIT_COLUMNS})
        .returning(AuditEntry.__table__.c.id)
    )
)

_POLLS = Poll.__table__
_POLL_FACTS = Prepared(
    lambda _dialect: (
        select(
            _POLLS.c.number,
            _POLLS.c.anonymous,
            _POLLS.c.results_hidden,
            _POLLS.c.closes_at,
            _POLLS.c.closed_at,
            _POLLS.c.result,
        )
        .where(_POLLS.c.workspace == bindparam("workspace"))
        .order_by(_POLLS.c.number)
    )
)


def test_a_prepared_insert_converts_like_sqlalchemy(app: App) -> None:
    at = datetime(2026, 11, 25, 11, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    row = {
        "workspace": "w",
        "channel": "c",
        "actor": "ana",
        "at": at,
        "action": "vote",
        "object_kind": "poll",
        "object_id": 7,
        "object_ref": "P-7",
        "before": None,
        "after": {"choice": ["Ünïcode", 3], "reason": 'it\'s "quoted" %s ?'},
    }
    with app.db.uow() as session:
        first = _AUDIT.run(session, row)
        second = _AUDIT.run(session, row | {"after": None, "actor": "ben"})
    assert first is not None and second is not None and first[0] != second[0]
    with app.db.uow() as session:
        stored = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [e.actor for e in stored] == ["ana", "ben"]
    assert stored[0].at == at.astimezone(UTC) and stored[0].at.tzinfo is not None
    assert stored[0].after == row["after"] and stored[0].before is None
    assert stored[1].after is None


def test_a_prepared_upsert_inserts_then_updates(app: App) -> None:
    seen = PreparedUpsert(Member, ("workspace", "channel", "user"), ("last_seen",))
    first = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    key = {"workspace": "w", "channel": "c", "user": "ana"}
    with app.db.uow() as session:
        seen.run(session, key, {"last_seen": first})
    with app.db.uow() as session:
        seen.run(session, key, {"last_seen": first + timedelta(hours=1)})
        seen.run(session, key | {"user": "ben"}, {"last_seen": first})
    with app.db.uow() as session:
        rows = session.execute(select(Member.user, Member.last_seen).order_by(Member.user)).all()
    assert [tuple(r) for r in rows] == [("ana", first + timedelta(hours=1)), ("ben", first)]


def test_prepared_rows_read_like_sqlalchemy(app: App) -> None:
    """Booleans (integers on SQLite), UTC datetimes (text on SQLite) and JSON come back as
    `session.execute` gives them — what a vote reads its poll with (`rules.read_for_vote`)."""
    now = datetime(2026, 11, 25, 9, 0, 30, 250000, tzinfo=UTC)
    common = {"workspace": "w", "channel": "c", "question": "Q?", "mode": "single"}
    with app.db.uow() as session:
        for number, anonymous, closes_at, result in (
            (1, True, now + timedelta(days=2), {"winner": [0], "note": "Ünïcode"}),
            (2, False, None, None),
        ):
            session.add(
                Poll(
                    **common,
                    number=number,
                    anonymous=anonymous,
                    results_hidden=not anonymous,
                    closes_at=closes_at,
                    closed_at=now if number == 2 else None,
                    result=result,
                    created_by="ana",
                    created_at=now,
                    updated_at=now,
                )
            )
    with app.db.uow() as session:
        rows = _POLL_FACTS.rows(session, {"workspace": "w"})
        expected = [tuple(r) for r in session.execute(_POLL_FACTS._build(""), {"workspace": "w"})]
        assert _POLL_FACTS.rows(session, {"workspace": "nobody"}) == []
    assert rows == expected
    assert rows == [
        (1, True, False, now + timedelta(days=2), None, {"winner": [0], "note": "Ünïcode"}),
        (2, False, True, None, now, None),
    ]
    assert [type(r[1]) for r in rows] == [bool, bool]
    assert rows[0][3].tzinfo is not None and rows[1][4].tzinfo is not None


_POLL_QUESTIONS = Prepared(
    lambda _dialect: (
        select(_POLLS.c.anonymous, _POLLS.c.closes_at, _POLLS.c.question)
        .where(_POLLS.c.workspace == bindparam("workspace"))
        .order_by(_POLLS.c.number)
    )
)


def test_prepared_first_and_column_converts_the_first_row_only(app: App) -> None:
    """A row joined to many (a poll and its options, `rules.read_for_vote`): the first row as
    `rows` gives it, and the one column that differs — one its type does not convert — of each
    row; a column its type converts is refused, rather than given unconverted."""
    now = datetime(2026, 11, 25, 9, 0, 30, 250000, tzinfo=UTC)
    common = {"workspace": "w", "channel": "c", "mode": "single", "created_by": "ana"}
    with app.db.uow() as session:
        for number in (1, 2, 3):
            session.add(
                Poll(
                    **common,
                    number=number,
                    question=f"Q{number}?",
                    anonymous=number == 1,
                    closes_at=now + timedelta(days=number),
                    created_at=now,
                    updated_at=now,
                )
            )
    with app.db.uow() as session:
        first, questions = _POLL_QUESTIONS.first_and_column(session, {"workspace": "w"}, 2)
        rows = _POLL_QUESTIONS.rows(session, {"workspace": "w"})
        nothing = _POLL_QUESTIONS.first_and_column(session, {"workspace": "nobody"}, 2)
        with pytest.raises(ValueError, match="converted"):
            _POLL_QUESTIONS.first_and_column(session, {"workspace": "w"}, 1)
    assert first == rows[0] == (True, now + timedelta(days=1), "Q1?")
    assert type(first[0]) is bool and first[1].tzinfo is not None
    assert questions == ["Q1?", "Q2?", "Q3?"]
    assert nothing == (None, [])


_CLOSE = Prepared(
    lambda _dialect: (
        update(_POLLS)
        .where(_POLLS.c.workspace == bindparam("workspace"))
        .values(closed_at=bindparam("at"))
        .returning(_POLLS.c.number, _POLLS.c.anonymous, _POLLS.c.closed_at)
    )
)
_REOPEN = Prepared(
    lambda _dialect: (
        update(_POLLS).where(_POLLS.c.workspace == bindparam("workspace")).values(closed_at=null())
    )
)


def test_a_prepared_returning_reads_like_sqlalchemy_and_a_plain_update_gives_nothing(
    app: App,
) -> None:
    """RETURNING's columns are converted as a SELECT's are (`rows`), and `run` gives None for a
    statement without rows to give — whether it has rows is known from the statement, not asked
    of the cursor, on both databases."""
    now = datetime(2026, 11, 25, 9, 0, 30, 250000, tzinfo=UTC)
    with app.db.uow() as session:
        session.add(
            Poll(
                workspace="w",
                channel="c",
                mode="single",
                created_by="ana",
                number=1,
                question="Q?",
                anonymous=True,
                created_at=now,
                updated_at=now,
            )
        )
    with app.db.uow() as session:
        assert _REOPEN.run(session, {"workspace": "w"}) is None
        assert _CLOSE.run(session, {"workspace": "nobody", "at": now}) is None
        assert _CLOSE.rows(session, {"workspace": "nobody", "at": now}) == []
        closed = _CLOSE.rows(session, {"workspace": "w", "at": now})
    assert closed == [(1, True, now)]
    assert type(closed[0][1]) is bool and closed[0][2].tzinfo is not None


_FAILS = Prepared(lambda _dialect: select(literal_column("x")).select_from(text("no_such_table")))


def test_a_prepared_statement_fails_with_sqlalchemys_error_and_no_parameters(app: App) -> None:
    """What catches SQLAlchemy's errors (the inbox's "not recorded", errors of the moment)
    catches a raw statement's too; a lost connection is marked as one."""
    with pytest.raises(DBAPIError) as refused, app.db.uow() as session:
        _FAILS.run(session, {})
    assert refused.value.orig is not None
    assert not refused.value.connection_invalidated
    with pytest.raises(DBAPIError), app.db.uow() as session:
        raw(session, "SELECT x FROM no_such_table WHERE x = ?", (1,))


def test_a_prepared_statement_on_a_lost_connection_says_the_connection_was_lost(
    app: App, pg_admin: Engine
) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("SQLite opens a file: there is no connection to lose")
    caught: list[DBAPIError] = []
    with pytest.raises(DBAPIError), app.db.uow() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with pg_admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        try:
            _FAILS.run(session, {})
        except DBAPIError as exc:  # from the statement itself, not the rollback after it
            caught.append(exc)
            raise
    assert caught and caught[0].connection_invalidated
    with app.db.uow() as session:  # the pool gave a working connection again
        assert session.execute(text("SELECT 1")).scalar_one() == 1
