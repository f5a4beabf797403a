"""Shared fixtures: a migrated database on SQLite and (when configured) PostgreSQL, the app wired
through the real composition root with a fake clock, and a helper to talk to it as people do.

PostgreSQL runs when ALIGN_TEST_POSTGRES_URL is set (CI sets it); each test gets its own schema,
so tests and xdist workers never see each other's rows.

`db_url` is an empty database (for what must start from nothing: migrations, processes that
migrate on start). `migrated_db_url`, and `app` on top of it, is one at the newest migration,
made without running Alembic per test: each xdist worker migrates one template with the real
migrations once (`storage.upgrade`), then every test gets a copy of it — the SQLite file copied,
the PostgreSQL schema re-created from `pg_dump` of the template under the test's own schema name.
Alembic per test cost 0.2-0.4 s on PostgreSQL (about 0.1 s for the copy) and 0.05 s on SQLite,
over some 300 tests each; tests/storage/test_migrated_template.py checks that a copy is the
same schema as a fresh migration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from adapters import runtime
from adapters.bootstrap import App, build
from adapters.settings import Settings
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply
from storage import upgrade

PG_URL = os.environ.get("ALIGN_TEST_POSTGRES_URL", "")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker under `--dist loadgroup`, xdist puts a test in its `xdist_group` by
    renaming it `…@group`; if that did not happen (pytest 9.2 with xdist 3.8 ignored it
    silently) a grouped module runs split over the workers: fail instead."""
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"xdist_group marks not applied (pytest/xdist versions?): {lost}")


def _pg_schema_url(schema: str) -> str:
    joiner = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """One AUTOCOMMIT engine per worker for creating and dropping the tests' schemas."""
    if not PG_URL:
        pytest.skip("PostgreSQL half skipped: set ALIGN_TEST_POSTGRES_URL to run it")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


TEMPLATE_SCHEMA = "__template_schema__"
"""Stands for the schema's name in the dumped template."""


def _pg_dump_schema(schema: str) -> str | None:
    """`pg_dump` of one schema (DDL, and its rows as INSERTs), or None without a pg_dump that
    works here (then each test migrates its own schema, as before)."""
    url = make_url(PG_URL)
    if shutil.which("pg_dump") is None:
        warnings.warn("no pg_dump: each PostgreSQL test migrates its own schema", stacklevel=1)
        return None
    command = ["pg_dump", "--schema", schema, "--inserts", "--no-owner", "--no-privileges"]
    command += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    command += ["-U", url.username or "postgres", "-d", url.database or "postgres"]
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        warnings.warn(f"pg_dump failed; each test migrates: {done.stderr}", stacklevel=1)
        return None
    lines = done.stdout.replace(schema, TEMPLATE_SCHEMA).splitlines()
    # psql meta-commands (`\restrict`) are not SQL; the test's schema exists already.
    kept = [line for line in lines if not line.startswith("\\")]
    kept = [line for line in kept if line != f"CREATE SCHEMA {TEMPLATE_SCHEMA};"]
    return "\n".join(kept)


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine) -> str | None:
    """The SQL that builds a migrated schema, from one schema migrated by Alembic."""
    schema = f"tmpl_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        upgrade(_pg_schema_url(schema))
        return _pg_dump_schema(schema)
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated by Alembic, once per worker."""
    path = tmp_path_factory.mktemp("template") / "align.db"
    upgrade(f"sqlite:///{path}")
    assert not path.with_name("align.db-wal").exists()  # the whole database is in the file
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'align.db'}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def migrated_db_url(request: pytest.FixtureRequest, db_url: str) -> str:
    """`db_url` brought to the newest migration: a copy of the worker's migrated template."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        shutil.copyfile(request.getfixturevalue("sqlite_template"), url.database)
        return db_url
    ddl: str | None = request.getfixturevalue("pg_template")
    if ddl is None:
        upgrade(db_url)
        return db_url
    schema = db_url.rsplit("search_path%3D", 1)[1]
    admin: Engine = request.getfixturevalue("pg_admin")
    with admin.connect() as conn:
        conn.connection.driver_connection.execute(ddl.replace(TEMPLATE_SCHEMA, schema))  # type: ignore[union-attr]
    return db_url


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty SQLite database."""
    return f"sqlite:///{tmp_path / 'align.db'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, sqlite_template: Path) -> str:
    """An SQLite database at the newest migration (a copy of the worker's template)."""
    shutil.copyfile(sqlite_template, sqlite_url.removeprefix("sqlite:///"))
    return sqlite_url


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


@contextmanager
def opened(url: str, **settings: str) -> Iterator[App]:
    """An app on a database migrated already (by another process, or the test), closed after:
    for reading what processes under test stored, or a migration left."""
    built = build(make_settings(url, **settings), migrate=False)
    try:
        yield built
    finally:
        built.db.dispose()


@pytest.fixture
def app(migrated_db_url: str, clock: FakeClock) -> Iterator[App]:
    # Migrated already (the worker's template, made by the real migrations): no Alembic check.
    built = build(make_settings(migrated_db_url), clock=clock, migrate=False)
    yield built
    built.db.dispose()


def paced_by_the_clock(app: App, web_app: web.Application | None = None) -> None:
    """Edits of one live message still keep UPDATE_SPACING (1 s) apart, and posts to one
    channel its platform's pace, but on the app's FakeClock: the wait for the next slot moves
    the clock instead of sleeping in real time (as tests/time drives the dispatcher). For tests
    that are not about the pace, which others check in real time
    (tests/polls/test_live_updates_across_replicas.py, tests/server/test_replicas.py)."""
    clock = app.clock
    assert isinstance(clock, FakeClock)

    async def wait(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    app.postings.sleep = wait
    if web_app is not None and runtime.RUNTIME_KEY in web_app:
        web_app[runtime.RUNTIME_KEY].dispatcher.sleep = wait


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
