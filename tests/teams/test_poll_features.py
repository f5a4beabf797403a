"""The poll features through Teams: a reason input on ballot forms, the Add option ShowCard, a
multi cap refused on a click, a hidden tally the card does not show until close, a public poll
naming its voters, and a recurring poll sent proactively that clicks then update in place."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters import runtime
from bot.clock import FakeClock
from tests.teams.harness import (
    BEN,
    CAI,
    TeamsServer,
    actions_of,
    card_of,
    teams_server,
    texts_of,
)
from tests.teams.test_votes import open_poll, results
from tests.time.helpers import teams_server_with_runtime


def test_a_ranked_form_takes_an_optional_reason(migrated_sqlite_url: str, clock: FakeClock) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(server, "poll “First?” “SSO” “Audit” mode:ranked")
        (reason,) = [e for e in card["body"] if e["type"] == "Input.Text"]
        assert reason["id"] == "reason" and reason.get("isRequired") is None
        assert (reason["isMultiline"], reason["maxLength"]) == (True, 1000)
        [submit] = actions_of(card)
        values = {**submit["data"], "rank1": "2", "rank2": "", "reason": "auditors asked"}
        await server.click(values, card_id=card_id, by=BEN)
        assert results(server)["reasons"] == [{"voter": BEN.aad, "reason": "auditors asked"}]
        [update] = server.connector.sent_of("update")
        assert "“auditors asked”" in " ".join(texts_of(card_of(update.activity)))

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_add_option_is_a_card_input_that_updates_the_card_in_place(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(server, "poll “Lunch?” “Pizza” “Sushi” options:open")
        (show,) = [a for a in actions_of(card) if a["type"] == "Action.ShowCard"]
        assert show["title"] == "Add option"
        (field,) = show["card"]["body"]
        assert field["type"] == "Input.Text" and field["isMultiline"] is False
        (submit,) = show["card"]["actions"]
        assert submit["data"] == {
            "align_ask": "edit P-1",
            "align_input": field["id"],
            "align_into": "add",
        }
        await server.click({**submit["data"], field["id"]: "sushi"}, card_id=card_id, by=BEN)
        refusal = server.connector.sent_of("reply")[-1]
        assert refusal.text.startswith("The option “sushi” is given twice.")
        assert server.connector.sent_of("update") == []

        await server.click({**submit["data"], field["id"]: "Ramen"}, card_id=card_id, by=BEN)
        assert results(server)["options"] == ["Pizza", "Sushi", "Ramen"]
        [update] = server.connector.sent_of("update")
        assert update.activity_id == card_id
        titles = [a["title"] for a in actions_of(card_of(update.activity))]
        assert titles == ["Pizza", "Sushi", "Ramen", "Add option"]
        assert len(server.connector.sent_of("reply")) == 2  # the poll and the refusal only

    async def main() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_click_past_the_cap_is_refused_in_words(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        card_id, card = await open_poll(server, "poll “One only” “A” “B” mode:multi max:1")
        a, b = (x["data"] for x in actions_of(card))
        await server.click(a, card_id=card_id, by=CAI)
        await server.click(b, card_id=card_id, by=CAI)
        refusal = server.connector.sent_of("reply")[-1]
        assert refusal.text.startswith(
            "P-1 allows at most 1 choice; that would make 2 (A, B). Unpick one first"
        )
        assert results(server)["counts"] == {"A": 1, "B": 0}

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_hidden_results_stay_off_the_card_and_public_ones_name_voters(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    async def scenario(server: TeamsServer) -> None:
        hidden_id, hidden = await open_poll(server, "poll “Sealed?” “Yes” “No” results:hidden")
        await server.click(actions_of(hidden)[0]["data"], card_id=hidden_id, by=BEN)
        [update] = server.connector.sent_of("update")
        texts = texts_of(card_of(update.activity))
        assert "Results are hidden until P-1 closes (by hand)." in texts
        assert not [t for t in texts if "█" in t or "░" in t or "Leading" in t]

        await server.say("poll “Open?” “Yes” “No” public")
        public = server.connector.sent_of("reply")[-1]
        await server.click(
            actions_of(card_of(public.activity))[1]["data"], card_id=public.result_id, by=BEN
        )
        shown = texts_of(card_of(server.connector.sent_of("update")[-1].activity))
        assert "2. No: Ben" in shown

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_recurring_poll_is_sent_proactively_and_clicks_update_it(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server_with_runtime(migrated_db_url, clock) as server:
            mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
            start = clock.now()
            await server.say("poll “Pulse?” “Up” “Down” closes:2d every:week")
            clock.set(start + timedelta(weeks=1))
            assert await mounted.tick_and_dispatch() == 2  # P-1's result, then P-2
            assert await mounted.tick_and_dispatch() == 0
            sent = server.connector.sent_of("send")
            (second,) = [s for s in sent if texts_of(card_of(s.activity))[0].startswith("P-2 ")]
            card = card_of(second.activity)
            assert any("The next period of P-1" in t for t in texts_of(card))
            await server.click(actions_of(card)[0]["data"], card_id=second.result_id, by=BEN)
            update = server.connector.sent_of("update")[-1]  # (the one before closed P-1)
            assert update.activity_id == second.result_id
            assert any("1 of" in t for t in texts_of(card_of(update.activity)))

    asyncio.run(main())
