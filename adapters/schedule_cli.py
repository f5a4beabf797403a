"""`align schedule list [--json]`: every schedule, with its next run in UTC and local time."""

from __future__ import annotations

import json

import click

from adapters.settings import Settings


@click.group()
def schedule() -> None:
    """Inspect the scheduled digests."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_schedules(as_json: bool) -> None:
    """Every schedule with its next run in UTC and in its own time zone."""
    from adapters.bootstrap import build
    from bot.schedules import list_all

    app = build(Settings())
    with app.db.uow() as session:
        rows = list_all(session, app.clock.now())
    app.db.dispose()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("No schedules. In a channel: digest weekly mon 09:00 tz:Europe/Berlin")
        return
    for row in rows:
        where = f"{row['workspace']} #{row['channel']} ({row['platform']})"
        rule = f"{row['kind']} every {row['day']} {row['at']} {row['tz']}"
        if row["enabled"]:
            when = f"next {row['next_run_utc']} UTC = {row['next_run_local']} local"
        else:
            when = "off"
        click.echo(f"{where}: {rule} · {when}")
