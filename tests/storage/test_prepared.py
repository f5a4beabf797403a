"""Statements run on the raw cursor (`Prepared`, `PreparedUpsert`) store what `session.execute`
would: the columns' own conversions (UTC datetimes, JSON) apply, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import bindparam, insert, select

from adapters.bootstrap import App
from bot.common import AUDIT_COLUMNS
from storage.db import Prepared, PreparedUpsert
from storage.models import AuditEntry, Member

_AUDIT = Prepared(
    lambda _dialect: (
        insert(AuditEntry.__table__)  # type: ignore[arg-type]
        .values({name: bindparam(name) for name in AUDIT_COLUMNS})
        .returning(AuditEntry.__table__.c.id)
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
