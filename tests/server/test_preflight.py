"""The start-up check decides what `align serve` runs: each half-done configuration is one
sentence naming what to set, and where to listen follows from what is configured (0.0.0.0 only
when a platform needs inbound HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from adapters import priority, server
from adapters.preflight import ConfigError, Plan, plan, verify
from adapters.settings import Settings

SECRET = {"ALIGN_SECRET": "s"}
SLACK_HTTP = {"SLACK_SIGNING_SECRET": "sig", "SLACK_BOT_TOKEN": "xoxb-1"}
SLACK_SOCKET = {"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1"}
INSTALLS = {"SLACK_SIGNING_SECRET": "sig", "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c"}
TEAMS = {"MICROSOFT_APP_ID": "0b6fe6d1-0000-4000-8000-000000000001", "MICROSOFT_APP_PASSWORD": "p"}


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **{**SECRET, **values})  # type: ignore[call-arg]


def planned(values: dict[str, str], **flags: object) -> Plan:
    return plan(settings(**values), **flags)  # type: ignore[arg-type]


# (what is set, serve flags) -> the variable the one sentence must name
HALF_DONE = [
    pytest.param({}, {"socket": True}, "SLACK_APP_TOKEN", id="--socket without Slack"),
    pytest.param(
        {"SLACK_BOT_TOKEN": "xoxb-1"},
        {"socket": True},
        "SLACK_APP_TOKEN",
        id="--socket, bot token only",
    ),
    pytest.param(
        {"SLACK_APP_TOKEN": "xapp-1"},
        {"socket": True},
        "SLACK_BOT_TOKEN",
        id="app token without bot token",
    ),
    pytest.param(
        {"SLACK_BOT_TOKEN": "xoxb-1"},
        {},
        "SLACK_SIGNING_SECRET",
        id="bot token without signing secret",
    ),
    pytest.param(
        {"SLACK_SIGNING_SECRET": "s"}, {}, "SLACK_BOT_TOKEN", id="signing secret without a token"
    ),
    pytest.param(SLACK_SOCKET, {}, "--socket", id="app token without --socket"),
    pytest.param(
        {"SLACK_BOT_TOKEN": "xoxp-1", "SLACK_SIGNING_SECRET": "s"},
        {},
        "xoxb-",
        id="a user token as bot token",
    ),
    pytest.param(
        {"SLACK_APP_TOKEN": "xoxb-2", "SLACK_BOT_TOKEN": "xoxb-1"},
        {"socket": True},
        "xapp-",
        id="a bot token as app token",
    ),
    pytest.param(
        {"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_ID": "1.2"},
        {},
        "SLACK_CLIENT_SECRET",
        id="client id without secret",
    ),
    pytest.param(
        {"MICROSOFT_APP_PASSWORD": "p"}, {}, "MICROSOFT_APP_ID", id="Teams password without app id"
    ),
    pytest.param(
        {**TEAMS, "MICROSOFT_APP_TYPE": "SingleTenant"},
        {},
        "MICROSOFT_APP_TENANT_ID",
        id="SingleTenant without tenant",
    ),
    pytest.param(
        {**TEAMS, "MICROSOFT_APP_TYPE": "UserAssignedMSI"},
        {},
        "MICROSOFT_APP_TENANT_ID",
        id="MSI without tenant",
    ),
    pytest.param(
        {**TEAMS, "MICROSOFT_APP_TYPE": "SingelTenant"},
        {},
        "MICROSOFT_APP_TYPE",
        id="a typo in the app type",
    ),
    pytest.param(
        {**TEAMS, "MICROSOFT_APP_TENANT_ID": "t"},
        {},
        "MICROSOFT_APP_TYPE=SingleTenant",
        id="tenant without type",
    ),
    pytest.param(
        {"MICROSOFT_APP_ID": TEAMS["MICROSOFT_APP_ID"]},
        {},
        "MICROSOFT_APP_PASSWORD",
        id="app id without password",
    ),
    pytest.param(
        TEAMS, {"teams_emulator": True}, "MICROSOFT_APP_ID", id="emulator next to an app id"
    ),
    pytest.param(
        {},
        {"teams_emulator": True, "host": "0.0.0.0"},
        "127.0.0.1",
        id="emulator on a public address",
    ),
]


@pytest.mark.parametrize(("values", "flags", "names"), HALF_DONE)
def test_a_half_done_configuration_is_one_sentence_naming_what_to_set(
    values: dict[str, str], flags: dict[str, object], names: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        planned(values, **flags)
    sentence = str(raised.value)
    assert names in sentence
    assert "\n" not in sentence
    assert sentence.rstrip().endswith((".", ")"))


def test_without_a_secret_nothing_is_planned() -> None:
    with pytest.raises(ConfigError, match="ALIGN_SECRET is not set"):
        plan(Settings(_env_file=None, ALIGN_SECRET=""))  # type: ignore[call-arg]


def test_tokens_are_never_repeated_in_the_sentence() -> None:
    with pytest.raises(ConfigError) as raised:
        planned({"SLACK_BOT_TOKEN": "xoxp-1234-secret-part", "SLACK_SIGNING_SECRET": "s"})
    assert "secret-part" not in str(raised.value)
    assert "xoxp-…" in str(raised.value)


@pytest.mark.parametrize(
    ("values", "flags", "host"),
    [
        pytest.param({}, {}, "127.0.0.1", id="nothing configured"),
        pytest.param(SLACK_SOCKET, {"socket": True}, "127.0.0.1", id="Socket Mode only"),
        pytest.param(SLACK_HTTP, {}, "0.0.0.0", id="Slack over HTTP"),
        pytest.param(
            {**SLACK_SOCKET, **INSTALLS},
            {"socket": True},
            "0.0.0.0",
            id="Socket Mode with installs (OAuth redirect)",
        ),
        pytest.param(TEAMS, {}, "0.0.0.0", id="Teams"),
        pytest.param({}, {"teams_emulator": True}, "127.0.0.1", id="Teams emulator"),
        pytest.param(
            SLACK_HTTP, {"role": "worker"}, "127.0.0.1", id="a worker answers /healthz only"
        ),
        pytest.param({**SLACK_HTTP, "ALIGN_HOST": "10.0.0.5"}, {}, "10.0.0.5", id="ALIGN_HOST"),
        pytest.param({"ALIGN_HOST": "10.0.0.5"}, {"host": "::1"}, "::1", id="--host wins"),
    ],
)
def test_the_server_listens_publicly_only_when_a_platform_needs_inbound_http(
    values: dict[str, str], flags: dict[str, object], host: str
) -> None:
    assert planned(values, **flags).host == host


def test_what_each_platform_runs() -> None:
    both = planned(
        {
            **SLACK_HTTP,
            **TEAMS,
            "MICROSOFT_APP_TYPE": "singletenant",
            "MICROSOFT_APP_TENANT_ID": "t1",
        }
    )
    assert both.slack is not None and (both.slack.mode, both.slack.installs) == ("http", False)
    assert both.teams is not None
    assert (both.teams.app_type, both.teams.tenant) == ("SingleTenant", "t1")  # case forgiven
    socket = planned({**SLACK_SOCKET, **INSTALLS}, socket=True)
    assert socket.slack is not None and (socket.slack.mode, socket.slack.installs) == (
        "socket",
        True,
    )
    worker = planned({"SLACK_BOT_TOKEN": "xoxb-1"}, role="worker")  # delivers; receives nothing
    assert worker.slack is not None and worker.slack.mode == "sender"
    assert planned({}).slack is None and planned({}).teams is None
    assert planned({}, port=4000).port == 4000 and planned({"ALIGN_PORT": "5000"}).port == 5000


@pytest.mark.parametrize(
    ("role", "url", "line", "problem"),
    [
        ("web", "postgresql://db/align", "run by the workers", False),
        ("worker", "postgresql://db/align", "runs those web processes hand off (", False),
        ("all", "postgresql://db/align", "hand off (ALIGN_HAND_OFF), and its own", False),
        ("web", "sqlite:///align.db", "run by the workers", True),
    ],
)
def test_hand_off_is_said_at_start_and_sqlite_is_warned_against(
    role: str, url: str, line: str, problem: bool
) -> None:
    values = {"ALIGN_HAND_OFF": "true", "ALIGN_DATABASE_URL": url}  # no Slack: nothing to ask
    report = asyncio.run(verify(settings(**values), planned(values, role=role)))
    assert [text for text in report.lines if line in text]
    warned = [text for text in report.problems if "ALIGN_HAND_OFF on SQLite" in text]
    assert bool(warned) == problem


def test_without_hand_off_nothing_is_said_of_it() -> None:
    report = asyncio.run(verify(settings(), planned({})))
    assert not [text for text in report.lines + report.problems if "HAND_OFF" in text]


@pytest.mark.parametrize(
    ("role", "values", "niced", "threads_lowered_by"),
    [
        ("worker", {"ALIGN_HAND_OFF": "true"}, [10], 0),
        ("worker", {"ALIGN_HAND_OFF": "true", "ALIGN_WORKER_NICE": "4"}, [4], 0),
        ("worker", {"ALIGN_HAND_OFF": "true", "ALIGN_WORKER_NICE": "0"}, [], 0),
        ("worker", {}, [], 0),  # no hand-offs, and no acks: its work is the scheduler's
        ("web", {"ALIGN_HAND_OFF": "true"}, [], 10),  # it acks: its engine threads yield
        ("all", {"ALIGN_HAND_OFF": "true"}, [], 10),
        ("all", {}, [], 10),
        ("all", {"ALIGN_WORKER_NICE": "3"}, [], 3),
        ("all", {"ALIGN_WORKER_NICE": "0"}, [], 0),
    ],
)
def test_only_a_worker_receiving_hand_offs_yields_the_cpu_and_a_process_that_acks_its_work(
    role: str,
    values: dict[str, str],
    niced: list[int],
    threads_lowered_by: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(server.os, "nice", calls.append)  # the process's priority: a boundary
    monkeypatch.setattr(priority, "_lowered_by", 0)  # put back after the test
    server.yield_cpu(settings(**values), role)
    assert calls == niced
    assert priority.lowered_by() == threads_lowered_by
