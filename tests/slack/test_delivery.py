"""The outbox's Slack sender: stored replies reach the channel as Block Kit; failures are sorted
into "try again (after Retry-After)" and "give up"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.delivery import DeliveryError, Outgoing
from adapters.runtime import Dispatcher
from adapters.web_keys import SENDERS
from bot import outbox
from bot.views import Context, Heading, Reply, Section
from storage.models import OutboxMessage
from tests.slack.conftest import CHANNEL, SlackServer

WORKSPACE = "slack:T0TEST0001"


def _digest() -> Reply:
    return Reply(
        ok=True,
        kind="digest",
        text="Weekly digest",
        blocks=[Heading("Weekly digest"), Section("2 decisions, 1 poll closed"), Context("Now: —")],
    )


def _message(key: str = "digest:C0PRODUCT1:2026-W48") -> Outgoing:
    return Outgoing(
        workspace=WORKSPACE, channel=CHANNEL, platform="slack", reply=_digest(), idempotency_key=key
    )


def test_an_outbox_message_is_delivered_once_through_the_slack_sender(
    slack_server: SlackServer,
) -> None:
    app = slack_server.app
    senders = slack_server.web_app[SENDERS]
    assert senders["slack"].platform == "slack"
    with app.db.uow() as session:
        assert outbox.enqueue(
            session,
            workspace=WORKSPACE,
            channel=CHANNEL,
            platform="slack",
            kind="digest",
            reply=_digest(),
            key="digest:C0PRODUCT1:2026-W48",
            now=app.clock.now(),
        )
    slack_server.loop.run(Dispatcher(app, senders).run_once())
    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    assert post.args["channel"] == CHANNEL and post.token == "xoxb-test"
    assert post.args["blocks"][0]["text"]["text"] == "Weekly digest"
    assert post.args["blocks"][1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "2 decisions, 1 poll closed"},
    }
    with app.db.uow() as session:
        row = session.execute(select(OutboxMessage)).scalar_one()
        assert row.status == "sent"
    slack_server.loop.run(Dispatcher(app, senders).run_once())
    assert len(slack_server.fake.calls_to("chat.postMessage")) == 1


def test_a_rate_limit_is_handed_to_the_dispatcher_with_retry_after(
    slack_server: SlackServer,
) -> None:
    slack_server.fake.fail_next("chat.postMessage", status=429, retry_after=7)
    sender = slack_server.web_app[SENDERS]["slack"]
    with pytest.raises(DeliveryError) as raised:
        slack_server.loop.run(sender.send(_message()))
    assert raised.value.retry_after == 7.0 and not raised.value.permanent
    assert slack_server.fake.calls_to("chat.postMessage") == []  # the sender did not retry


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_auth"])
def test_errors_no_retry_can_fix_are_permanent(slack_server: SlackServer, error: str) -> None:
    slack_server.fake.fail_next("chat.postMessage", status=200, error=error)
    sender = slack_server.web_app[SENDERS]["slack"]
    with pytest.raises(DeliveryError) as raised:
        slack_server.loop.run(sender.send(_message()))
    assert raised.value.permanent and error in str(raised.value)


def test_a_slack_outage_is_worth_retrying(slack_server: SlackServer) -> None:
    slack_server.fake.fail_next("chat.postMessage", status=503, retry_after=None)
    sender = slack_server.web_app[SENDERS]["slack"]
    with pytest.raises(DeliveryError) as raised:
        slack_server.loop.run(sender.send(_message()))
    assert not raised.value.permanent and raised.value.retry_after is None
    assert len(slack_server.fake.failed_calls) == 1  # the dispatcher's backoff, not the client's
