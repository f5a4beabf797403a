"""Each poll mode through the engine: what a ballot may be, that the last ballot counts, and
that closing is final — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from tests.conftest import Chat


def test_single_choice_is_plurality_and_a_tie_is_reported_as_a_tie(chat: Chat) -> None:
    opened = chat.ok('poll "Lunch?" "Pizza" "Sushi" "Tacos"')
    assert opened.data["id"] == "P-1" and opened.data["mode"] == "single"
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 Sushi", user="ben")
    res = chat.ok("results P-1")
    assert res.data["winner"] is None
    assert res.data["tied"] == ["Pizza", "Sushi"]
    assert res.data["counts"] == {"Pizza": 1, "Sushi": 1, "Tacos": 0}
    chat.ok("vote P-1 sushi", user="cy")
    res = chat.ok("results P-1")
    assert res.data["winner"] == "Sushi"
    assert res.data["ranking"] == ["Sushi", "Pizza", "Tacos"]


def test_multi_choice_counts_approvals_and_toggles_work(chat: Chat) -> None:
    chat.ok('poll "Which days?" "Mon" "Tue" "Wed" mode:multi')
    chat.ok("vote P-1 1 3", user="ana")
    chat.ok("vote P-1 Tue", user="ben")
    chat.ok("vote P-1 +1", user="ben")
    chat.ok("vote P-1 ~2", user="ben")  # toggles Tue off: ben now approves Mon only
    res = chat.ok("results P-1")
    assert res.data["counts"] == {"Mon": 2, "Tue": 0, "Wed": 1}
    assert res.data["winner"] == "Mon"
    assert res.data["ballots"] == 2


def test_ranked_ballots_may_be_partial_and_the_unranked_share_the_bottom(chat: Chat) -> None:
    chat.ok('poll "Next bet?" "A" "B" "C" "D" mode:ranked')
    # Each voter ranks only their favourite; B is ranked first twice, and by everyone else
    # above nothing, so B beats every option pairwise.
    chat.ok("vote P-1 B", user="ana")
    chat.ok("vote P-1 B", user="ben")
    chat.ok("vote P-1 C", user="cy")
    res = chat.ok("results P-1")
    assert res.data["method"] == "schulze"
    assert res.data["winner"] == "B"
    assert res.data["ranking"][:2] == ["B", "C"]
    assert set(res.data["ranking"][2:]) == {"A", "D"}
    assert res.data["pairwise"][1][0] == 2  # B over A on ana's and ben's ballots
    assert res.data["pairwise"][0][3] == 0  # A and D share the bottom everywhere
    assert "scores" in res.data and "counts" not in res.data


def test_ranked_method_borda_and_irv_on_request(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B" "C" mode:ranked method:irv')
    chat.ok('poll "Q" "A" "B" "C" mode:ranked method:borda')
    for who, order in (("ana", "1 2 3"), ("ben", "2 1 3"), ("cy", "3 2 1"), ("dee", "1 3 2")):
        chat.ok(f"vote P-1 {order}", user=who)
        chat.ok(f"vote P-2 {order}", user=who)
    irv = chat.ok("results P-1").data
    # B and C tie for last on one vote each (two together, as many as A's): B out first sends
    # ben's vote to A (3 of 4); C out first sends cy's to B, and A and B tie 2-2.  Following
    # both orders, instant-runoff is a tie between A and B.
    assert irv["method"] == "irv" and (irv["winner"], irv["tied"]) == (None, ["A", "B"])
    assert irv["rounds"][0]["tied_last"] == ["B", "C"]
    borda = chat.ok("results P-2").data
    assert borda["method"] == "borda" and borda["winner"] == "A"


def test_dots_spread_points_up_to_the_budget_and_refuse_more(chat: Chat) -> None:
    chat.ok('poll "Spend" "Infra" "UX" "Docs" mode:dots:5')
    chat.ok("vote P-1 1=3 2=2", user="ana")
    chat.ok("vote P-1 UX=5", user="ben")
    over = chat.fails("vote P-1 1=4 3=2", user="cy")
    assert over.error == "That is 6 points; P-1 allows at most 5."
    chat.ok("vote P-1 3=1", user="cy")  # fewer than the budget is fine
    res = chat.ok("results P-1")
    assert res.data["scores"] == {"Infra": 3, "UX": 7, "Docs": 1}
    assert res.data["winner"] == "UX"
    assert res.data["mode"] == "dots:5"


def test_the_last_ballot_counts_until_close(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B"')
    first = chat.ok("vote P-1 A", user="ana")
    assert first.text == "Recorded your vote on P-1: A"
    second = chat.ok("vote P-1 B", user="ana")
    assert second.text == "Changed your vote on P-1: B"
    res = chat.ok("results P-1")
    assert res.data["counts"] == {"A": 0, "B": 1}
    assert res.data["ballots"] == 1


def test_two_to_twenty_five_options(chat: Chat) -> None:
    two = " ".join(f'"o{i}"' for i in range(2))
    many = " ".join(f'"o{i}"' for i in range(25))
    assert chat.ok(f'poll "Q" {two}').data["options"] == ["o0", "o1"]
    assert len(chat.ok(f'poll "Q" {many}').data["options"]) == 25
    too_many = chat.fails(f'poll "Q" {many} "o25"')
    assert too_many.error == "A poll has 2 to 25 options; you gave 26."


def test_closing_is_final_and_a_late_vote_is_told_when(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B"')
    chat.ok("vote P-1 A", user="ana")
    closed = chat.ok("close P-1")
    assert closed.text == "Closed P-1: A"
    late = chat.fails("vote P-1 B", user="ana")
    assert late.error == "P-1 closed on Wed 2026-11-25 09:00 UTC."
    again = chat.fails("close P-1")
    assert again.error == "P-1 closed on Wed 2026-11-25 09:00 UTC."
    assert chat.fails('edit P-1 add:"C"').error == "P-1 closed on Wed 2026-11-25 09:00 UTC."
    assert chat.ok("results P-1").data["counts"] == {"A": 1, "B": 0}


def test_a_passed_closing_time_refuses_votes_before_the_scheduler_closes_it(
    chat: Chat, clock: FakeClock
) -> None:
    chat.ok('poll "Q" "A" "B" closes:2026-11-26T17:00')
    chat.ok("vote P-1 A", user="ana")
    clock.advance(timedelta(days=2))
    late = chat.fails("vote P-1 B", user="ben")
    assert late.error == "P-1 closed on Thu 2026-11-26 17:00 UTC."
    res = chat.ok("results P-1")
    assert res.data["closed"] is True and res.data["winner"] == "A"
    # Closing it now freezes it at its closing time, not at the moment of the command.
    chat.ok("close P-1")
    assert chat.fails("vote P-1 B", user="ben").error == "P-1 closed on Thu 2026-11-26 17:00 UTC."


def test_closes_in_the_channel_time_zone_and_shown_in_the_header(chat: Chat) -> None:
    reply = chat.ok('poll "Q" "A" "B" closes:3d')
    assert reply.data["closed"] is False
    assert any("closes Sat 2026-11-28 09:00 UTC" in getattr(b, "text", "") for b in reply.blocks)
