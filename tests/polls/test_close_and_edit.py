"""Closing (final, by the creator or an admin, optionally recording a decision) and editing a
poll (a new option keeps every vote)."""

from __future__ import annotations

from adapters.bootstrap import build
from adapters.console.render import render
from bot.clock import FakeClock
from tests.conftest import Chat, make_settings


def test_close_decide_records_a_linked_decision_with_the_frozen_tally(chat: Chat) -> None:
    chat.ok('poll "Ship date or scope?" "Date" "Scope" mode:ranked')
    chat.ok("vote P-1 2 1", user="ana")
    chat.ok("vote P-1 Scope", user="ben")
    chat.ok("vote P-1 1 2", user="cy")
    closed = chat.ok("close P-1 decide")
    assert closed.text == "Closed P-1: Scope · recorded D-1"
    assert closed.data["decision"] == "D-1"
    decision = chat.ok("show D-1")
    assert decision.data["title"] == "Ship date or scope? → Scope"
    assert decision.data["links"]["poll"] == "P-1"
    assert decision.data["tally"]["winner"] == "Scope"
    assert decision.data["tally"]["ranking"] == ["Scope", "Date"]
    assert decision.data["tally"]["participation"]["voted"] == 3
    assert "Links: from poll P-1" in render(decision).splitlines()
    poll = chat.ok("show P-1")
    assert poll.data["decision"] == "D-1"
    assert "Links: decided as D-1" in render(poll).splitlines()
    # The frozen tally does not move: a later look at the poll gives the same result.
    assert chat.ok("results P-1").data["ranking"] == ["Scope", "Date"]


def test_a_tie_is_recorded_as_a_decision_only_when_the_closer_picks_the_winner(
    chat: Chat,
) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" "Tacos"')
    chat.ok("vote P-1 Pizza", user="ana")
    chat.ok("vote P-1 Sushi", user="ben")
    refused = chat.fails("close P-1 decide")
    assert refused.error == (
        "P-1 is a tie between Pizza and Sushi, and a tie is not a decision. "
        "Say which wins: `close P-1 decide pick:Pizza` (or another of them)."
    )
    assert (refused.usage or "").startswith("Usage: close <P-ID> [decide [pick:<option>]]")
    outside = chat.fails("close P-1 decide pick:Tacos")
    assert outside.error == "pick: names one of the tied options: Pizza, Sushi (not `Tacos`)."
    loose = chat.fails("close P-1 pick:Sushi")
    assert loose.error == "pick: breaks a tie for a decision: `close P-1 decide pick:…`."
    # Refused three times, nothing changed: still open, no decision, still votable.
    assert chat.ok("results P-1").data["closed"] is False
    assert chat.ok("decisions").data["decisions"] == []
    chat.ok("vote P-1 Pizza", user="cy")
    chat.ok("vote P-1 Tacos", user="cy")  # changed: now a three-way tie
    closed = chat.ok("close P-1 decide pick:sushi", user="pm")
    assert closed.text == "Closed P-1: a tie · recorded D-1 (Sushi, tie broken by <@pm>)"
    decision = chat.ok("show D-1")
    assert decision.data["title"] == "Lunch? → Sushi"
    assert decision.data["rationale"] == (
        "Result of P-1 (plurality): Pizza = Sushi = Tacos; 3 of 4 voted. "
        "Tie between Pizza, Sushi and Tacos broken by <@pm> for Sushi."
    )
    assert "broken by @pm for Sushi." in render(decision)
    tally = decision.data["tally"]
    assert (tally["winner"], tally["picked"], tally["picked_by"]) == (None, "Sushi", "pm")
    assert tally["tied"] == ["Pizza", "Sushi", "Tacos"]
    assert chat.ok("show P-1").data["picked"] == "Sushi"


def test_pick_takes_an_option_number_and_refuses_where_nothing_is_tied(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B"')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 2", user="ben")
    assert chat.ok("close P-1 decide pick:2").text.startswith("Closed P-1: a tie · recorded D-1 (B")
    chat.ok('poll "R" "A" "B"')
    chat.ok("vote P-2 1", user="ana")
    untied = chat.fails("close P-2 decide pick:A")
    assert untied.error == "P-2 is not tied; pick: only breaks a tie."
    assert chat.ok("close P-2 decide").text == "Closed P-2: A · recorded D-2"
    # Closing a tie without recording a decision needs no pick.
    chat.ok('poll "S" "A" "B"')
    chat.ok("vote P-3 1", user="ana")
    chat.ok("vote P-3 2", user="ben")
    assert chat.ok("close P-3").text == "Closed P-3: a tie"


def test_only_the_creator_or_an_admin_may_close_or_edit(chat: Chat, migrated_db_url: str) -> None:
    chat.ok('poll "Q" "A" "B"', user="ana")
    chat.ok('poll "R" "A" "B"', user="ana")
    chat.ok('poll "S" "A" "B"', user="ana")
    refused = chat.fails("close P-1", user="ben")
    assert refused.data["code"] == "forbidden"
    assert chat.fails('edit P-1 add:"C"', user="ben").data["code"] == "forbidden"
    assert chat.ok("close P-1", user="ben", is_admin=True).text == "Closed P-1: no votes"
    assert chat.ok('edit P-2 add:"C"', user="ben", is_admin=True).text == "Edited P-2: options"
    assert chat.ok("close P-3", user="ana").ok
    # ALIGN_ADMINS names workspace admins too.
    admins = build(
        make_settings(migrated_db_url, ALIGN_ADMINS="@cy"), clock=FakeClock(), migrate=False
    )
    try:
        cy = Chat(admins)
        assert cy.ok("close P-2", user="cy").text == "Closed P-2: no votes"
    finally:
        admins.db.dispose()


def test_an_added_option_keeps_every_vote_and_sits_at_the_bottom_of_older_rankings(
    chat: Chat,
) -> None:
    chat.ok('poll "Next?" "Alpha" "Beta" mode:ranked')
    chat.ok("vote P-1 1 2", user="ana")
    chat.ok("vote P-1 2 1", user="ben")
    edited = chat.ok('edit P-1 add:"Gamma"')
    assert edited.data["options"] == ["Alpha", "Beta", "Gamma"]
    chat.ok("vote P-1 3 1 2", user="cy")
    res = chat.ok("results P-1").data
    assert res["ballots"] == 3
    # ana and ben ranked before Gamma existed: both put Gamma below Alpha and Beta.
    assert res["pairwise"][0][2] == 2 and res["pairwise"][1][2] == 2
    assert res["pairwise"][2][0] == 1 and res["pairwise"][2][1] == 1
    assert res["winner"] == "Alpha"
    history = chat.ok("show P-1").data["history"]
    assert [h["action"] for h in history] == ["create", "edit"]
    assert history[1]["after"]["options"] == ["Alpha", "Beta", "Gamma"]


def test_an_added_option_keeps_every_vote_in_the_other_modes(chat: Chat) -> None:
    chat.ok('poll "One" "A" "B"')
    chat.ok('poll "Any" "A" "B" mode:multi')
    chat.ok('poll "Dots" "A" "B" mode:dots:3')
    for number, ballot in ((1, "1"), (2, "1 2"), (3, "1=2 2=1")):
        chat.ok(f"vote P-{number} {ballot}", user="ana")
        chat.ok(f'edit P-{number} add:"C" add:"D"')
        chat.ok(f"vote P-{number} {ballot.replace('1', '4', 1)}", user="ben")
    assert chat.ok("results P-1").data["counts"] == {"A": 1, "B": 0, "C": 0, "D": 1}
    assert chat.ok("results P-2").data["counts"] == {"A": 1, "B": 2, "C": 0, "D": 1}
    assert chat.ok("results P-3").data["scores"] == {"A": 2, "B": 2, "C": 0, "D": 2}


def test_edit_title_and_closing_time(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B"')
    assert chat.ok('edit P-1 title:"Better question"').text == "Edited P-1: question"
    assert chat.ok("edit P-1 closes:2026-12-01").text == "Edited P-1: closes"
    assert chat.ok("results P-1").data["question"] == "Better question"
    assert chat.fails("edit P-1 closes:2026-12-01").error == "Nothing changed on P-1."
    too_many = chat.fails("edit P-1 " + " ".join(f'add:"o{i}"' for i in range(24)))
    assert too_many.error == "A poll has 2 to 25 options; you gave 26."


def test_edit_cannot_add_to_a_prioritization(chat: Chat) -> None:
    chat.ok("item SSO")
    chat.ok("item Audit log")
    chat.ok("prioritize I-1 I-2")
    refused = chat.fails('edit P-1 add:"Other"')
    assert refused.error == "Add items to a prioritization by opening a new one."
