"""Sign-off in a Teams channel, through `/api/messages` and the fake connector: the proposal's
Adaptive Card @mentions its approvers once, Agree / Abstain submit, Object / Block ask the reason
in an Action.ShowCard; every answer updates the card in place; the acceptance is posted once and
the informed person gets a personal message (a conversation the bot creates)."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters import runtime
from bot.clock import FakeClock
from tests.teams.harness import (
    ANA,
    BEN,
    CAI,
    CHANNEL,
    DEE,
    TENANT,
    THREAD,
    TeamsServer,
    actions_of,
    card_of,
    texts_of,
)
from tests.time.helpers import teams_server_with_runtime


def mentioned(card: dict[str, Any]) -> list[str]:
    return [e["mentioned"]["id"] for e in card.get("msteams", {}).get("entities", [])]


async def propose(server: TeamsServer) -> tuple[str, dict[str, Any]]:
    await server.say(
        "propose Launch in EU first | GDPR work is done "
        "approvers:<at>Ben</at>,<at>Cai</at> informed:<at>Dee</at>",
        by=ANA,
        mentions=(BEN, CAI, DEE),
    )
    [reply] = server.connector.sent_of("reply")
    assert reply.result_id
    return reply.result_id, card_of(reply.activity)


def test_the_proposal_card_mentions_approvers_once_and_follows_every_answer(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        server.paced_by_the_clock()  # the card follows each answer, a second apart
        card_id, card = await propose(server)
        texts = texts_of(card)
        assert "D-1 · Launch in EU first" in texts
        assert "<at>Ben</at>: ⏳ not yet" in texts and "<at>Cai</at>: ⏳ not yet" in texts
        assert mentioned(card) == [BEN.aad, CAI.aad]  # the approvers are called on, once
        assert any("Informed: Dee" in t for t in texts)  # named, not pinged
        agree, abstain, object_, block = actions_of(card)
        assert agree["data"] == {"align": "agree D-1"} and abstain["title"] == "Abstain"
        assert object_["type"] == "Action.ShowCard"
        (reason,) = object_["card"]["body"]
        assert reason["type"] == "Input.Text" and reason["isRequired"] is True
        (submit,) = object_["card"]["actions"]
        assert submit["data"] == {"align_ask": "object D-1", "align_input": reason["id"]}
        assert block["card"]["body"][0]["id"] != reason["id"]  # each input its own id

        await server.click(agree["data"], card_id=card_id, by=BEN)
        [update] = server.connector.sent_of("update")
        assert (update.conversation_id, update.activity_id, update.method) == (
            THREAD,
            card_id,
            "PUT",
        )
        updated = card_of(update.activity)
        assert "Ben: ✅ agrees" in texts_of(updated)
        assert mentioned(updated) == []  # a refresh names people without pinging them again
        assert len(server.connector.sent_of("reply")) == 1  # a click adds no post

        empty = {**submit["data"], reason["id"]: "  "}
        await server.click(empty, card_id=card_id, by=CAI)
        refusal = server.connector.sent_of("reply")[-1]
        assert refusal.text == (
            "An objection needs a reason: `object D-1 | &lt;why&gt;`.\n\n"
            "Usage: object &lt;D-ID&gt; | &lt;reason&gt;"
        )
        assert len(server.connector.sent_of("update")) == 1  # nothing changed

        given = {**submit["data"], reason["id"]: "the DPA is not signed"}
        await server.click(given, card_id=card_id, by=CAI)
        updated = card_of(server.connector.sent_of("update")[-1].activity)
        assert "Cai: ⚠️ objects: the DPA is not signed" in texts_of(updated)
        assert any("held by Cai" in t for t in texts_of(updated))

        await server.click(agree["data"], card_id=card_id, by=CAI)
        final = card_of(server.connector.sent_of("update")[-1].activity)
        assert "Accepted (all)." in texts_of(final)
        assert actions_of(final) == []

        mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
        assert await mounted.tick_and_dispatch() == 2
        sends = server.connector.sent_of("send")
        in_channel = [s for s in sends if s.conversation_id == CHANNEL]
        assert [texts_of(card_of(s.activity))[0] for s in in_channel] == [
            "✅ *D-1 accepted — Ben, Cai agreed*"
        ]
        [created] = server.connector.sent_of("create_conversation")
        assert [m["id"] for m in created.activity["members"]] == [DEE.teams_id]
        assert created.activity["isGroup"] is False
        assert created.activity["channelData"]["tenant"]["id"] == TENANT
        [direct] = [s for s in sends if s.conversation_id == created.result_id]
        assert texts_of(card_of(direct.activity))[0].startswith(
            "For your information: D-1 “Launch in EU first” was accepted"
        )
        assert await mounted.tick_and_dispatch() == 0
        assert len(server.connector.sent_of("send")) == 2  # each told once

    async def main() -> None:
        async with teams_server_with_runtime(migrated_db_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_typed_stance_confirms_in_one_line_and_pending_lists_what_is_owed(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, _ = await propose(server)
        await server.say("pending", by=BEN)
        owed = card_of(server.connector.sent_of("reply")[-1].activity)
        assert "D-1: Launch in EU first" in texts_of(owed)
        await server.say("block D-1 | the DPA is not signed", by=BEN)
        confirm = server.connector.sent_of("reply")[-1]
        assert confirm.text == "Recorded your block on D-1 — “the DPA is not signed”"
        [update] = server.connector.sent_of("update")
        assert update.activity_id == card_id
        await server.say("status D-1 accepted", by=DEE)
        assert server.connector.sent_of("reply")[-1].text.startswith("Only Ana or a workspace")

    async def main() -> None:
        async with teams_server_with_runtime(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())
