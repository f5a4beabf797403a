"""ALIGN_MAX_BACKLOG through Slack's protocol: past the bound every kind of request is answered
"busy" at once, privately, and nothing is stored; below it everything is recorded and runs.

The backlog is filled honestly: the fake Slack holds `chat.postMessage`, so the requests already
taken cannot finish (their replies are on their way), exactly as a slow Slack would leave them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.inbox import BUSY
from adapters.slack import blocks
from bot.clock import FakeClock
from storage.models import InboxEntry, Question
from tests.conftest import count_rows
from tests.slack.conftest import CHANNEL, SlackServer, running_slack_server


@pytest.fixture
def tight(migrated_db_url: str, clock: FakeClock) -> Iterator[SlackServer]:
    """Align on either backend with room for two unfinished requests."""
    with running_slack_server(migrated_db_url, clock, ALIGN_MAX_BACKLOG="2") as server:
        yield server


def test_past_the_backlog_each_request_is_told_busy_privately_and_nothing_is_stored(
    tight: SlackServer,
) -> None:
    server = tight
    server.fake.hold("chat.postMessage")
    for text in ("ask First question?", "ask Second question?"):
        ack = server.post_command(text)
        assert (ack.status_code, ack.text) == (200, "")
    server.fake.wait_held_sync("chat.postMessage", 2)
    assert count_rows(server.app, InboxEntry) == 2

    # A slash command: the answer is the ack itself, ephemeral.
    refused = server.post_command("ask Third question?")
    assert refused.status_code == 200
    assert refused.json() == {"response_type": "ephemeral", "text": BUSY}

    # A click: acked, answered through its response_url, the clicked message left alone.
    click_url = server.fake.response_url("busy-click")
    clicked = server.post_action(
        action_id=f"{blocks.CMD_ACTION_PREFIX}0", value="ask Fourth?", response_url=click_url
    )
    assert (clicked.status_code, clicked.text) == (200, "")
    (told,) = server.fake.wait_for_responses_sync(1)
    assert told.name == "busy-click"
    assert told.body["text"] == BUSY
    assert told.body["response_type"] == "ephemeral"
    assert told.body["replace_original"] is False

    # A modal sent: the answer under its input, so it stays open to be sent again.
    view = blocks.reason_modal(
        "object D-1", "Why?", "Object", channel=CHANNEL, message_ts="1700000000.000100"
    )
    typed = {blocks.REASON_INPUT: {blocks.FORM_INPUT: {"type": "plain_text_input", "value": "x"}}}
    sent = server.post_payload(server.view_submission(view, typed))
    assert sent.status_code == 200
    assert sent.json() == {"response_action": "errors", "errors": {blocks.REASON_INPUT: BUSY}}

    # An event cannot be answered in its ack: Slack is told to deliver it again later.
    home = {"type": "app_home_opened", "user": "U0ANA00001", "channel": "D0HOME0001", "tab": "home"}
    assert server.post_event(home).status_code == 503

    assert count_rows(server.app, InboxEntry) == 2  # not one of the refused requests was recorded
    server.fake.release("chat.postMessage")
    server.settle()
    assert count_rows(server.app, Question) == 2  # and none of them ran
    assert server.fake.calls_to("views.publish") == []
    assert len(server.fake.responses) == 1

    # With room again, the same command is taken, recorded and run.
    again = server.post_command("ask Third question?")
    assert (again.status_code, again.text) == (200, "")
    server.settle()
    assert count_rows(server.app, Question) == 3
    assert count_rows(server.app, InboxEntry) == 3


def test_below_the_backlog_a_burst_is_all_recorded_and_answered(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock, ALIGN_MAX_BACKLOG="6") as server:
        server.fake.hold("chat.postMessage")
        with ThreadPoolExecutor(6) as pool:
            acks = list(pool.map(server.post_command, [f"ask Burst {i}?" for i in range(6)]))
        assert [(a.status_code, a.text) for a in acks] == [(200, "")] * 6
        server.fake.wait_held_sync("chat.postMessage", 6)
        assert count_rows(server.app, InboxEntry) == 6
        server.fake.release("chat.postMessage")
        server.settle()
        assert count_rows(server.app, Question) == 6
        posted = [
            json.dumps(c.args.get("blocks")) for c in server.fake.calls_to("chat.postMessage")
        ]
        assert all(any(f"Burst {i}?" in p for p in posted) for i in range(6))
