"""Messages nobody typed a command for (digests, nudges, poll results) go out later through the
outbox, the dispatcher and `TeamsSender`, to the conversation reference stored when the bot last
heard from that channel."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from adapters.delivery import DeliveryError, Outgoing
from adapters.runtime import Dispatcher
from adapters.teams.http import TEAMS
from adapters.web_keys import SENDERS
from bot import outbox
from bot.clock import FakeClock
from bot.views import Heading, Reply, Section
from storage.models import ConversationRef, OutboxMessage
from tests.teams.harness import (
    ANA,
    CHANNEL,
    WORKSPACE,
    TeamsServer,
    card_of,
    message,
    teams_server,
    texts_of,
)


def enqueue(server: TeamsServer, reply: Reply, *, key: str, channel: str = CHANNEL) -> None:
    with server.app.db.uow() as session:
        outbox.enqueue(
            session,
            workspace=WORKSPACE,
            channel=channel,
            platform="teams",
            kind=reply.kind[:16],
            reply=reply,
            key=key,
            now=server.app.clock.now(),
        )


def test_a_nudge_goes_out_through_the_outbox_as_a_new_channel_post_that_mentions_people(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await server.say("poll “Ship date or scope?” “Date” “Scope”")  # stores the reference
            await server.say("vote P-1 1", by=ANA)
            nudge = server.app.engine.handle(server.actor(ANA), "nudge P-1")
            assert nudge.ok, nudge.error
            enqueue(server, nudge, key="nudge:P-1:1")

            dispatcher = Dispatcher(server.app, server.web_app[SENDERS])
            assert await dispatcher.run_once() == 1

            [post] = server.connector.sent_of("send")
            assert post.conversation_id == CHANNEL  # the channel itself, not the thread
            assert post.method == "POST" and post.activity_id is None
            card = card_of(post.activity)
            text = texts_of(card)[0]
            assert text.startswith("Reminder: <at>Ben</at>, <at>Cai</at>, <at>Dee</at>")
            mentioned = {
                e["mentioned"]["name"]: e["mentioned"]["id"] for e in card["msteams"]["entities"]
            }
            assert mentioned == {
                "Ben": "b15a9416-0000-4000-8000-000000000002",
                "Cai": "b15a9416-0000-4000-8000-000000000003",
                "Dee": "b15a9416-0000-4000-8000-000000000004",
            }
            with server.app.db.uow() as session:
                row = session.scalars(select(OutboxMessage)).one()
                assert row.status == "sent"

    asyncio.run(main())


def test_the_reference_is_stored_when_the_bot_is_added_and_it_says_hello(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            added = message("", service_url=server.service_url, mention_bot=False)
            added.update(
                type="conversationUpdate",
                membersAdded=[{"id": added["recipient"]["id"]}],
                conversation={
                    "id": CHANNEL,
                    "isGroup": True,
                    "conversationType": "channel",
                    "tenantId": added["conversation"]["tenantId"],
                },
            )
            del added["text"]
            assert await server.post(added) == 201
            with server.app.db.uow() as session:
                assert session.get(ConversationRef, (WORKSPACE, CHANNEL)) is not None
            # A conversationUpdate has no message to reply to: the welcome is a new post.
            [hello] = server.connector.sent_of("send")
            assert hello.conversation_id == CHANNEL
            assert "@Align help" in (hello.text or "")

            enqueue(
                server,
                Reply(
                    ok=True,
                    kind="digest",
                    text="Weekly digest",
                    blocks=[Heading("Digest"), Section("Nothing changed.")],
                ),
                key="digest:1",
            )
            assert await Dispatcher(server.app, server.web_app[SENDERS]).run_once() == 1
            hello, post = server.connector.sent_of("send")
            assert post.conversation_id == CHANNEL
            assert texts_of(card_of(post.activity)) == ["Digest", "Nothing changed."]

    asyncio.run(main())


def test_rate_limited_proactive_send_tells_the_dispatcher_when_to_retry(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await server.say("help")
            sender = server.web_app[TEAMS].sender
            outgoing = Outgoing(
                WORKSPACE, CHANNEL, "teams", Reply(ok=True, kind="digest", text="Digest"), "k1"
            )
            server.connector.fail_next("send", status=429, retry_after=7)
            with pytest.raises(DeliveryError) as raised:
                await sender.send(outgoing)
            assert raised.value.retry_after == 7.0 and not raised.value.permanent
            await sender.send(outgoing)  # the next attempt goes through
            assert len(server.connector.sent_of("send")) == 1

            server.connector.fail_next(
                "send", status=403, retry_after=None, error="BotNotInConversationRoster"
            )
            with pytest.raises(DeliveryError) as raised:
                await sender.send(outgoing)
            assert raised.value.permanent

            unknown = Outgoing(
                WORKSPACE,
                "19:never-seen@thread.tacv2",
                "teams",
                Reply(ok=True, kind="digest", text="Digest"),
                "k2",
            )
            with pytest.raises(DeliveryError) as raised:
                await sender.send(unknown)
            assert raised.value.permanent
            assert "conversation reference" in str(raised.value)

    asyncio.run(main())
