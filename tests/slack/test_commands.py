"""Slash commands through Slack's real protocol: signed form posts in, Web API calls out."""

from __future__ import annotations

from tests.slack.conftest import CHANNEL, SlackServer


def test_poll_command_posts_a_poll_message_with_a_button_per_option(
    slack_server: SlackServer,
) -> None:
    response = slack_server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    assert response.status_code == 200
    assert response.text == ""  # the ack is empty; the poll arrives as its own message

    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    assert post.args["channel"] == CHANNEL
    assert post.token == "xoxb-test"
    blocks = post.args["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "P-1 · Ship date or scope?", "emoji": True},
    }
    actions = [b for b in blocks if b["type"] == "actions"]
    buttons = [e for a in actions for e in a["elements"]]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("Date", "vote P-1 1"),
        ("Scope", "vote P-1 2"),
    ]
    assert len({b["action_id"] for b in buttons}) == 2
    assert all(b["action_id"].startswith("align_cmd_") for b in buttons)
    assert "Opened P-1" in post.args["text"]
