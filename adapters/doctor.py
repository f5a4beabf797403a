"""`align doctor`: the start-up check of `align serve`, printed, without serving.

Same flags as `serve`, same decisions (adapters/preflight.py), plus what serve learns only by
starting: whether the database answers and is migrated, whether ALIGN_SECRET is the one the
database is used with, and whether Slack accepts the app token
for Socket Mode. Exit status 0 when all is well, 1 on anything to fix — usable as a deploy step
(`align doctor && systemctl restart align`) or a container's pre-start check.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from adapters.preflight import Plan, plan, verify
from adapters.server import serve_options
from adapters.settings import Settings


def database_line(url: str) -> tuple[str, str]:
    """(`database: … at revision …`, a problem or "")."""
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from storage.migrate import alembic_config, current

    shown = make_url(url).render_as_string(hide_password=True)
    revision = current(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if revision == head:
        return f"database: {shown} at revision {revision} (up to date)", ""
    line = f"database: {shown} at revision {revision or 'none'}"
    return line, f"database: behind the code's {head}: run `align migrate` (serve also does it)"


def secret_line(settings: Settings) -> tuple[str, str]:
    """(`secret: …`, a problem or ""): ALIGN_SECRET against the fingerprint the database holds,
    as `align serve` compares it (adapters/bootstrap.py `check_secret`); read only."""
    from adapters.bootstrap import SECRET_MISMATCH, secret_fingerprint
    from storage import Database, secret_check

    db = Database(settings.database_url, connect_timeout=settings.db_connect_timeout)
    try:
        held = secret_check.stored(db)
    finally:
        db.dispose()
    if held is None:
        return "secret: none stored yet (the first `align serve` stores its fingerprint)", ""
    if held == secret_fingerprint(settings):
        return "secret: ALIGN_SECRET is the one this database is used with", ""
    return "secret: ALIGN_SECRET differs from the database's", f"secret: {SECRET_MISMATCH}"


def server_line(planned: Plan) -> str:
    return f"server: role {planned.role}, listening on http://{planned.host}:{planned.port}"


@click.command()
@serve_options
def doctor(**flags: Any) -> None:
    """Check the configuration, database and platform tokens as `align serve` would."""
    settings = Settings()
    planned = plan(settings, **flags)
    db, db_problem = database_line(settings.database_url)
    # Behind the code's revision the fingerprint's table may not exist yet: serve migrates first.
    secret, secret_problem = ("", "") if db_problem else secret_line(settings)
    report = asyncio.run(verify(settings, planned, check_app_token=True))
    for line in (server_line(planned), db, secret, *report.lines):
        if line:
            click.echo(line)
    problems = [p for p in (db_problem, secret_problem, *report.problems) if p]
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        raise SystemExit(1)
    click.echo("ok: `align serve` would start with this configuration.")
