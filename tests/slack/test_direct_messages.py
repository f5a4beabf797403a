"""Commands typed in the bot's DM (its Messages tab, the `message.im` event) are answered there:
the same grammar as `/align`, every answer a message in the DM (a DM has no response_url, and
an ephemeral message in a one-person conversation would vanish on reload). Align's own replies,
edits and channel messages are not commands."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from storage.models import Decision
from tests.slack.conftest import USER, SlackServer

DM = "D0ANA00001"


def dm(text: str, **extra: Any) -> dict[str, Any]:
    """A `message.im` event as Slack sends it for a line typed in the bot's DM."""
    ts = f"{time.time():.6f}"
    return {
        "type": "message",
        "channel": DM,
        "user": USER,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "client_msg_id": f"c{time.time_ns()}",
        **extra,
    }


def dm_posts(server: SlackServer) -> list[dict[str, Any]]:
    return [c.args for c in server.fake.calls_to("chat.postMessage") if c.args["channel"] == DM]


def decisions(server: SlackServer) -> list[tuple[str, str]]:
    with server.app.db.uow() as session:
        return [(d.channel, d.title) for d in session.scalars(select(Decision))]


def test_a_command_typed_in_the_dm_is_answered_in_the_dm(slack_server: SlackServer) -> None:
    assert slack_server.post_event(dm("decide Ship the beta | the DM works")).status_code == 200
    slack_server.settle()
    (post,) = dm_posts(slack_server)
    assert "Ship the beta" in json.dumps(post)
    assert decisions(slack_server) == [(DM, "Ship the beta")]  # the DM is its own space


def test_help_and_errors_in_the_dm_are_plain_dm_messages(slack_server: SlackServer) -> None:
    slack_server.post_event(dm("help"))
    slack_server.settle()
    slack_server.post_event(dm("vote"))  # no poll id: an error with the usage line
    slack_server.settle()
    help_post, error_post = dm_posts(slack_server)
    assert "decide" in json.dumps(help_post)
    assert "Which poll?" in error_post["text"]
    assert "Usage: vote" in json.dumps(error_post)
    assert slack_server.fake.calls_to("chat.postEphemeral") == []
    assert slack_server.fake.responses == []


def test_a_mention_of_the_bot_in_the_dm_is_not_part_of_the_command(
    slack_server: SlackServer,
) -> None:
    bot = slack_server.fake.bot_user_id
    slack_server.post_event(dm(f"<@{bot}> decide Keep it small"))
    slack_server.settle()
    assert decisions(slack_server) == [(DM, "Keep it small")]


def test_bot_messages_edits_and_channel_messages_are_not_commands(
    slack_server: SlackServer,
) -> None:
    ignored = [
        dm("decide From a bot", bot_id="B0OTHER0001"),
        dm("decide From Align itself", user=slack_server.fake.bot_user_id),
        dm("decide Edited", subtype="message_changed"),
        {**dm("decide In a channel"), "channel": "C0PRODUCT1", "channel_type": "channel"},
    ]
    for event in ignored:
        assert slack_server.post_event(event).status_code == 200
    slack_server.settle()
    assert slack_server.fake.calls_to("chat.postMessage") == []
    assert decisions(slack_server) == []
