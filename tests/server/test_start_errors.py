"""Every misconfiguration of a real `align serve` ends in one sentence and a non-zero exit, before
anything is stored; the traceback appears only with `-v`. Slack's opinion of the tokens is asked
at start (`auth.test`, `apps.connections.open`, at SLACK_API_URL: the fake here)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.fakes import FakeSlackApi
from tests.server.process import align, free_port

SECRET = {"ALIGN_SECRET": "test-secret"}


def one_sentence(output: str) -> str:
    """The whole output must be one `align: …` line; returns the sentence."""
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("align: "), output
    return lines[0].removeprefix("align: ")


def db(tmp_path: Path) -> dict[str, str]:
    return {"ALIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'align.db'}"}


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        pytest.param(("serve", "--socket"), {}, "SLACK_APP_TOKEN", id="socket without Slack"),
        pytest.param(
            ("serve",),
            {"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1"},
            "--socket",
            id="an app token but no --socket",
        ),
        pytest.param(
            ("serve",),
            {
                "MICROSOFT_APP_ID": "id",
                "MICROSOFT_APP_PASSWORD": "p",
                "MICROSOFT_APP_TYPE": "SingleTenant",
            },
            "MICROSOFT_APP_TENANT_ID",
            id="SingleTenant without a tenant",
        ),
        pytest.param(
            ("serve",), {"ALIGN_PORT": "eighty"}, "ALIGN_PORT", id="a port that is no number"
        ),
    ],
)
def test_a_misconfigured_serve_says_one_sentence_exits_1_and_stores_nothing(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], names: str
) -> None:
    with align(tmp_path, *args, **SECRET, **db(tmp_path), **env) as run:
        assert run.wait(timeout=60) == 1
    assert names in one_sentence(run.output)
    assert not (tmp_path / "align.db").exists()


def test_an_unreachable_database_is_one_sentence_and_the_traceback_is_for_minus_v(
    tmp_path: Path,
) -> None:
    env = {**SECRET, "ALIGN_DATABASE_URL": f"postgresql://align@127.0.0.1:{free_port()}/align"}
    with align(tmp_path, "serve", **env) as run:
        assert run.wait(timeout=60) == 1
    sentence = one_sentence(run.output)
    assert sentence.startswith("The database at ALIGN_DATABASE_URL could not be used")
    assert "Connection refused" in sentence or "connection failed" in sentence
    with align(tmp_path, "-v", "serve", **env) as verbose:
        assert verbose.wait(timeout=60) == 1
    assert "Traceback (most recent call last)" in verbose.output
    assert verbose.output.strip().splitlines()[-1] == f"align: {sentence}"


def test_a_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with align(tmp_path, "serve", "--port", str(port), **SECRET, **db(tmp_path)) as run:
            assert run.wait(timeout=60) == 1
    # The start-up lines come first (logged); the failure is the last line, and the only one.
    last = run.output.strip().splitlines()[-1]
    assert last == (
        f"align: Cannot listen on 127.0.0.1:{port}: the address is already in use (another "
        "`align serve`?); set ALIGN_PORT / --port or ALIGN_HOST / --host."
    )
    assert "Traceback" not in run.output


def slack(fake: FakeSlackApi, **extra: str) -> dict[str, str]:
    return {
        "SLACK_SIGNING_SECRET": "sig",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": fake.url,
        **extra,
    }


def test_a_bot_token_slack_refuses_stops_serve_before_it_listens(tmp_path: Path) -> None:
    with FakeSlackApi.running() as fake:
        fake.fail_next("auth.test", status=200, error="invalid_auth")
        with align(tmp_path, "serve", **SECRET, **db(tmp_path), **slack(fake)) as run:
            assert run.wait(timeout=60) == 1
        assert [c.method for c in fake.failed_calls] == ["auth.test"]
    last = run.output.strip().splitlines()[-1]
    assert last.startswith("align: Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the Bot")
    assert "Align listening" not in run.output
    assert "Traceback" not in run.output


def test_an_app_token_slack_refuses_stops_socket_mode_with_one_sentence(tmp_path: Path) -> None:
    with FakeSlackApi.running() as fake:
        fake.fail_next("apps.connections.open", status=200, error="invalid_auth")
        env = slack(fake, SLACK_APP_TOKEN="xapp-revoked")
        with align(tmp_path, "serve", "--socket", **SECRET, **db(tmp_path), **env) as run:
            assert run.wait(timeout=60) == 1
        (refused,) = fake.failed_calls
        assert (refused.method, refused.token) == ("apps.connections.open", "xapp-revoked")
    last = run.output.strip().splitlines()[-1]
    assert last.startswith("align: Slack refused SLACK_APP_TOKEN (invalid_auth): create an app")
    assert "Traceback" not in run.output
    assert run.output.count("invalid_auth") == 1  # said once, not retried every ten seconds


def test_slack_out_of_reach_at_start_is_a_warning_and_serve_runs(tmp_path: Path) -> None:
    env = {
        "SLACK_SIGNING_SECRET": "sig",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",
        "ALIGN_PORT": str(free_port()),
    }
    with align(tmp_path, "serve", **SECRET, **db(tmp_path), **env) as run:
        run.wait_listening()
        run.send(signal.SIGTERM)
        assert run.wait(timeout=30) == 0
    (warning,) = [line for line in run.output.splitlines() if "could not reach Slack" in line]
    assert "WARNING" in warning and "SLACK_BOT_TOKEN" in warning
    assert "Traceback" not in run.output
