"""The `align` command itself: `chat --json` speaks JSON Lines over a pipe, `run` exits 0 or 1,
and both apply migrations to the database in ALIGN_DATABASE_URL on their own."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.cli import main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ALIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "ALIGN_SECRET": "s"}


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


SCRIPT = """\
decide Use Postgres | boring owner:@ana tag:infra
# a comment line is skipped
item SSO reach:100 impact:7

:as ben
answer Q-9 yes
:in roadmap
decisions
/align decisions
"""


def test_chat_json_prints_one_object_per_command_in_order(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["chat", "--json", "--user", "pm"], input=SCRIPT, env=env)
    assert result.exit_code == 0, result.output
    lines = json_lines(result.output)
    assert [(line["ok"], line["kind"]) for line in lines] == [
        (True, "decision"),
        (False, "error"),
        (True, "console"),
        (False, "error"),
        (True, "console"),
        (True, "list"),
        (True, "list"),
    ]
    decided, bad_score, as_ben, not_found, moved, here, same = lines
    assert decided["id"] == "D-1" and decided["owner"] == "ana" and decided["tags"] == ["infra"]
    assert decided["text"] == "Recorded D-1: Use Postgres"
    assert bad_score["error"].startswith("Impact 7 is not allowed.")
    assert (
        bad_score["usage"]
        == "Usage: item <title> [reach:N impact:N confidence:N% effort:N] [lane:now|next|later] [tag:x]"
    )
    assert as_ben["text"] == "You are @ben in #general (local)."
    assert not_found["error"] == "Q-9 not found in this channel."
    assert moved["text"] == "You are @ben in #roadmap (local)."
    assert here["decisions"] == [] and same["decisions"] == []  # D-1 lives in #general


def test_chat_json_remembers_between_runs(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(main, ["chat", "--json"], input="decide First\n", env=env)
    result = runner.invoke(main, ["chat", "--json"], input="decide Second\ndecisions\n", env=env)
    second, listed = json_lines(result.output)
    assert second["id"] == "D-2"
    assert [d["id"] for d in listed["decisions"]] == ["D-2", "D-1"]


@pytest.mark.parametrize(
    ("command", "code", "ok"),
    [
        ("decide Ship it", 0, True),
        ("help", 0, True),
        ("decied Ship it", 1, False),
        ("show D-42", 1, False),
        ("score I-1 impact:7", 1, False),
        ('decide "unclosed', 1, False),
    ],
)
def test_run_json_exit_codes(env: dict[str, str], command: str, code: int, ok: bool) -> None:
    result = CliRunner().invoke(main, ["run", command, "--json"], env=env)
    assert result.exit_code == code, result.output
    (reply,) = json_lines(result.output)
    assert reply["ok"] is ok
    assert ("error" in reply) is (not ok)


def test_run_reads_the_same_channel_as_chat(env: dict[str, str]) -> None:
    runner = CliRunner()
    made = runner.invoke(
        main,
        ["run", "decide Use Postgres", "--workspace", "slack:T1", "--channel", "C9", "--json"],
        env=env,
    )
    assert json.loads(made.output)["id"] == "D-1"
    other = runner.invoke(main, ["run", "show D-1", "--channel", "C9", "--json"], env=env)
    assert (
        other.exit_code == 1
        and json.loads(other.output)["error"] == "D-1 not found in this channel."
    )
    same = runner.invoke(
        main, ["run", "show D-1", "--workspace", "slack:T1", "--channel", "#C9"], env=env
    )
    assert same.exit_code == 0
    assert same.output.splitlines()[0] == "D-1 · Use Postgres"


def test_run_prints_text_with_the_usage_line_on_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["run", "status D-1"], env=env)
    assert result.exit_code == 1
    assert result.output == (
        "✗ Give a decision id and a status.\n"
        "  Usage: status <D-ID> proposed|accepted|rejected|superseded [by:D-ID]\n"
    )


def test_the_installed_align_script_chats_json_over_a_pipe(
    env: dict[str, str], tmp_path: Path
) -> None:
    align = Path(sys.executable).with_name("align")
    done = subprocess.run(
        [str(align), "chat", "--json", "--user", "ana"],
        input="decide Use Postgres\nvote P-1 1\n",
        capture_output=True,
        text=True,
        env={"PATH": str(align.parent), **env},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decided, vote = json_lines(done.stdout)
    assert (
        decided["ok"] is True
        and decided["id"] == "D-1"
        and decided["text"] == "Recorded D-1: Use Postgres"
    )
    assert vote == {
        "ok": False,
        "kind": "error",
        "error": "P-1 not found in this channel.",
        "usage": "Usage: vote <P-ID> <choice>... [| <reason>]",
        "code": "not_found",
        "text": "P-1 not found in this channel.",
    }
