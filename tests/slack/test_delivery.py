"""The outbox's Slack sender: stored replies reach the channel as Block Kit; failures are sorted
into "try again (after Retry-After)" and "give up"."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing
from adapters.runtime import Dispatcher
from adapters.web_keys import SENDERS
from bot import outbox
from bot.clock import FakeClock
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


def _enqueue(app: App, key: str = "digest:C0PRODUCT1:2026-W48") -> None:
    with app.db.uow() as session:
        outbox.enqueue(
            session,
            workspace=WORKSPACE,
            channel=CHANNEL,
            platform="slack",
            kind="digest",
            reply=_digest(),
            key=key,
            now=app.clock.now(),
        )


def test_every_post_carries_its_outbox_key_as_message_metadata(slack_server: SlackServer) -> None:
    _enqueue(slack_server.app)
    slack_server.loop.run(Dispatcher(slack_server.app, slack_server.web_app[SENDERS]).run_once())
    (posted,) = slack_server.fake.history(CHANNEL)
    assert posted["metadata"] == {
        "event_type": "align_outbox",
        "event_payload": {"key": "digest:C0PRODUCT1:2026-W48"},
    }
    # A first attempt has nothing to look for: Slack's history is not read.
    assert slack_server.fake.calls_to("conversations.history") == []


def test_a_post_that_reached_slack_before_its_worker_died_is_not_posted_again(
    slack_server: SlackServer, clock: FakeClock
) -> None:
    """The worker dies after Slack took the message but before the answer came back (the fake
    answers 2 s late): its claim runs out, and the next worker finds the message by its key in
    the channel's history, marks the row sent and posts nothing."""
    app, fake = slack_server.app, slack_server.fake
    senders = slack_server.web_app[SENDERS]
    for n in range(3):
        _enqueue(app, key=f"digest:{n}")
    fake.slow("chat.postMessage", 2.0)
    lease = timedelta(minutes=1)

    async def die_mid_send() -> None:
        first = asyncio.create_task(Dispatcher(app, senders, worker_id="a", lease=lease).run_once())
        while not fake.history(CHANNEL):
            await asyncio.sleep(0.01)
        first.cancel()  # as good as SIGKILL here: nothing is marked, nothing released
        with contextlib.suppress(asyncio.CancelledError):
            await first

    slack_server.loop.run(die_mid_send())
    fake.slow("chat.postMessage", 0)
    assert [m["text"] for m in fake.history(CHANNEL)] == ["Weekly digest"]
    second = Dispatcher(app, senders, worker_id="b", lease=lease, pacing={"slack": 0.0})
    assert slack_server.loop.run(second.run_once()) == 0  # a's claim still holds
    clock.advance(lease)
    assert slack_server.loop.run(second.run_once()) == 3
    keys = [m["metadata"]["event_payload"]["key"] for m in fake.history(CHANNEL)]
    assert keys == ["digest:0", "digest:1", "digest:2"]  # each once, in order
    assert len(fake.calls_to("conversations.history")) == 1  # only the row tried before looked
    with app.db.uow() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        assert [(r.status, r.attempts) for r in rows] == [("sent", 2), ("sent", 1), ("sent", 1)]


def test_a_row_tried_before_is_posted_when_the_history_does_not_have_it(
    slack_server: SlackServer,
) -> None:
    sender = slack_server.web_app[SENDERS]["slack"]
    retry = dataclasses.replace(_message(), tried_before=True)
    slack_server.loop.run(sender.send(retry))
    assert len(slack_server.fake.calls_to("conversations.history")) == 1
    assert len(slack_server.fake.history(CHANNEL)) == 1
    # Asked again with the post now in the channel: found, not posted twice.
    slack_server.loop.run(sender.send(retry))
    assert len(slack_server.fake.history(CHANNEL)) == 1


def test_without_the_history_scope_a_retry_is_posted_rather_than_lost(
    slack_server: SlackServer,
) -> None:
    sender = slack_server.web_app[SENDERS]["slack"]
    slack_server.fake.fail_next("conversations.history", status=200, error="missing_scope")
    slack_server.loop.run(sender.send(dataclasses.replace(_message(), tried_before=True)))
    assert len(slack_server.fake.history(CHANNEL)) == 1


def test_a_history_outage_fails_the_attempt_instead_of_risking_a_repeat(
    slack_server: SlackServer,
) -> None:
    sender = slack_server.web_app[SENDERS]["slack"]
    slack_server.fake.fail_next("conversations.history", status=503, retry_after=None)
    with pytest.raises(DeliveryError) as raised:
        slack_server.loop.run(sender.send(dataclasses.replace(_message(), tried_before=True)))
    assert not raised.value.permanent
    assert slack_server.fake.history(CHANNEL) == []
