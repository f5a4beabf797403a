"""What `results` and `show` tell people: bars, the winner or the tie, participation, and for
ranked polls the order and (on show) the pairwise matrix — as text and as JSON."""

from __future__ import annotations

from adapters.console.render import render
from tests.conftest import Chat


def test_results_show_bars_the_leader_and_who_has_not_voted(chat: Chat) -> None:
    chat.ok("item Warm up", user="dee")  # dee is in the channel and never votes
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 1", user="ben")
    chat.ok("vote P-1 2", user="cy")
    lines = render(chat.ok("results P-1")).splitlines()
    assert lines == [
        "P-1 · Lunch?",
        "────────────",
        "one choice · by @pm",
        "  1. Pizza  ████████████████████ 2 ★",
        "  2. Sushi  ██████████░░░░░░░░░░ 1",
        "Leading: Pizza",
        "3 of 5 voted · not yet: @dee, @pm",
    ]
    data = chat.ok("results P-1").to_json()
    assert data["winner"] == "Pizza"
    assert data["ranking"] == ["Pizza", "Sushi"]
    assert data["counts"] == {"Pizza": 2, "Sushi": 1}
    assert data["participation"] == {"voted": 3, "eligible": 5, "not_voted": ["dee", "pm"]}


def test_a_tie_names_the_tied_options_and_no_winner(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" "Tacos"')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 2", user="ben")
    chat.ok("close P-1")
    reply = chat.ok("results P-1")
    assert "Tie between Pizza and Sushi" in render(reply).splitlines()
    assert reply.data["winner"] is None and reply.data["tied"] == ["Pizza", "Sushi"]
    assert reply.data["closed"] is True


def test_anonymous_results_show_counts_but_never_names(chat: Chat) -> None:
    chat.ok("item Warm up", user="dee")
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    chat.ok("vote P-1 Yes", user="ana")
    text = render(chat.ok("results P-1"))
    assert text.splitlines()[-2:] == [
        "1 of 3 voted",
        "1 vote not counted yet: an anonymous poll counts votes 5 or more at a time (and all "
        "at close), so no one vote shows.",
    ]
    assert "@dee" not in text and "@ana" not in text
    assert "not_voted" not in chat.ok("results P-1").data["participation"]


def test_ranked_results_give_the_order_and_show_adds_the_pairwise_matrix(chat: Chat) -> None:
    chat.ok('poll "Next?" "Alpha" "Beta" "Gamma" mode:ranked')
    chat.ok("vote P-1 2 1 3", user="ana")
    chat.ok("vote P-1 2 3 1", user="ben")
    chat.ok("vote P-1 1 2 3", user="cy")
    results = chat.ok("results P-1")
    assert "Leading: Beta · Order: Beta > Alpha > Gamma" in render(results).splitlines()
    assert "Pairwise" not in render(results)
    assert results.data["ranking"] == ["Beta", "Alpha", "Gamma"]
    assert results.data["scores"] == {"Alpha": 1, "Beta": 2, "Gamma": 0}
    shown = render(chat.ok("show P-1")).splitlines()
    start = shown.index("Pairwise (row preferred over column)")
    assert shown[start + 1 : start + 5] == [
        "       1   2   3",
        "  1    —   1   2",
        "  2    2   —   3",
        "  3    1   0   —",
    ]
    assert "Condorcet winner: Beta" in shown
    assert chat.ok("show P-1").data["pairwise"] == [[0, 1, 2], [2, 0, 3], [1, 0, 0]]


def test_dots_results_are_point_totals(chat: Chat) -> None:
    chat.ok('poll "Spend" "Infra" "UX" mode:dots:10')
    chat.ok("vote P-1 1=7 2=3", user="ana")
    chat.ok("vote P-1 2=10", user="ben")
    reply = chat.ok("results P-1")
    assert reply.data["scores"] == {"Infra": 7, "UX": 13}
    assert "  2. UX     ████████████████████ 13 ★" in render(reply).splitlines()


def test_an_empty_poll_says_so(chat: Chat) -> None:
    chat.ok('poll "Q" "A" "B"')
    reply = chat.ok("results P-1")
    assert "No votes yet." in render(reply).splitlines()
    assert reply.data["winner"] is None and reply.data["tied"] == []
