"""Migration 0009 (poll features) on a database that already has polls and ballots: existing
polls keep behaving as before (no new flag set), and its downgrade gives back every poll, option
and ballot choice — dropping only the reasons and series it added."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, create_engine, text

from bot.context import Actor
from storage.db import normalize_url
from storage.migrate import current, downgrade, upgrade
from storage.types import UTCDateTime
from tests.conftest import opened

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def run(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            stmt = text(sql)
            if "at" in params:
                stmt = stmt.bindparams(bindparam("at", type_=UTCDateTime()))
            result = conn.execute(stmt, params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_existing_polls_survive_the_upgrade_and_the_downgrade(db_url: str) -> None:
    upgrade(db_url, "0005")
    run(
        db_url,
        "INSERT INTO polls (workspace, channel, number, question, kind, mode, anonymous, "
        "created_by, created_at, updated_at) VALUES ('local', 'general', 1, 'Lunch?', 'poll', "
        "'multi', false, 'pm', :at, :at)",
        at=AT,
    )
    (poll_id,) = run(db_url, "SELECT id FROM polls")[0]
    for position, option in enumerate(("Pizza", "Sushi"), start=1):
        run(
            db_url,
            "INSERT INTO poll_options (poll_id, position, text) VALUES (:poll, :pos, :text)",
            poll=poll_id,
            pos=position,
            text=option,
        )
    run(
        db_url,
        "INSERT INTO ballots (id, poll_id, voter_key, choice) "
        "VALUES ('b1', :poll, 'ana', '[0, 1]')",
        poll=poll_id,
    )
    run(db_url, "INSERT INTO counters (workspace, kind, last) VALUES ('local', 'P', 1)")
    upgrade(db_url)
    with opened(db_url) as app:
        pm = Actor("local", "general", "pm")
        res = app.engine.handle(pm, "results P-1")
        assert res.ok, res.error
        assert res.data["counts"] == {"Pizza": 1, "Sushi": 1}
        assert (res.data["public"], res.data["results"]) == (False, "live")
        assert app.engine.handle(pm, "vote P-1 1 | reasons now exist").ok
        assert app.engine.handle(pm, 'poll "Pulse" "A" "B" closes:2d every:week').ok

    downgrade(db_url, "0009")
    downgrade(db_url, "-1")  # this revision's own downgrade
    assert current(db_url) != "0009"
    assert sorted(run(db_url, "SELECT number, question FROM polls")) == [
        (1, "Lunch?"),
        (2, "Pulse"),
    ]
    assert sorted(run(db_url, "SELECT voter_key FROM ballots")) == [("ana",), ("pm",)]
    assert len(run(db_url, "SELECT id FROM poll_options")) == 4
    upgrade(db_url)  # and up again
