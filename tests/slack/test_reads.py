"""Slash commands that only read (`decisions`, `help` … — the grammar's `reads`) run without an
inbox row and are answered in their ack: Slack shows the ack's body as the command's response,
so no Web API call follows. Nothing is stored for them, a replay of one runs it again (harmless:
it changes nothing), and they still count against ALIGN_MAX_BACKLOG while they run. A read not
answered within ALIGN_INBOX_ACK_BUDGET is acked empty and its reply follows as a message. Writes
keep the row, and a replayed write still runs once (tests/inbox/test_replays.py). On both
databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from adapters.inbox import BUSY
from bot.clock import FakeClock
from storage.models import Decision, InboxEntry
from tests.inbox.test_replays import replay_twice
from tests.slack.conftest import SlackServer, running_slack_server


def rows(server: SlackServer, *where: object) -> int:
    with server.app.db.uow() as session:
        query = select(func.count()).select_from(InboxEntry).where(*where)  # type: ignore[arg-type]
        return int(session.execute(query).scalar_one())


def one_decision(server: SlackServer, title: str) -> None:
    """A decision recorded, its message posted and its inbox row done: what a read then lists."""
    assert server.post_command(f"decide {title}").status_code == 200
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    assert rows(server) == 1


def test_a_read_is_answered_in_its_ack_without_an_inbox_row(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    one_decision(server, "Ship the reads path")

    ack = server.post_command("decisions")
    assert ack.status_code == 200
    answer = ack.json()
    assert answer["response_type"] == "in_channel"  # the channel's records, shown to it
    assert "Ship the reads path" in str(answer["blocks"])
    assert answer["text"] == "1 decision"  # the notification's fallback
    server.settle()
    assert len(server.fake.calls_to("chat.postMessage")) == 1  # only the write's
    assert server.fake.responses == []
    assert rows(server) == 1  # only the write's
    assert server.app.inbox.backlog == 0


def test_a_private_read_is_answered_to_the_asker_alone(slack_server_any_db: SlackServer) -> None:
    """`help` and a refused read are for the asker: an ephemeral ack."""
    server = slack_server_any_db
    helped = server.post_command("help").json()
    assert (helped["response_type"], helped["text"]) == ("ephemeral", "Align commands")
    refused = server.post_command("decisions page:zero").json()
    assert refused["response_type"] == "ephemeral"
    assert "page" in refused["text"]
    server.settle()
    assert server.fake.calls_to("chat.postMessage") == [] and server.fake.responses == []
    assert rows(server) == 0


def test_a_replayed_read_runs_again_and_stores_nothing(slack_server_any_db: SlackServer) -> None:
    server = slack_server_any_db
    first, again = replay_twice(server, server.command_body("decisions"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()  # answered both times, in the ack
    assert first.json()["response_type"] == "in_channel"
    server.settle()
    assert rows(server) == 0
    with server.app.db.uow() as session:
        assert session.execute(select(func.count()).select_from(Decision)).scalar_one() == 0


def test_a_command_that_does_not_parse_is_recorded_like_a_write(
    slack_server_any_db: SlackServer,
) -> None:
    """Only the engine says what is a read; what it cannot read goes the recorded way (and is
    answered with the error there)."""
    server = slack_server_any_db
    refused = server.post_command("decisions page:zero")  # a read verb, refused: still answered
    assert refused.json()["response_type"] == "ephemeral"
    assert server.post_command("frobnicate").text == ""
    (answer,) = server.fake.wait_for_responses_sync(1)
    assert answer.body["response_type"] == "ephemeral"
    server.settle()
    assert rows(server) == 1  # the unknown verb; the refused read stored nothing
    assert rows(server, InboxEntry.status == "done") == 1


@pytest.fixture
def tight(migrated_db_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    with running_slack_server(
        migrated_db_url, clock, ALIGN_MAX_BACKLOG="2", ALIGN_INBOX_ACK_BUDGET="0.2"
    ) as server:
        yield server


def test_a_read_not_answered_in_time_is_acked_and_still_counts_until_its_reply(
    tight: SlackServer,
) -> None:
    """A channel's very first command waits for its member list (adapters/roster.py); held
    there, two reads outlast the ack budget: each is acked empty, keeps its place in the backlog,
    and its reply follows as a message once it has one."""
    server = tight
    server.fake.hold("conversations.members")
    for _ in range(2):
        assert server.post_command("decisions").text == ""  # acked once the budget ran out
    server.fake.wait_held_sync("conversations.members")
    assert server.app.inbox.backlog == 2

    refused = server.post_command("decisions")
    assert refused.json() == {"response_type": "ephemeral", "text": BUSY}
    refused = server.post_command("ask Is there room?")
    assert refused.json() == {"response_type": "ephemeral", "text": BUSY}

    server.fake.release("conversations.members")
    listed = server.fake.wait_for_sync("chat.postMessage", 2)
    assert all("No decisions" in str(call.args["blocks"]) for call in listed)
    server.settle()
    assert server.app.inbox.backlog == 0
    assert rows(server) == 0
    answer = server.post_command("decisions").json()  # listed now: answered in the ack
    assert answer["response_type"] == "in_channel"
    server.settle()
    assert server.app.inbox.backlog == 0
