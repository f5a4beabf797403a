"""Commands over /api/messages: an @mention in a channel becomes an engine command and the answer
comes back to the connector as a reply to that activity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import ConversationRef, Decision, Poll
from tests.teams.harness import (
    ANA,
    BEN,
    CHANNEL,
    THREAD,
    WORKSPACE,
    TeamsServer,
    actions_of,
    card_of,
    teams_server,
    texts_of,
)

Scenario = Callable[[TeamsServer], Awaitable[None]]


def run(url: str, clock: FakeClock, scenario: Scenario, **settings: str) -> None:
    async def main() -> None:
        async with teams_server(url, clock, **settings) as server:
            await scenario(server)

    asyncio.run(main())


def test_poll_by_mention_replies_with_an_adaptive_card_with_vote_buttons(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        incoming = await server.say("poll “Ship date or scope?” “Date” “Scope”")
        [reply] = server.connector.sent_of("reply")
        assert reply.conversation_id == THREAD
        assert reply.activity_id == incoming["id"]  # a reply to the @mention
        card = card_of(reply.activity)
        assert card["type"] == "AdaptiveCard"
        assert texts_of(card)[0] == "P-1 · Ship date or scope?"
        assert [(a["type"], a["title"], a["data"]) for a in actions_of(card)] == [
            ("Action.Submit", "Date", {"align": "vote P-1 1"}),
            ("Action.Submit", "Scope", {"align": "vote P-1 2"}),
        ]
        assert any("0 of 4 voted" in t for t in texts_of(card))  # the roster, not a guess
        # The card's id is kept so votes can update it in place.
        assert server.app.engine.postings(server.actor(), "P-1") == [(THREAD, reply.result_id)]

    run(migrated_sqlite_url, clock, scenario)


def test_every_message_stores_the_channel_reference_without_the_thread(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        await server.say("help")
        with server.app.db.uow() as session:
            ref = session.get(ConversationRef, (WORKSPACE, CHANNEL))
            assert ref is not None and ref.platform == "teams"
            assert ref.reference["conversation"]["id"] == CHANNEL
            assert ref.reference["serviceUrl"] == server.service_url
            assert "activityId" not in ref.reference

    run(migrated_sqlite_url, clock, scenario)


def test_a_typed_vote_on_an_unknown_poll_gets_a_clear_text_reply(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        await server.say("vote P-9 1")
        [reply] = server.connector.sent_of("reply")
        assert reply.activity.get("attachments") in (None, [])
        assert "P-9 not found in this channel." in reply.text
        assert "Usage: vote &lt;P-ID&gt; &lt;choice&gt;..." in reply.text
        with server.app.db.uow() as session:
            assert session.scalar(select(func.count()).select_from(Poll)) == 0

    run(migrated_sqlite_url, clock, scenario)


def test_the_bot_mention_is_stripped_but_its_name_inside_the_text_stays(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        await server.say("decide Align ships the SSO work first")
        with server.app.db.uow() as session:
            titles = list(session.scalars(select(Decision.title)))
        assert titles == ["Align ships the SSO work first"]

    run(migrated_sqlite_url, clock, scenario)


def test_a_mentioned_person_is_resolved_to_their_aad_id(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        await server.say("decide Use Postgres owner:<at>Ben</at>", mentions=(BEN,))
        with server.app.db.uow() as session:
            [owner] = list(session.scalars(select(Decision.owner)))
        assert owner == BEN.aad
        # ...and shown by name in the card.
        card = card_of(server.connector.sent_of("reply")[0].activity)
        assert any("Ben" in t for t in texts_of(card))
        assert not any(BEN.aad in t for t in texts_of(card))

    run(migrated_sqlite_url, clock, scenario)


def test_a_redelivered_activity_is_handled_once(migrated_db_url: str, clock: FakeClock) -> None:
    async def scenario(server: TeamsServer) -> None:
        incoming = await server.say("decide Launch in EU first")
        assert await server.post(incoming) in (200, 201)
        assert len(server.connector.sent_of("reply")) == 1
        with server.app.db.uow() as session:
            assert session.scalar(select(func.count()).select_from(Decision)) == 1

    run(migrated_db_url, clock, scenario)


def test_works_in_a_personal_chat_without_a_mention(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        from tests.teams.harness import message

        activity = message(
            "ask Which regions?", service_url=server.service_url, by=ANA, mention_bot=False
        )
        activity["conversation"] = {
            "id": "a:1personal",
            "conversationType": "personal",
            "tenantId": activity["conversation"]["tenantId"],
        }
        activity["channelData"] = {"tenant": activity["channelData"]["tenant"]}
        assert await server.post(activity) == 201
        [reply] = server.connector.sent_of("reply")
        assert reply.conversation_id == "a:1personal"
        assert "Q-1" in texts_of(card_of(reply.activity))[0]

    run(migrated_sqlite_url, clock, scenario)


def test_the_bot_framework_emulator_works_without_tenant_or_aad_ids(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    """The Emulator sends no channelData, tenant or AAD ids: its own ids stand in."""

    async def scenario(server: TeamsServer) -> None:
        activity = {
            "type": "message",
            "id": "emu-1",
            "channelId": "emulator",
            "serviceUrl": server.service_url,
            "from": {"id": "emulator-user", "name": "User"},
            "recipient": {"id": "emulator-bot", "name": "Bot"},
            "conversation": {"id": "emulator-conversation|livechat"},
            "text": "item SSO login lane:now",
            "textFormat": "plain",
        }
        assert await server.post(activity) == 201
        [reply] = server.connector.sent_of("reply")
        assert "I-1" in texts_of(card_of(reply.activity))[0]
        with server.app.db.uow() as session:
            ref = session.get(ConversationRef, ("teams:emulator", "emulator-conversation|livechat"))
            assert ref is not None

    run(migrated_sqlite_url, clock, scenario)


def test_installing_the_app_stores_the_conversation_reference(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        from tests.teams.harness import message

        activity = message("", service_url=server.service_url, mention_bot=False)
        activity.update(type="installationUpdate", action="add")
        activity["conversation"]["id"] = CHANNEL
        del activity["text"]
        assert await server.post(activity) in (200, 201)
        with server.app.db.uow() as session:
            assert session.get(ConversationRef, (WORKSPACE, CHANNEL)) is not None
        assert server.connector.sent == []  # installing says nothing by itself

    run(migrated_sqlite_url, clock, scenario)
