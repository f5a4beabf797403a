"""In `align chat`, a digest scheduled a minute ahead appears in the terminal on time; and
`align schedule list` shows every schedule with its next run in UTC and local time."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from click.testing import CliRunner

from adapters.bootstrap import App
from adapters.cli import main
from adapters.console.repl import Console, console_actor
from adapters.console.runtime import start_console_runtime
from bot.clock import FakeClock
from tests.conftest import Chat


def test_a_digest_a_minute_ahead_appears_in_the_terminal_on_time(
    app: App, clock: FakeClock
) -> None:
    out = io.StringIO()
    console = Console(app.engine, console_actor("local", "general", "ana"), out=out)
    runtime = start_console_runtime(app, console, start=False)
    try:
        console.line("item SSO lane:now")
        console.line("digest weekly wed 09:01")  # the clock says Wednesday 09:00 UTC
        typed = out.getvalue()
        assert runtime.tick() == 0
        clock.advance(timedelta(seconds=59))
        assert runtime.tick() == 0
        assert out.getvalue() == typed
        clock.advance(timedelta(seconds=1))
        assert runtime.tick() == 1
        printed = out.getvalue()[len(typed) :]
        assert printed.startswith("Roadmap digest")
        assert "I-1" in printed and "SSO" in printed
        assert runtime.tick() == 0
    finally:
        runtime.stop()


def test_a_digest_for_another_channel_says_where_it_belongs(app: App, clock: FakeClock) -> None:
    out = io.StringIO()
    console = Console(app.engine, console_actor("local", "general", "ana"), out=out, as_json=True)
    runtime = start_console_runtime(app, console, start=False)
    try:
        Chat(app, channel="roadmap").ok("digest weekly wed 09:00")
        clock.advance(timedelta(days=7))
        assert runtime.tick() == 1
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert lines[0]["text"] == "── in #roadmap (local) ──"
        assert lines[1]["kind"] == "digest"
    finally:
        runtime.stop()


def test_schedule_list_shows_next_runs_in_utc_and_local(
    migrated_sqlite_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALIGN_DATABASE_URL", migrated_sqlite_url)
    monkeypatch.chdir(
        str(__import__("pathlib").Path(migrated_sqlite_url.removeprefix("sqlite:///")).parent)
    )
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["run", "digest weekly mon 09:00 tz:Europe/Berlin", "--channel", "roadmap"],
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(main, ["schedule", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["channel"], row["day"], row["at"], row["tz"]) == (
        "roadmap",
        "mon",
        "09:00",
        "Europe/Berlin",
    )
    # The CLI runs on the real clock: Berlin is UTC+1 or UTC+2 depending on the season.
    assert row["next_run_local"][10:] in ("T09:00:00+01:00", "T09:00:00+02:00")
    assert row["next_run_utc"][10:] in ("T08:00:00+00:00", "T07:00:00+00:00")
    text = runner.invoke(main, ["schedule", "list"])
    assert "every mon 09:00 Europe/Berlin" in text.output and "UTC" in text.output
