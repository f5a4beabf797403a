"""Migrations from an empty database to head and back, on SQLite and PostgreSQL; the migrated
schema is exactly what the models say (an `alembic check`), and `build` migrates by itself."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from adapters.bootstrap import build
from storage.db import normalize_url
from storage.migrate import alembic_config, current, downgrade, upgrade
from storage.models import Base
from tests.conftest import make_settings

MODEL_TABLES = set(Base.metadata.tables)


def head() -> str:
    found = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert found is not None
    return found


def tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def ours(name: str | None, type_: str, _parent: object) -> bool:
    """Compare our models' tables; slack-sdk's store tables (migration 0002) follow slack-sdk's
    own metadata and are checked against it in tests/slack."""
    return type_ != "table" or name in MODEL_TABLES


def schema_differences(url: str) -> list[object]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": ours}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_the_models_cover_every_table_the_product_needs() -> None:
    needed = {
        "decisions", "decision_tags", "items", "item_tags", "item_scores", "questions", "polls",
        "poll_options", "ballots", "participation", "postings", "audit", "counters",
        "channels", "members", "profiles", "outbox", "schedules", "schedule_runs", "webhooks",
        "conversation_refs", "processed_events", "inbox", "pending_ballots",
    }  # fmt: skip
    assert needed <= MODEL_TABLES


def test_upgrade_from_empty_to_head_matches_the_models(db_url: str) -> None:
    assert current(db_url) is None
    upgrade(db_url)
    assert current(db_url) == head()
    assert tables(db_url) >= MODEL_TABLES
    assert schema_differences(db_url) == []


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    upgrade(db_url)
    downgrade(db_url, "base")
    assert current(db_url) is None
    assert tables(db_url) == set()
    upgrade(db_url)
    assert current(db_url) == head()
    assert schema_differences(db_url) == []


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    assert current(db_url) == head()


def test_build_applies_migrations_by_itself(db_url: str) -> None:
    app = build(make_settings(db_url))
    try:
        assert current(db_url) == head()
        assert tables(db_url) >= MODEL_TABLES
        from bot.context import Actor

        reply = app.engine.handle(Actor("local", "general", "pm"), "decide Works on a fresh db")
        assert reply.ok and reply.data["id"] == "D-1"
    finally:
        app.db.dispose()


def test_signoff_revision_keeps_every_decision_up_and_down(db_url: str) -> None:
    """0006 adds sign-off to decisions; recorded decisions and their tags survive the upgrade
    (as decisions without sign-off) and the downgrade (losing only the sign-off)."""
    from sqlalchemy import text

    before = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision("0006")
    assert before is not None and isinstance(before.down_revision, str)
    previous = before.down_revision
    upgrade(db_url, previous)
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO decisions (id, workspace, channel, number, title, status, "
                    "created_by, created_at, updated_at) VALUES (1, 'local', 'general', 1, "
                    "'Use Postgres', 'accepted', 'pm', '2026-11-25 09:00:00', "
                    "'2026-11-25 09:00:00')"
                )
            )
            conn.execute(text("INSERT INTO decision_tags (decision_id, tag) VALUES (1, 'db')"))
        upgrade(db_url)
        with engine.begin() as conn:
            row = conn.execute(text("SELECT title, rule, due_at FROM decisions")).one()
            assert tuple(row) == ("Use Postgres", None, None)
            conn.execute(
                text(
                    'INSERT INTO stances (decision_id, "user", stance, at) '
                    "VALUES (1, 'ana', 'agree', '2026-11-25 09:00:00')"
                )
            )
        downgrade(db_url, previous)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT title FROM decisions")).scalars().all() == [
                "Use Postgres"
            ]
            assert conn.execute(text("SELECT tag FROM decision_tags")).scalars().all() == ["db"]
    finally:
        engine.dispose()
    assert current(db_url) == previous
