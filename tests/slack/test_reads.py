"""Slash commands that only read (`decisions`, `help` … — the grammar's `reads`) run without an
inbox row: nothing is stored for them, a replay of one runs it again (harmless: it changes
nothing), and they still count against ALIGN_MAX_BACKLOG while they run. Writes keep the row,
and a replayed write still runs once (tests/inbox/test_replays.py). On both databases."""

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


def test_a_read_is_answered_without_an_inbox_row(slack_server_any_db: SlackServer) -> None:
    server = slack_server_any_db
    assert server.post_command("decide Ship the reads path").status_code == 200
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    assert rows(server) == 1

    ack = server.post_command("decisions")
    assert (ack.status_code, ack.text) == (200, "")
    _, listed = server.fake.wait_for_sync("chat.postMessage", 2)
    server.settle()
    assert "Ship the reads path" in str(listed.args["blocks"])
    assert rows(server) == 1  # only the write's
    assert server.app.inbox.backlog == 0


def test_a_replayed_read_runs_again_and_stores_nothing(slack_server_any_db: SlackServer) -> None:
    server = slack_server_any_db
    first, again = replay_twice(server, server.command_body("decisions"))
    assert (first.status_code, again.status_code) == (200, 200)
    server.fake.wait_for_sync("chat.postMessage", 2)
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
    server.post_command("decisions page:zero")  # a read verb, refused: still answered
    server.post_command("frobnicate")
    server.fake.wait_for_responses_sync(2)
    server.settle()
    assert rows(server) == 1  # the unknown verb; the refused read stored nothing
    assert rows(server, InboxEntry.status == "done") == 1


@pytest.fixture
def tight(migrated_db_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    with running_slack_server(migrated_db_url, clock, ALIGN_MAX_BACKLOG="2") as server:
        yield server


def test_reads_count_against_the_backlog_while_they_run(tight: SlackServer) -> None:
    server = tight
    server.fake.hold("chat.postMessage")
    for _ in range(2):
        assert server.post_command("decisions").text == ""
    server.fake.wait_held_sync("chat.postMessage", 2)
    assert server.app.inbox.backlog == 2

    refused = server.post_command("decisions")
    assert refused.json() == {"response_type": "ephemeral", "text": BUSY}
    refused = server.post_command("ask Is there room?")
    assert refused.json() == {"response_type": "ephemeral", "text": BUSY}

    server.fake.release("chat.postMessage")
    server.settle()
    assert server.app.inbox.backlog == 0
    assert rows(server) == 0
    assert server.post_command("decisions").text == ""
    server.fake.wait_for_sync("chat.postMessage", 3)
    server.settle()
    assert server.app.inbox.backlog == 0
