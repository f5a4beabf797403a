"""Shared fixtures: a migrated database on SQLite and (when configured) PostgreSQL, the app wired
through the real composition root with a fake clock, and a helper to talk to it as people do.

PostgreSQL runs when ALIGN_TEST_POSTGRES_URL is set (CI sets it); each test gets its own schema,
so tests and xdist workers never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, func, select, text

from adapters.bootstrap import App, build
from adapters.settings import Settings
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply

PG_URL = os.environ.get("ALIGN_TEST_POSTGRES_URL", "")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday


def _pg_schema_url(schema: str) -> str:
    joiner = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'align.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL half skipped: set ALIGN_TEST_POSTGRES_URL to run it")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'align.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def count_rows(app: App, model: type) -> int:
    """How many rows a table holds (what a request stored, or did not)."""
    with app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def make_settings(url: str, **extra: str) -> Settings:
    values = {"ALIGN_DATABASE_URL": url, "ALIGN_SECRET": "test-secret", **extra}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def app(db_url: str, clock: FakeClock) -> Iterator[App]:
    built = build(make_settings(db_url), clock=clock)
    yield built
    built.db.dispose()


@dataclass
class Chat:
    """Talk to the engine as a person in a channel: `chat.say("decide X", user="ana")`."""

    app: App
    workspace: str = "local"
    channel: str = "general"
    user: str = "pm"

    def actor(
        self,
        *,
        user: str | None = None,
        channel: str | None = None,
        workspace: str | None = None,
        is_admin: bool = False,
    ) -> Actor:
        return Actor(
            workspace=workspace or self.workspace,
            channel=channel or self.channel,
            user=user or self.user,
            is_admin=is_admin,
        )

    def say(
        self,
        line: str,
        *,
        user: str | None = None,
        channel: str | None = None,
        workspace: str | None = None,
        is_admin: bool = False,
    ) -> Reply:
        actor = self.actor(user=user, channel=channel, workspace=workspace, is_admin=is_admin)
        reply = self.app.engine.handle(actor, line)
        assert reply.kind != "internal", f"internal error for {line!r}: {reply.error}"
        return reply

    def ok(self, line: str, **who: str) -> Reply:
        reply = self.say(line, **who)  # type: ignore[arg-type]
        assert reply.ok, f"{line!r} failed: {reply.error}"
        return reply

    def fails(self, line: str, **who: str) -> Reply:
        reply = self.say(line, **who)  # type: ignore[arg-type]
        assert not reply.ok, f"{line!r} should have failed but said: {reply.text}"
        return reply


@pytest.fixture
def chat(app: App) -> Chat:
    return Chat(app)
