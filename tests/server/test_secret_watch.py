"""A running process re-checks ALIGN_SECRET: once `align adopt-secret` replaced it, the process
says so in one sentence and asks to stop; a database it cannot read is only a warning.

The watch as every role mounts it, on SQLite and PostgreSQL, one round at a time (the app's
FakeClock starts no loop); tests/server/test_secret_check.py runs it in real processes.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from sqlalchemy import text

from adapters.bootstrap import App, check_secret
from adapters.preflight import ROLES
from adapters.secret_watch import SECRET_REPLACED, SECRET_WATCH
from adapters.server import create_web_app
from adapters.web_keys import STOP, Serving, Stop
from storage import secret_check


def replace_secret(app: App, secret: bytes) -> None:
    """What `align adopt-secret` does with another ALIGN_SECRET."""
    secret_check.replace(app.db, secret_check.fingerprint(secret), now=app.clock.now())


def rename_table(app: App, old: str, new: str) -> None:
    with app.db.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def started(app: App, role: str) -> tuple[web.AppRunner, Stop]:
    web_app = await create_web_app(app, serving=Serving(role=role))
    stop = web_app[STOP] = Stop()  # what `align serve` sets
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    return runner, stop


@pytest.mark.parametrize("role", ROLES)
def test_every_role_stops_once_its_secret_was_replaced(
    app: App, role: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_secret(app)  # the start: stores this process's fingerprint

    async def main() -> None:
        runner, stop = await started(app, role)
        watch = runner.app[SECRET_WATCH]
        try:
            assert await watch.round() is True
            assert not stop.requested.is_set()

            replace_secret(app, b"the-new-secret-0123456789abcdef")
            with caplog.at_level(logging.INFO, logger="align"):
                assert await watch.round() is False
            assert stop.requested.is_set() and stop.failed
        finally:
            await runner.cleanup()

    asyncio.run(main())
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("align")]
    assert said == [(logging.ERROR, SECRET_REPLACED)]
    assert "restart it with the new ALIGN_SECRET" in SECRET_REPLACED


def test_a_database_error_is_a_warning_and_the_next_round_checks_again(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    check_secret(app)

    async def main() -> None:
        runner, stop = await started(app, "web")
        watch = runner.app[SECRET_WATCH]
        try:
            rename_table(app, "secret_fingerprints", "secret_fingerprints_away")
            with caplog.at_level(logging.INFO, logger="align"):
                assert await watch.round() is True
            assert not stop.requested.is_set()
            (warned,) = [r for r in caplog.records if r.name.startswith("align")]
            assert warned.levelno == logging.WARNING
            assert warned.getMessage().startswith(
                "could not re-check ALIGN_SECRET against the database ("
            )

            rename_table(app, "secret_fingerprints_away", "secret_fingerprints")
            assert await watch.round() is True
            replace_secret(app, b"the-new-secret-0123456789abcdef")
            assert await watch.round() is False
            assert stop.failed
        finally:
            await runner.cleanup()

    asyncio.run(main())
