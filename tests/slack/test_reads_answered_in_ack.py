"""Read commands answered in their ack (listeners.py `on_command`, `_in_time`), attacked through
the real protocol: many at once, the ack budget racing the answer, a profile lookup held past
the budget, a conversation the bot is not in, a reply of a full page. Whatever happens, the
person gets each read's answer exactly once — in the ack's body, or as a message after an empty
ack — and nothing is stored for it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from bot.clock import FakeClock
from storage.models import InboxEntry
from tests.conftest import count_rows, opened
from tests.fakes import FakeSlackApi, sign_slack_request
from tests.server.process import AlignProcess, accepts, align, free_port, wait_until
from tests.server.test_shutdown import slack_env
from tests.slack.conftest import (
    APP_ID,
    CHANNEL,
    SIGNING_SECRET,
    SlackServer,
    running_slack_server,
)
from tests.slack.test_reads import one_decision, rows
from tests.slack.test_socket_mode import socket_mode


def post_events(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response | Exception:
    """A signed request to a real server's /slack/events, from another thread: what it
    answered, or how the exchange failed (the server stopping under it)."""
    try:
        return httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        return exc


def answer_of(ack: httpx.Response) -> dict[str, object] | None:
    """The ack's body as a command response, or None for an empty ack."""
    assert ack.status_code == 200, ack.text
    return ack.json() if ack.text else None


def test_thirty_reads_at_once_are_each_answered_in_their_ack(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    one_decision(server, "Burst of reads")

    with ThreadPoolExecutor(30) as pool:
        acks = list(pool.map(lambda _: server.post_command("decisions"), range(30)))

    answers = [answer_of(ack) for ack in acks]
    assert all(answer is not None for answer in answers), [a.text for a in acks]
    for answer in answers:
        assert answer is not None
        assert answer["response_type"] == "in_channel"
        assert "Burst of reads" in json.dumps(answer["blocks"])
    server.settle()
    assert len(server.fake.calls_to("chat.postMessage")) == 1  # the decision's only
    assert server.fake.responses == []
    assert rows(server) == 1  # the write's only
    assert server.app.inbox.backlog == 0


@pytest.fixture(params=["0.001", "0.005", "0.02"], ids=lambda b: f"budget{b}")
def racing(
    request: pytest.FixtureRequest, migrated_db_url: str, clock: FakeClock
) -> Iterator[SlackServer]:
    with running_slack_server(
        migrated_db_url, clock, ALIGN_INBOX_ACK_BUDGET=request.param
    ) as server:
        yield server


def test_a_read_racing_its_ack_budget_is_answered_exactly_once(racing: SlackServer) -> None:
    """With a budget about as long as a read takes, each read is answered in its ack or after
    it — never both, never neither. In-channel reads are told apart by their channel (each
    new, so some wait for its member list), private ones (`help`) by their response_url."""
    server = racing
    rounds = 25
    in_ack: dict[str, int] = {}
    for i in range(rounds):
        channel = f"C0RACE{i:03d}"
        answer = answer_of(server.post_command("decisions", channel=channel))
        in_ack[channel] = 0 if answer is None else 1
        if answer is not None:
            assert answer["response_type"] == "in_channel"
        url = server.fake.response_url(f"help-{i}")
        answer = answer_of(server.post_command("help", response_url=url))
        in_ack[f"help-{i}"] = 0 if answer is None else 1
        if answer is not None:
            assert (answer["response_type"], answer["text"]) == ("ephemeral", "Align commands")
    server.settle()

    posted = server.fake.calls_to("chat.postMessage")
    responded = server.fake.responses
    for i in range(rounds):
        channel = f"C0RACE{i:03d}"
        after = sum(call.args["channel"] == channel for call in posted)
        assert in_ack[channel] + after == 1, (channel, in_ack[channel], after)
        after = sum(r.name == f"help-{i}" for r in responded)
        assert in_ack[f"help-{i}"] + after == 1, (i, in_ack[f"help-{i}"], after)
    assert len(posted) + len(responded) + sum(in_ack.values()) == 2 * rounds
    assert all(r.body.get("text") == "Align commands" for r in responded)
    assert rows(server) == 0
    assert server.app.inbox.backlog == 0


@pytest.fixture
def budgeted(migrated_db_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    with running_slack_server(migrated_db_url, clock, ALIGN_INBOX_ACK_BUDGET="0.3") as server:
        yield server


@pytest.mark.parametrize("verb", ["decisions", "help"])
def test_a_read_whose_profile_lookup_outlasts_the_budget_is_answered_once_after(
    budgeted: SlackServer, verb: str
) -> None:
    server = budgeted
    server.post_command("help")  # the channel listed, the default user looked up
    server.settle()
    server.fake.hold("users.info")
    url = server.fake.response_url("held")
    ack = server.post_command(verb, user="U0HELD0001", response_url=url)
    assert answer_of(ack) is None  # acked empty once the budget ran out
    server.fake.wait_held_sync("users.info")
    assert server.app.inbox.backlog == 1  # still counted until its answer is shown
    assert server.fake.calls_to("chat.postMessage") == [] and server.fake.responses == []

    server.fake.release("users.info")
    server.settle()
    posted = server.fake.calls_to("chat.postMessage")
    if verb == "help":  # private: through the command's response_url
        assert posted == []
        (shown,) = server.fake.responses
        assert (shown.name, shown.body["response_type"]) == ("held", "ephemeral")
        assert shown.body["text"] == "Align commands"
    else:
        (shown_post,) = posted
        assert shown_post.args["channel"] == CHANNEL
        assert "No decisions" in json.dumps(shown_post.args["blocks"])
        assert server.fake.responses == []
    assert server.app.inbox.backlog == 0
    assert rows(server) == 0


def test_a_read_in_a_dm_is_answered_in_its_ack(slack_server_any_db: SlackServer) -> None:
    server = slack_server_any_db
    for verb in ("decisions", "questions", "pending", "priorities", "roadmap", "help"):
        answer = answer_of(server.post_command(verb, channel="D0ANA00001"))
        assert answer is not None, verb
        assert answer["response_type"] in ("in_channel", "ephemeral")
    server.settle()
    assert server.fake.calls_to("chat.postMessage") == [] and server.fake.responses == []
    assert rows(server) == 0 and server.app.inbox.backlog == 0


def test_a_read_in_a_channel_the_bot_is_not_in_is_answered_in_its_ack(
    slack_server_any_db: SlackServer,
) -> None:
    """Slack says not_in_channel to every call about the channel (its member list, a post):
    the read needs none of them to be shown."""
    server = slack_server_any_db
    server.fake.fail_next("conversations.members", status=200, error="not_in_channel", times=5)
    server.fake.fail_next("chat.postMessage", status=200, error="not_in_channel", times=5)
    answer = answer_of(server.post_command("decisions", channel="C0NOTIN001"))
    assert answer is not None
    assert answer["response_type"] == "in_channel"
    assert "No decisions" in json.dumps(answer["blocks"])
    server.settle()
    assert [c.method for c in server.fake.failed_calls] == ["conversations.members"]
    assert server.fake.calls_to("chat.postMessage") == [] and server.fake.responses == []
    assert rows(server) == 0 and server.app.inbox.backlog == 0


def test_a_full_page_of_long_decisions_fits_in_the_ack(slack_server: SlackServer) -> None:
    """A page of long titles and rationales rides in the ack within Slack's message limits
    (50 blocks, 3,000 characters of text per section) — the ack has no second chance."""
    server = slack_server
    for n in range(45):
        title = f"Decision {n:02d} " + "x" * 180
        assert server.post_command(f"decide {title} | " + "why " * 100).status_code == 200
    server.fake.wait_for_sync("chat.postMessage", 45, timeout=30)
    server.settle()

    answer = answer_of(server.post_command("decisions"))
    assert answer is not None
    assert answer["response_type"] == "in_channel"
    blocks = answer["blocks"]
    assert isinstance(blocks, list) and 0 < len(blocks) <= 50
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000, len(text)
    assert "Decision 44" in json.dumps(blocks)  # newest first
    server.settle()
    assert len(server.fake.calls_to("chat.postMessage")) == 45  # the decisions' only


def signed_command(fake: FakeSlackApi, text: str, url: str) -> tuple[bytes, dict[str, str]]:
    body = urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": fake.team_id,
            "team_domain": "align-test",
            "channel_id": CHANNEL,
            "channel_name": "product",
            "user_id": "U0STOP0001",
            "user_name": "stop",
            "command": "/align",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": url,
            "trigger_id": "1.2.stop",
        }
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **sign_slack_request(SIGNING_SECRET, body),
    }
    return body.encode(), headers


@dataclass
class ReadAtStop:
    """`align serve` just sent SIGTERM while a read's ack waits for its answer: the fake Slack
    holding the read's profile lookup, the process, its port, the read's HTTP exchange (in
    another thread) and when the signal went."""

    fake: FakeSlackApi
    serve: AlignProcess
    port: int
    acked: Future[httpx.Response | Exception]
    began: float

    def shown(self) -> list[Any]:
        """The read's replies after its ack: a message, or through its response_url."""
        return [*self.fake.calls_to("chat.postMessage"), *self.fake.responses]


@contextmanager
def sigterm_while_a_read_waits(
    db_url: str, tmp_path: Path, *args: str, grace: str, budget: str, **env: str
) -> Iterator[ReadAtStop]:
    """`align serve *args` (ALIGN_SHUTDOWN_GRACE `grace`, ALIGN_INBOX_ACK_BUDGET `budget`, and
    `env`) receiving `decisions` while Slack holds its asker's profile lookup, then SIGTERM.
    After, nothing is stored for the read."""
    port = free_port()
    with FakeSlackApi.running() as fake, ThreadPoolExecutor(1) as pool:
        fake.hold("users.info")
        variables = {**slack_env(db_url, fake, port, grace), "ALIGN_INBOX_ACK_BUDGET": budget}
        with align(tmp_path, "serve", *args, port=port, **variables, **env) as serve:
            serve.wait_listening()
            body, headers = signed_command(fake, "decisions", fake.response_url("stop"))
            acked = pool.submit(post_events, serve.url, body, headers)
            fake.wait_held_sync("users.info", timeout=30)
            began = time.monotonic()
            serve.send(signal.SIGTERM)
            yield ReadAtStop(fake, serve, port, acked, began)
    with opened(db_url) as app:
        assert count_rows(app, InboxEntry) == 0  # nothing stored for a read


def stop_while_a_read_waits(
    db_url: str, tmp_path: Path, *, grace: str, budget: str, released: bool
) -> tuple[float, httpx.Response | Exception, int, str]:
    """`align serve` with a read's ack waiting for its answer when SIGTERM arrives; Slack
    answers the lookup right after the server stops accepting when `released`, never
    otherwise. How long the stop took from the signal, what the read's HTTP request got, how
    many times the answer was shown after the ack (message or response_url), and the
    process's log."""
    with sigterm_while_a_read_waits(db_url, tmp_path, grace=grace, budget=budget) as stop:
        wait_until(lambda: not accepts(stop.port), 10, "the server to stop accepting")
        if released:
            stop.fake.release("users.info")
        assert stop.serve.wait(timeout=30) == 0, stop.serve.output
        took = time.monotonic() - stop.began
        ack = stop.acked.result(timeout=30)
    return took, ack, len(stop.shown()), stop.serve.output


def in_ack_body(ack: httpx.Response | Exception) -> int:
    if isinstance(ack, httpx.Response) and ack.status_code == 200 and ack.text:
        assert ack.json()["response_type"] == "in_channel"
        return 1
    return 0


def test_a_signal_while_a_reads_ack_waits_still_answers_it_exactly_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGTERM while a read's ack waits; its lookup answered within the grace: the read is
    answered exactly once — in the ack or after it — and the process exits 0 in the grace."""
    took, ack, after, output = stop_while_a_read_waits(
        sqlite_url, tmp_path, grace="3", budget="10", released=True
    )
    assert in_ack_body(ack) + after == 1, (ack, after)
    assert took < 3 + 1.5, f"stopped after {took:.1f}s with a 3 s grace period"
    for noise in ("Traceback", "Unclosed", "destroyed but it is pending"):
        assert noise not in output, output


def test_a_signal_while_a_reads_ack_waits_past_the_grace_stops_within_the_grace(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGTERM while a read's ack waits for an answer Slack never gives (its profile lookup
    held for good), with an ack budget longer than the grace: the stop still fits in
    ALIGN_SHUTDOWN_GRACE (adapters/web_keys.py `Grace`), and the read is shown nowhere. Before
    the ack stopped waiting at shutdown (`SlackBot.stop_waiting`), aiohttp waited the grace for
    the ack's handler, cancelled the request — which does not end the handler — and waited the
    grace again: 6.0 s with a 3 s grace, and the whole budget with a grace of 0."""
    took, ack, after, output = stop_while_a_read_waits(
        sqlite_url, tmp_path, grace="3", budget="10", released=False
    )
    assert in_ack_body(ack) + after == 0, (ack, after)
    assert took < 3 + 1.5, f"stopped after {took:.1f}s with a 3 s grace period:\n{output}"


def test_concurrent_private_reads_racing_their_budget_are_answered_exactly_once(
    racing: SlackServer,
) -> None:
    """Thirty `help`s at once, each with its own response_url, against a budget about as long
    as one takes: each shown once, in its ack or through its response_url."""
    server = racing
    server.post_command("help")  # the channel listed, the user looked up
    server.settle()
    names = [f"burst-{i}" for i in range(30)]

    def ask(name: str) -> int:
        answer = answer_of(server.post_command("help", response_url=server.fake.response_url(name)))
        return 0 if answer is None else 1

    with ThreadPoolExecutor(30) as pool:
        in_ack = dict(zip(names, pool.map(ask, names), strict=True))
    server.settle()
    responded = [r.name for r in server.fake.responses]
    for name in names:
        assert in_ack[name] + responded.count(name) == 1, (name, in_ack[name], responded)
    assert server.fake.calls_to("chat.postMessage") == []
    assert rows(server) == 0 and server.app.inbox.backlog == 0


def test_a_read_late_in_a_channel_the_bot_is_not_in_is_shown_once_through_its_response_url(
    budgeted: SlackServer,
) -> None:
    """Past the budget the read is shown after its empty ack; the bot may not post in the
    channel, so its response_url carries it — once."""
    server = budgeted
    server.fake.fail_next("chat.postMessage", status=200, error="not_in_channel", times=5)
    server.fake.hold("users.info")
    url = server.fake.response_url("late")
    assert (
        answer_of(server.post_command("decisions", channel="C0NOTIN002", response_url=url)) is None
    )
    server.fake.wait_held_sync("users.info")
    server.fake.release("users.info")
    server.settle()
    (shown,) = server.fake.responses
    assert (shown.name, shown.body["response_type"]) == ("late", "in_channel")
    assert "No decisions" in json.dumps(shown.body["blocks"])
    assert server.fake.calls_to("chat.postMessage") == []
    assert [c.method for c in server.fake.failed_calls] == ["chat.postMessage"]
    assert server.app.inbox.backlog == 0 and rows(server) == 0


# `align serve` sets web_app[SOCKET_MODE] before it starts the app; this flips it on a running
# one, which aiohttp merely frowns upon (as in test_socket_mode.py).
@pytest.mark.filterwarnings("ignore:Changing state of started:DeprecationWarning")
def test_a_read_over_socket_mode_not_answered_in_time_is_acked_bare_and_posted_once(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    with (
        running_slack_server(
            migrated_sqlite_url, clock, SLACK_APP_TOKEN="xapp-test", ALIGN_INBOX_ACK_BUDGET="0.3"
        ) as server,
        socket_mode(server) as endpoint,
    ):

        async def exchange(envelope_id: str, text: str) -> dict[str, Any]:
            return await endpoint.command(envelope_id, dict(parse_qsl(server.command_body(text))))

        server.fake.hold("users.info")
        ack = server.loop.run(exchange("env-late", "decisions"))
        assert ack["envelope_id"] == "env-late"
        assert not ack.get("payload")  # acked without an answer once the budget ran out
        server.fake.wait_held_sync("users.info")
        server.fake.release("users.info")
        server.settle()
        (post,) = server.fake.calls_to("chat.postMessage")
        assert "No decisions" in json.dumps(post.args["blocks"])

        ack = server.loop.run(exchange("env-now", "decisions"))  # looked up now: in time
        assert ack["payload"]["response_type"] == "in_channel"
        server.settle()
        assert len(server.fake.calls_to("chat.postMessage")) == 1
        assert server.fake.responses == [] and server.app.inbox.backlog == 0
