"""`align doctor` prints the start-up check without serving: one line per part, Slack asked who
the tokens belong to (the fake Slack here), exit 1 on anything to fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.cli import main
from adapters.settings import Settings
from storage import Database, secret_check
from storage.migrate import upgrade
from tests.conftest import START
from tests.fakes import FakeSlackApi
from tests.server.process import free_port

# Every variable Settings reads, unset unless a test gives it: the doctor sees only the test's.
UNSET = {field.alias: None for field in Settings.model_fields.values() if field.alias}


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi.running() as running:
        yield running


def doctor(tmp_path: Path, *args: str, **env: str) -> Result:
    url = f"sqlite:///{tmp_path / 'align.db'}"
    upgrade(url)
    variables = {**UNSET, "ALIGN_SECRET": "s", "ALIGN_DATABASE_URL": url, **env}
    return CliRunner().invoke(main, ["doctor", *args], env=variables)


def test_a_healthy_slack_configuration_passes_with_who_the_bot_is(
    tmp_path: Path, fake: FakeSlackApi
) -> None:
    result = doctor(
        tmp_path,
        SLACK_SIGNING_SECRET="sig",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=fake.url,
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "server: role all, listening on http://0.0.0.0:3000"
    assert lines[1].startswith("database: sqlite:///") and lines[1].endswith("(up to date)")
    assert lines[2] == "secret: none stored yet (the first `align serve` stores its fingerprint)"
    assert lines[3] == (
        "slack: HTTP at /slack/events, one workspace; workspace Align Test (T0TEST0001) as "
        "@align (U0BOT00001)"
    )
    assert lines[4] == "teams: off (MICROSOFT_APP_ID not set; /api/messages answers 404)"
    assert lines[-1].startswith("ok:")
    (checked,) = fake.calls_to("auth.test")
    assert checked.token == "xoxb-test"


def test_socket_mode_checks_the_app_token_too(tmp_path: Path, fake: FakeSlackApi) -> None:
    fake.respond_with("apps.connections.open", {"url": "wss://unused.example/link"})
    env = {"SLACK_APP_TOKEN": "xapp-test", "SLACK_BOT_TOKEN": "xoxb-test"}
    result = doctor(tmp_path, "--socket", SLACK_API_URL=fake.url, **env)
    assert result.exit_code == 0, result.output
    assert "slack: Socket Mode, one workspace; workspace Align Test" in result.output
    assert "server: role all, listening on http://127.0.0.1:3000" in result.output
    (opened,) = fake.calls_to("apps.connections.open")
    assert opened.token == "xapp-test"


def test_a_refused_app_token_is_one_sentence(tmp_path: Path, fake: FakeSlackApi) -> None:
    fake.fail_next("apps.connections.open", status=200, error="invalid_auth")
    env = {"SLACK_APP_TOKEN": "xapp-bad", "SLACK_BOT_TOKEN": "xoxb-test"}
    result = doctor(tmp_path, "--socket", SLACK_API_URL=fake.url, **env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "align: Slack refused SLACK_APP_TOKEN (invalid_auth): create an app-level token with the "
        "connections:write scope under the app's Basic Information → App-Level Tokens."
    ]


def test_a_refused_bot_token_is_one_sentence(tmp_path: Path, fake: FakeSlackApi) -> None:
    fake.fail_next("auth.test", status=200, error="token_revoked")
    env = {"SLACK_SIGNING_SECRET": "sig", "SLACK_BOT_TOKEN": "xoxb-old"}
    result = doctor(tmp_path, SLACK_API_URL=fake.url, **env)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("align: Slack refused SLACK_BOT_TOKEN (token_revoked):")


def test_slack_out_of_reach_is_a_problem(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/api/"
    env = {"SLACK_SIGNING_SECRET": "sig", "SLACK_BOT_TOKEN": "xoxb-test"}
    result = doctor(tmp_path, SLACK_API_URL=closed, **env)
    assert result.exit_code == 1
    assert f"problem: slack: could not reach Slack at {closed} to check SLACK_BOT_TOKEN" in (
        result.output
    )


def test_teams_and_a_worker_role_are_described(tmp_path: Path) -> None:
    env = {
        "MICROSOFT_APP_ID": "0b6fe6d1-0000-4000-8000-000000000001",
        "MICROSOFT_APP_PASSWORD": "p",
        "MICROSOFT_APP_TYPE": "SingleTenant",
        "MICROSOFT_APP_TENANT_ID": "50612dbb-0237-4969-b378-8d42590f9c00",
    }
    result = doctor(tmp_path, **env)
    assert result.exit_code == 0, result.output
    assert (
        "teams: app 0b6fe6d1-0000-4000-8000-000000000001 (SingleTenant, tenant "
        "50612dbb-0237-4969-b378-8d42590f9c00) at /api/messages"
    ) in result.output
    worker = doctor(tmp_path, "--role", "worker", **env)
    assert worker.exit_code == 0, worker.output
    assert "server: role worker, listening on http://127.0.0.1:3000" in worker.output
    assert "delivery only (role worker)" in worker.output


def test_a_database_behind_the_code_is_a_problem(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    result = CliRunner().invoke(
        main, ["doctor"], env={**UNSET, "ALIGN_SECRET": "s", "ALIGN_DATABASE_URL": url}
    )
    assert result.exit_code == 1
    assert "at revision 0001" in result.output
    assert "problem: database: behind the code's" in result.output
    assert "run `align migrate`" in result.output


def test_a_secret_other_than_the_databases_is_a_problem(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'align.db'}"
    upgrade(url)
    db = Database(url)
    try:
        secret_check.claim(db, secret_check.fingerprint(b"the-servers"), now=START)
    finally:
        db.dispose()
    same = doctor(tmp_path, ALIGN_SECRET="the-servers")
    assert same.exit_code == 0, same.output
    assert "secret: ALIGN_SECRET is the one this database is used with" in same.output
    other = doctor(tmp_path, ALIGN_SECRET="a-typo")
    assert other.exit_code == 1
    assert "secret: ALIGN_SECRET differs from the database's" in other.output
    assert "problem: secret: ALIGN_SECRET is not the secret this database is used with" in (
        other.output
    )
    assert "secret_fingerprints" not in other.output
    db = Database(url)
    try:  # the doctor only reads
        assert secret_check.stored(db) == secret_check.fingerprint(b"the-servers")
    finally:
        db.dispose()
