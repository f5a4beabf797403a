"""Slash commands through Slack's real protocol: signed form posts in, Web API calls out."""

from __future__ import annotations

import asyncio
import threading

from adapters.bootstrap import build
from adapters.server import create_web_app
from bot.context import Actor
from tests.conftest import make_settings
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


def test_decision_is_posted_to_the_channel_with_mentions_kept_and_pings_escaped(
    slack_server: SlackServer,
) -> None:
    slack_server.post_command("decide Ship <!channel> EU first | fewer risks owner:<@U0BEN00001>")
    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    marked_up = [post.args["text"], *mrkdwn_texts(post.args["blocks"])]
    assert any("<@U0BEN00001>" in t for t in marked_up)  # Slack renders the mention
    # Slack reads mrkdwn (not plain_text) for pings: there, the typed one is only text.
    assert not any("<!channel>" in t for t in marked_up)
    assert "&lt;!channel&gt;" in post.args["text"]
    assert "D-1" in post.args["text"]


def mrkdwn_texts(value: object) -> list[str]:
    """Every mrkdwn text object in some Block Kit."""
    if isinstance(value, list):
        return [t for v in value for t in mrkdwn_texts(v)]
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in mrkdwn_texts(v)]
    return []


def test_an_unknown_verb_answers_privately_with_the_verb_list(slack_server: SlackServer) -> None:
    response = slack_server.post_command("frobnicate the roadmap")
    assert response.status_code == 200
    (answer,) = slack_server.fake.wait_for_responses_sync()
    assert answer.body["response_type"] == "ephemeral"
    assert answer.body["replace_original"] is False
    assert "frobnicate" in answer.body["text"]
    for verb in ("decide", "poll", "vote", "roadmap", "export"):
        assert verb in answer.body["text"]
    slack_server.settle()
    assert slack_server.fake.calls_to("chat.postMessage") == []  # nothing in the channel


def test_an_id_from_another_channel_is_not_found(slack_server: SlackServer) -> None:
    slack_server.post_command('poll "Private question?" "Yes" "No"', channel="G0SECRET01")
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.post_command("results P-1", channel="C0OTHER001")
    (answer,) = slack_server.fake.wait_for_responses_sync()
    assert answer.body["response_type"] == "ephemeral"
    assert "P-1 not found in this channel" in answer.body["text"]
    assert "Private question" not in str(answer.body)


def test_the_ack_returns_before_the_engine_work_is_done(slack_server: SlackServer) -> None:
    """The engine is held inside the command's transaction (an event listener that waits); the
    HTTP answer must not wait for it."""
    entered, release = threading.Event(), threading.Event()

    def held(session: object, event: object, now: object) -> None:
        entered.set()
        release.wait(10)

    slack_server.app.engine.deps.listeners.append(held)
    try:
        response = slack_server.post_command('poll "Lunch?" "Pizza" "Soup"')
        assert response.status_code == 200
        assert entered.wait(10), "the engine never reached the listener"
        assert slack_server.fake.calls_to("chat.postMessage") == []  # the work is still held
    finally:
        release.set()
    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    assert "Lunch?" in post.args["text"]


def test_a_rate_limited_post_is_retried_after_retry_after(slack_server: SlackServer) -> None:
    slack_server.fake.fail_next("chat.postMessage", status=429, retry_after=0)
    slack_server.post_command("decide Retry politely")
    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    assert "Retry politely" in str(post.args["blocks"])
    (failed,) = slack_server.fake.failed_calls
    assert (failed.method, failed.status) == ("chat.postMessage", 429)


def actor(user: str = "U0ANA00001", channel: str = CHANNEL) -> Actor:
    return Actor(workspace="slack:T0TEST0001", channel=channel, user=user, platform="slack")


def test_an_org_wide_install_is_one_workspace_named_by_the_org(
    slack_server: SlackServer,
) -> None:
    slack_server.post_command("decide Org-wide rule", enterprise="E0ORG00001")
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    org = Actor(workspace="slack:E0ORG00001", channel=CHANNEL, user="U0X", platform="slack")
    listed = slack_server.app.engine.handle(org, "decisions")
    assert [d["title"] for d in listed.data["decisions"]] == ["Org-wide rule"]
    assert slack_server.app.engine.handle(actor(), "decisions").data["decisions"] == []


def test_where_the_bot_cannot_post_the_reply_goes_through_the_response_url(
    slack_server: SlackServer,
) -> None:
    slack_server.fake.fail_next("chat.postMessage", status=200, error="not_in_channel")
    slack_server.post_command("decide Said in a channel Align is not in")
    (answer,) = slack_server.fake.wait_for_responses_sync()
    assert answer.body["response_type"] == "in_channel"
    assert "Said in a channel Align is not in" in str(answer.body["blocks"])


def test_without_a_token_slack_is_not_mounted(migrated_sqlite_url: str) -> None:
    app = build(make_settings(migrated_sqlite_url, SLACK_SIGNING_SECRET="secret-but-no-token"))
    try:
        web_app = asyncio.run(create_web_app(app))
        assert "slack" not in web_app
        assert "/slack/events" not in {r.canonical for r in web_app.router.resources()}
    finally:
        app.db.dispose()
