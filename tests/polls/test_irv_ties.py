"""Instant-runoff polls whose options tie for last place, as people see them: the result follows
every elimination order, and `results`/`show` say what the order changed (SQLite and
PostgreSQL)."""

from __future__ import annotations

from adapters.console.render import render
from bot.views import Reply
from tests.conftest import Chat


def shown(reply: Reply) -> str:
    """The console rendering with runs of spaces folded, so checks read as the words do."""
    return "\n".join(" ".join(line.split()) for line in render(reply).splitlines())


# The 45-voter Schulze example on Wikipedia (first preferences A 10, B 8, C 12, D 7, E 8).
WIKIPEDIA = [
    (5, "ACBED"),
    (5, "ADECB"),
    (8, "BEDAC"),
    (3, "CABED"),
    (7, "CAEBD"),
    (2, "CBADE"),
    (7, "DCEBA"),
    (8, "EBADC"),
]


def test_the_45_voter_example_elects_c_and_shows_the_tie_for_last(chat: Chat) -> None:
    chat.ok('poll "Which?" "A" "B" "C" "D" "E" mode:ranked method:irv')
    voter = 0
    for count, order in WIKIPEDIA:
        for _ in range(count):
            voter += 1
            chat.ok(f"vote P-1 {' '.join(order)}", user=f"v{voter}")
    res = chat.ok("results P-1").data
    assert (res["winner"], res["tied"], res["complete"]) == ("C", [], True)
    assert res["rounds"][1] == {
        "counts": {"A": 10, "B": 8, "C": 19, "E": 8},
        "eliminated": ["B"],
        "tied_last": ["B", "E"],
        "outcomes": {},
    }
    assert res["ranking"] == ["C", "E", "A", "B", "D"]
    text = shown(chat.ok("show P-1"))
    assert "Leading: C · Order: C > E > A > B > D" in text
    assert "Round 1 A 10, B 8, C 12, D 7, E 8 (out: D)" in text
    assert (
        "Round 2 A 10, B 8, C 19, E 8 (B, E tied for last; every order gives the same result "
        "· out: B)" in text
    )
    assert "Round 4 C 24, E 21" in text


def test_a_tie_for_last_that_decides_the_winner_is_a_tie_and_says_why(chat: Chat) -> None:
    # Options 1 Ann, 2 Bo, 3 Cy, 4 Di.  Round 1: Di has no first preference and goes.  Round 2:
    # Ann and Cy have 2 each (4 together, more than Bo's 3).  Ann out first: her ballots go to
    # Cy, who has 4 of 7.  Cy out first: his ballots exhaust and Bo holds 3 of 5.
    chat.ok('poll "Lead?" "Ann" "Bo" "Cy" "Di" mode:ranked method:irv')
    for who, order in (
        ("u1", "1 3 2"),
        ("u2", "1 3 4"),
        ("u3", "2 3 1"),
        ("u4", "2 3 1"),
        ("u5", "2 4 1"),
        ("u6", "3"),
        ("u7", "3"),
    ):
        chat.ok(f"vote P-1 {order}", user=who)
    res = chat.ok("results P-1").data
    assert (res["winner"], res["tied"]) == (None, ["Bo", "Cy"])
    assert res["rounds"][-1]["tied_last"] == ["Ann", "Cy"]
    assert res["rounds"][-1]["outcomes"] == {"Ann": ["Cy"], "Cy": ["Bo"]}
    text = shown(chat.ok("show P-1"))
    assert "Tie between Bo and Cy" in text
    assert (
        "Round 2 Ann 2, Bo 3, Cy 2 (Ann, Cy tied for last: Ann out first → Cy wins; "
        "Cy out first → Bo wins)" in text
    )


def test_a_final_two_tie_reads_as_a_tie(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" mode:ranked method:irv')
    chat.ok("vote P-1 1 2", user="ana")
    chat.ok("vote P-1 2 1", user="ben")
    text = shown(chat.ok("show P-1"))
    assert "Tie between Pizza and Sushi" in text
    assert "Round 1 Pizza 1, Sushi 1 (the last two tie)" in text
