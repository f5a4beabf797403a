"""Voting from Teams: card clicks and card forms record ballots through the engine, and every
posted card of the poll is updated in place (a PUT to the connector) with the new tally."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from adapters.postings import RETRY_FAILED
from bot.clock import FakeClock
from tests.teams.harness import (
    ANA,
    BEN,
    CAI,
    THREAD,
    TeamsServer,
    actions_of,
    card_of,
    teams_server,
    texts_of,
)


async def open_poll(server: TeamsServer, line: str) -> tuple[str, dict[str, Any]]:
    """Post a poll by @mention; return the posted card's activity id and the card."""
    await server.say(line)
    [reply] = server.connector.sent_of("reply")
    assert reply.result_id
    return reply.result_id, card_of(reply.activity)


def results(server: TeamsServer, poll: str = "P-1") -> dict[str, Any]:
    reply = server.app.engine.handle(server.actor(ANA), f"results {poll}")
    assert reply.ok, reply.error
    return reply.data


def test_three_people_vote_by_card_and_the_card_is_updated_in_place(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        server.paced_by_the_clock()  # the card is updated after each click, a second apart
        card_id, card = await open_poll(server, "poll “Ship date or scope?” “Date” “Scope”")
        date, scope = (a["data"] for a in actions_of(card))
        await server.click(date, card_id=card_id, by=ANA)
        await server.click(scope, card_id=card_id, by=BEN)
        await server.click(date, card_id=card_id, by=CAI)

        res = results(server)
        assert res["ballots"] == 3
        assert res["counts"] == {"Date": 2, "Scope": 1}
        updates = server.connector.sent_of("update")
        assert len(updates) == 3
        assert {(u.conversation_id, u.activity_id, u.method) for u in updates} == {
            (THREAD, card_id, "PUT")
        }
        final = texts_of(card_of(updates[-1].activity))
        assert "3 of 4 voted · not yet: Dee" in final
        assert "Leading: Date" in final
        date_row = final.index("1. Date")
        assert final[date_row + 2] == "2 ★"  # label, bar, count with the leader's star
        # Clicks answer quietly: no new post per vote.
        assert len(server.connector.sent_of("reply")) == 1

    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_typed_vote_confirms_in_one_line_and_updates_the_card(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, _ = await open_poll(server, "poll “Lunch?” “Pizza” “Salad”")
        await server.say("vote P-1 2", by=BEN)
        confirm = server.connector.sent_of("reply")[-1]
        assert confirm.text == "Recorded your vote on P-1: Salad"
        [update] = server.connector.sent_of("update")
        assert update.activity_id == card_id
        assert "1 of 4 voted" in " ".join(texts_of(card_of(update.activity)))

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_ranked_ballot_is_a_form_on_the_card(migrated_sqlite_url: str, clock: FakeClock) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(
            server, "poll “Which first?” “SSO” “Audit log” “Exports” mode:ranked"
        )
        inputs = [e for e in card["body"] if e["type"] == "Input.ChoiceSet"]
        assert [i["id"] for i in inputs] == ["rank1", "rank2", "rank3"]
        assert inputs[0]["isRequired"] is True
        assert [c["title"] for c in inputs[0]["choices"]] == ["SSO", "Audit log", "Exports"]
        [submit] = actions_of(card)
        assert submit["data"] == {"align_form": "P-1", "mode": "ranked"}

        # Teams merges the inputs into the submit's data.
        values = {**submit["data"], "rank1": "3", "rank2": "1", "rank3": ""}
        await server.click(values, card_id=card_id, by=BEN)
        res = results(server)
        assert res["ballots"] == 1
        assert res["winner"] == "Exports"
        [update] = server.connector.sent_of("update")
        assert update.activity_id == card_id

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_dots_form_over_budget_is_handed_back_with_the_reason_under_each_input(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(server, "poll “Spend?” “A” “B” mode:dots:5")
        numbers = [e for e in card["body"] if e["type"] == "Input.Number"]
        assert [(n["id"], n["max"]) for n in numbers] == [("option1", 5), ("option2", 5)]
        [submit] = actions_of(card)
        await server.click(
            {**submit["data"], "option1": "4", "option2": "3"}, card_id=card_id, by=CAI
        )
        refusal = card_of(server.connector.sent_of("reply")[-1].activity)
        body = refusal["body"]
        reason = "That is 7 points; P-1 allows at most 5."
        assert body[0]["text"] == reason
        inputs = [i for i, e in enumerate(body) if e["type"] == "Input.Number"]
        assert [body[i]["id"] for i in inputs] == ["option1", "option2"]
        for i in inputs:  # the message right under each input that gave points
            assert body[i + 1]["type"] == "TextBlock" and body[i + 1]["text"] == reason
            assert body[i + 1]["color"] == "Attention"
        [resubmit] = actions_of(refusal)
        assert resubmit["data"] == submit["data"]
        assert results(server)["ballots"] == 0
        assert server.connector.sent_of("update") == []

        await server.click(
            {**submit["data"], "option1": "4", "option2": "1"}, card_id=card_id, by=CAI
        )
        assert results(server)["scores"] == {"A": 4, "B": 1}

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_closing_a_poll_updates_its_card_and_a_late_click_is_told_why(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(server, "poll “Go?” “Yes” “No”")
        await server.say("close P-1")
        [update] = server.connector.sent_of("update")
        assert update.activity_id == card_id
        assert actions_of(card_of(update.activity)) == []  # no buttons on a closed poll
        await server.click(actions_of(card)[0]["data"], card_id=card_id, by=BEN)
        late = server.connector.sent_of("reply")[-1]
        assert "P-1 closed on" in late.text

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_card_the_connector_refuses_is_tried_again_later_and_a_gone_one_is_forgotten(
    migrated_db_url: str, clock: FakeClock
) -> None:
    """403 (the bot may not post there now: adding it back cures it) keeps the card and tries
    it again, each time later, on the worker's catch-up; 404 (the card or the conversation is
    gone) forgets it — as Slack's message-level errors do."""

    async def scenario(server: TeamsServer) -> None:
        server.paced_by_the_clock()
        card_id, card = await open_poll(server, "poll “Ship date or scope?” “Date” “Scope”")
        date, scope = (a["data"] for a in actions_of(card))

        async def catch_up() -> int:
            await server.app.postings.catch_up()
            await server.app.postings.idle()
            return len(server.connector.failed) + len(server.connector.sent_of("update"))

        server.connector.fail_next("update", status=403, times=2)
        await server.click(date, card_id=card_id, by=ANA)
        assert server.app.engine.postings(server.actor(), "P-1") == [(THREAD, card_id)]
        clock.advance(RETRY_FAILED)
        assert await catch_up() == 2  # refused again: the next try waits twice as long
        clock.advance(2 * RETRY_FAILED - timedelta(seconds=1))
        assert await catch_up() == 2
        clock.advance(timedelta(seconds=1))
        assert await catch_up() == 3
        [update] = server.connector.sent_of("update")
        assert "Leading: Date" in texts_of(card_of(update.activity))

        server.connector.fail_next("update", status=404)
        await server.click(scope, card_id=card_id, by=BEN)
        assert server.app.engine.postings(server.actor(), "P-1") == []
        clock.advance(RETRY_FAILED)
        assert await catch_up() == 4  # forgotten: never tried again

    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await scenario(server)

    asyncio.run(main())
