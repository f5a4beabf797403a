"""Tests for bot.tally: table cases, published examples, a pref_voting cross-check, properties."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import runoff
from bot.tally import (
    IrvRound,
    IrvWork,
    Tally,
    approval,
    borda,
    irv,
    pairwise_matrix,
    plurality,
    points,
    ranked,
    schulze,
)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def expand(spec: Sequence[tuple[int, str]], names: str) -> list[list[int]]:
    """Turn ("count", "ACB") pairs into ballots of option indexes, letters indexing ``names``."""
    return [[names.index(ch) for ch in order] for count, order in spec for _ in range(count)]


def naive_pairwise(n: int, ballots: Sequence[Sequence[int]]) -> list[list[int]]:
    d = [[0] * n for _ in range(n)]
    for ballot in ballots:
        ranked_set = set(ballot)
        for a, i in enumerate(ballot):
            for j in ballot[a + 1 :]:
                d[i][j] += 1
            for j in range(n):
                if j not in ranked_set:
                    d[i][j] += 1
    return d


def naive_borda(n: int, ballots: Sequence[Sequence[int]]) -> list[float]:
    scores = [0.0] * n
    for ballot in ballots:
        for k, option in enumerate(ballot):
            scores[option] += n - 1 - k
        rest = [o for o in range(n) if o not in ballot]
        if rest:
            share = sum(range(n - len(ballot))) / len(rest)
            for option in rest:
                scores[option] += share
    return scores


def winner_set(tally: Tally) -> list[int]:
    return [tally.winner] if tally.winner is not None else tally.tied


def check_invariants(tally: Tally, n: int) -> None:
    flat = [o for tier in tally.ranking for o in tier]
    assert sorted(flat) == list(range(n)), "ranking must partition the options"
    assert all(tier for tier in tally.ranking), "no empty tiers"
    assert len(tally.scores) == n
    if tally.ballots == 0:
        assert tally.winner is None and tally.tied == []
        assert tally.ranking == [list(range(n))]
        assert tally.scores == [0.0] * n
    elif len(tally.ranking[0]) == 1:
        assert tally.winner == tally.ranking[0][0] and tally.tied == []
    else:
        assert tally.winner is None and tally.tied == sorted(tally.ranking[0])
    as_json = tally.to_json()
    assert json.loads(json.dumps(as_json)) == as_json


# --------------------------------------------------------------------------------------------
# Plurality, approval, points
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "ballots", "scores", "ranking", "winner", "tied"),
    [
        (3, [0, 1, 1, 2, 1], [1, 3, 1], [[1], [0, 2]], 1, []),
        (3, [0, 1, 0, 1, 2], [2, 2, 1], [[0, 1], [2]], None, [0, 1]),
        (2, [1], [0, 1], [[1], [0]], 1, []),
        (1, [0, 0], [2], [[0]], 0, []),
        (3, [], [0, 0, 0], [[0, 1, 2]], None, []),
    ],
)
def test_plurality_table(n, ballots, scores, ranking, winner, tied):
    tally = plurality(n, ballots)
    assert tally.method == "plurality"
    assert tally.scores == scores
    assert tally.ranking == ranking
    assert (tally.winner, tally.tied) == (winner, tied)
    assert tally.ballots == len(ballots)
    check_invariants(tally, n)


@pytest.mark.parametrize(
    ("n", "ballots", "scores", "winner", "tied"),
    [
        (3, [{0, 1}, {1}, {2}], [1, 2, 1], 1, []),
        (3, [[0, 1], [1, 2], [2, 0]], [2, 2, 2], None, [0, 1, 2]),
        (3, [set(), {2}], [0, 0, 1], 2, []),
        (2, [set(), ()], [0, 0], None, [0, 1]),  # empty ballots still count as cast
        (3, [], [0, 0, 0], None, []),
    ],
)
def test_approval_table(n, ballots, scores, winner, tied):
    tally = approval(n, ballots)
    assert tally.scores == scores
    assert (tally.winner, tally.tied) == (winner, tied)
    assert tally.ballots == len(ballots)
    check_invariants(tally, n)


@pytest.mark.parametrize(
    ("n", "ballots", "scores", "ranking", "winner", "tied"),
    [
        (3, [{0: 3, 1: 2}, {2: 5}], [3, 2, 5], [[2], [0], [1]], 2, []),
        (3, [{0: 3}, {1: 1, 2: 2}, {1: 2}], [3, 3, 2], [[0, 1], [2]], None, [0, 1]),
        (2, [{}, {0: 0}], [0, 0], [[0, 1]], None, [0, 1]),
        (2, [], [0, 0], [[0, 1]], None, []),
    ],
)
def test_points_table(n, ballots, scores, ranking, winner, tied):
    tally = points(n, ballots)
    assert tally.method == "points"
    assert tally.scores == scores
    assert tally.ranking == ranking
    assert (tally.winner, tally.tied) == (winner, tied)
    check_invariants(tally, n)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plurality(3, [0, 3]), "option 3"),
        (lambda: plurality(3, [-1]), "option -1"),
        (lambda: plurality(3, [True]), "option True"),
        (lambda: plurality(0, []), "n_options"),
        (lambda: approval(3, [[0, 0]]), "more than once"),
        (lambda: approval(3, [{5}]), "option 5"),
        (lambda: points(3, [{0: -1}]), "negative"),
        (lambda: points(3, [{4: 1}]), "option 4"),
        (lambda: points(3, [{0: 1.5}]), "must be an int"),
        (lambda: schulze(3, [[0, 1, 0]]), "more than once"),
        (lambda: borda(3, [[0, 3]]), "option 3"),
        (lambda: irv(3, [["a"]]), "option 'a'"),
        (lambda: pairwise_matrix(2, [[0, 1], [1, 1]]), "more than once"),
        (lambda: ranked("copeland", 3, [[0]]), "unknown ranked method"),
        (lambda: schulze(-2, []), "n_options"),
    ],
)
def test_validation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Pairwise and Borda
# --------------------------------------------------------------------------------------------


def test_pairwise_partial_ballots_put_unranked_at_the_bottom():
    d = pairwise_matrix(4, [[2], [1, 3], [], [0, 1, 2, 3]])
    assert d == [
        [0, 1, 1, 1],
        [1, 0, 2, 2],
        [1, 1, 0, 2],
        [1, 0, 1, 0],
    ]


def test_pairwise_matches_naive_with_repeats_and_partial_ballots():
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(1, 9)
        pool = []
        for _ in range(rng.randint(1, 6)):
            order = rng.sample(range(n), n)
            pool.append(order[: rng.randint(0, n)])
        ballots = [rng.choice(pool) for _ in range(rng.randint(0, 40))]
        assert pairwise_matrix(n, iter(ballots)) == naive_pairwise(n, ballots)


def test_borda_partial_ballots_share_remaining_points():
    # 4 options: [2] gives 2 -> 3 points and 0, 1, 3 share (2 + 1 + 0) / 3 = 1 each.
    tally = borda(4, [[2]])
    assert tally.scores == [1.0, 1.0, 3.0, 1.0]
    # [1, 3]: 1 -> 3, 3 -> 2, 0 and 2 share (1 + 0) / 2 = 0.5.
    tally = borda(4, [[1, 3]])
    assert tally.scores == [0.5, 3.0, 0.5, 2.0]


def test_borda_dropping_the_last_option_changes_nothing():
    full = [[0, 2, 1, 3], [3, 1, 0, 2], [1, 0, 3, 2]]
    dropped = [ballot[:-1] for ballot in full]
    assert borda(4, full).scores == borda(4, dropped).scores
    assert borda(4, full).scores == naive_borda(4, full)


def test_borda_tie_and_no_ballots():
    tally = borda(3, [[0, 1, 2], [1, 0, 2]])
    assert tally.scores == [3.0, 3.0, 0.0]
    assert (tally.winner, tally.tied) == (None, [0, 1])
    assert tally.ranking == [[0, 1], [2]]
    empty = borda(3, [])
    assert (empty.winner, empty.tied, empty.ballots) == (None, [], 0)
    assert empty.ranking == [[0, 1, 2]]


# --------------------------------------------------------------------------------------------
# IRV
# --------------------------------------------------------------------------------------------


def test_irv_first_round_majority():
    tally = irv(3, [[0, 1], [0], [1, 0], [0, 2, 1]])
    assert tally.winner == 0
    assert tally.rounds == [IrvRound(counts={0: 3.0, 1: 1.0, 2: 0.0}, eliminated=[])]
    assert tally.ranking == [[0], [1], [2]]
    assert tally.scores == [3.0, 1.0, 0.0]


def test_irv_drops_options_tied_for_last_together_only_when_together_they_trail_the_next():
    # 0 and 1 have 2 votes each, 4 together, fewer than 2's 5: every order drops both first.
    ballots = [[0, 2]] * 2 + [[1, 2]] * 2 + [[2]] * 5 + [[3]] * 6
    tally = irv(4, ballots)
    assert tally.rounds[0] == IrvRound(counts={0: 2.0, 1: 2.0, 2: 5.0, 3: 6.0}, eliminated=[0, 1])
    assert tally.rounds[1].counts == {2: 9.0, 3: 6.0}
    assert tally.winner == 2
    assert tally.ranking == [[2], [3], [0, 1]]


def test_irv_follows_each_order_when_the_tied_options_together_reach_the_next():
    # 0 and 1 have 2 votes each, 4 together, more than 2's 3: dropping them together would be a
    # shortcut no real count takes.  Either order sends both piles to 2, which wins either way,
    # so the round names the tie and shows one order (the lower-numbered option first).
    ballots = [[0, 2]] * 2 + [[1, 2]] * 2 + [[2]] * 3 + [[3]] * 4
    tally = irv(4, ballots)
    assert tally.rounds == [
        IrvRound(counts={0: 2.0, 1: 2.0, 2: 3.0, 3: 4.0}, eliminated=[0], tied_last=[0, 1]),
        IrvRound(counts={1: 2.0, 2: 5.0, 3: 4.0}, eliminated=[1]),
        IrvRound(counts={2: 7.0, 3: 4.0}, eliminated=[]),
    ]
    assert (tally.winner, tally.tied) == (2, [])
    assert tally.ranking == [[2], [3], [1], [0]]
    assert tally.scores == [0.0, 0.0, 7.0, 4.0]
    assert tally.complete


def test_irv_tie_for_last_that_decides_the_winner_is_a_tie_between_the_winners():
    # Round 1: 3 has no votes and goes.  Round 2: 0 and 2 tie on 2 (4 together, more than 1's 3).
    # Dropping 0 sends both its ballots to 2 (4 of 7: a majority); dropping 2 exhausts its two
    # ballots and 1 holds 3 of the 5 left.  Dropping both at once would elect 1 alone.
    ballots = [[0, 2, 1], [0, 2, 3], [1, 2, 0], [1, 2, 0], [1, 3, 0], [2], [2]]
    tally = irv(4, ballots)
    assert (tally.winner, tally.tied) == (None, [1, 2])
    assert tally.rounds == [
        IrvRound(counts={0: 2.0, 1: 3.0, 2: 2.0, 3: 0.0}, eliminated=[3]),
        IrvRound(
            counts={0: 2.0, 1: 3.0, 2: 2.0},
            eliminated=[],
            tied_last=[0, 2],
            outcomes={0: [2], 2: [1]},
        ),
    ]
    assert tally.ranking == [[1, 2], [0], [3]]
    check_invariants(tally, 4)


def test_irv_rounds_follow_an_order_that_keeps_every_winner_until_the_orders_part():
    # Round 1: 2 and 3 tie on 1 (2 together, not fewer than 0's and 1's 2).  Either order ends
    # with 0 and 1 on 3 each, so the rounds follow one (2 first) to the final tie, where dropping
    # 0 elects 1 and dropping 1 elects 0.
    ballots = [[0], [0], [1], [1], [2, 0], [3, 1]]
    tally = irv(4, ballots)
    assert (tally.winner, tally.tied) == (None, [0, 1])
    assert tally.rounds == [
        IrvRound(
            counts={0: 2.0, 1: 2.0, 2: 1.0, 3: 1.0},
            eliminated=[2],
            tied_last=[2, 3],
            outcomes={2: [0, 1], 3: [0, 1]},
        ),
        IrvRound(counts={0: 3.0, 1: 2.0, 3: 1.0}, eliminated=[3]),
        IrvRound(
            counts={0: 3.0, 1: 3.0}, eliminated=[], tied_last=[0, 1], outcomes={0: [1], 1: [0]}
        ),
    ]
    assert tally.ranking == [[0, 1], [3], [2]]


@pytest.mark.parametrize(
    ("ballots", "winner", "tied", "eliminated", "ranking"),
    [
        # Round 1: 1 vote each.  Dropping 0 elects 1; dropping 1 or 2 elects 0: a tie of 0 and 1.
        ([[0, 1], [1, 0], [2, 0]], None, [0, 1], [[]], [[0, 1], [2]]),
        # 2 votes each.  Dropping 0 elects 1, dropping 1 elects 0, dropping 2 leaves 0 and 1 on 3
        # each (a tie): the rounds follow 2 out, then end at the final tie.
        (
            [[0, 1], [0, 1], [1, 0], [1, 0], [2, 0, 1], [2, 1, 0]],
            None,
            [0, 1],
            [[2], []],
            [[0, 1], [2]],
        ),
        # Round 1: 0:2 1:2 2:1 -> 2 out, its ballot moves to 0 -> 3 of 5 is a majority.
        ([[0], [1], [2, 0], [0], [1]], 0, [], [[2], []], [[0], [1], [2]]),
        # Round 1: 0:2 1:2 2:3 -> 0 and 1 tie (4 together, not fewer than 3).  Dropping either
        # exhausts its ballots and leaves 2 with 3 of 5: every order elects 2.
        ([[0], [0], [1], [1], [2, 1], [2, 0], [2]], 2, [], [[0], []], [[2], [1], [0]]),
        # Round 1: 2 out and its ballot exhausts; round 2: 0:2 1:2 -> the final two tie.
        ([[0], [0], [1], [1], [2]], None, [0, 1], [[2], []], [[0, 1], [2]]),
    ],
)
def test_irv_ties(ballots, winner, tied, eliminated, ranking):
    tally = irv(3, ballots)
    assert (tally.winner, tally.tied) == (winner, tied)
    assert [r.eliminated for r in tally.rounds] == eliminated
    assert tally.ranking == ranking
    check_invariants(tally, 3)


def test_irv_exhausted_ballots_leave_the_majority_base():
    # Round 1: 0:3, 1:2, 2:2 -> 1 and 2 tie for last (4 together, not fewer than 3).  Dropping
    # either exhausts its ballots, and 0 then holds 3 of 5 non-exhausted ballots.
    tally = irv(3, [[0]] * 3 + [[1]] * 2 + [[2]] * 2)
    assert tally.winner == 0
    assert tally.rounds[0].tied_last == [1, 2]
    assert tally.rounds[-1].counts == {0: 3.0, 2: 2.0}


def test_irv_no_ballots_and_only_empty_ballots():
    tally = irv(3, [])
    assert (tally.winner, tally.tied, tally.rounds) == (None, [], [])
    tally = irv(2, [[], []])
    assert tally.ballots == 2
    assert (tally.winner, tally.tied) == (None, [0, 1])


# --------------------------------------------------------------------------------------------
# Schulze
# --------------------------------------------------------------------------------------------

WIKIPEDIA_SCHULZE = [
    (5, "ACBED"),
    (5, "ADECB"),
    (8, "BEDAC"),
    (3, "CABED"),
    (7, "CAEBD"),
    (2, "CBADE"),
    (7, "DCEBA"),
    (8, "EBADC"),
]


def test_schulze_wikipedia_45_voters():
    ballots = expand(WIKIPEDIA_SCHULZE, "ABCDE")
    tally = schulze(5, ballots)
    a, b, c, d, e = range(5)
    assert tally.ranking == [[e], [a], [c], [b], [d]]
    assert tally.winner == e
    assert tally.condorcet_winner is None
    assert tally.ballots == 45
    assert tally.pairwise == [
        [0, 20, 26, 30, 22],
        [25, 0, 16, 33, 18],
        [19, 29, 0, 17, 24],
        [15, 12, 28, 0, 14],
        [23, 27, 21, 31, 0],
    ]
    assert tally.strongest == [
        [0, 28, 28, 30, 24],
        [25, 0, 28, 33, 24],
        [25, 29, 0, 29, 24],
        [25, 28, 28, 0, 24],
        [25, 28, 28, 31, 0],
    ]
    assert tally.scores == [3.0, 1.0, 2.0, 0.0, 4.0]
    check_invariants(tally, 5)


def test_irv_wikipedia_45_voters_follows_each_order_of_the_tie_for_last():
    # First preferences A 10, B 8, C 12, D 7, E 8.  D goes alone and its 7 ballots go to C.
    # B and E then tie on 8 (16 together, more than A's 10).  B first: B's ballots go to E,
    # A goes next and C beats E 24-21.  E first: E's ballots go to B, A goes next and C
    # takes 29.  Every order elects C.
    ballots = expand(WIKIPEDIA_SCHULZE, "ABCDE")
    work = IrvWork()
    tally = irv(5, ballots, work=work)
    a, b, c, d, e = range(5)
    assert (tally.winner, tally.tied) == (c, [])
    assert tally.rounds == [
        IrvRound(counts={a: 10.0, b: 8.0, c: 12.0, d: 7.0, e: 8.0}, eliminated=[d]),
        IrvRound(counts={a: 10.0, b: 8.0, c: 19.0, e: 8.0}, eliminated=[b], tied_last=[b, e]),
        IrvRound(counts={a: 10.0, c: 19.0, e: 16.0}, eliminated=[a]),
        IrvRound(counts={c: 24.0, e: 21.0}, eliminated=[]),
    ]
    assert tally.ranking == [[c], [e], [a], [b], [d]]
    assert tally.complete and work.states < 20
    # The E-first order, counted by hand above, as an election without B: C wins there too.
    without_b = [[o for o in ballot if o != b] for ballot in ballots]
    assert irv(5, without_b).winner == c
    # Dropping B and E together (the old shortcut) hands their 16 ballots to A and elects A,
    # a winner no real elimination order produces.
    without_b_and_e = [[o for o in ballot if o not in (b, e)] for ballot in ballots]
    assert irv(5, without_b_and_e).winner == a
    assert schulze(5, ballots).winner == e  # and Schulze, for the record, elects E


def test_schulze_condorcet_cycle_is_a_tie():
    tally = schulze(3, [[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    assert (tally.winner, tally.tied) == (None, [0, 1, 2])
    assert tally.ranking == [[0, 1, 2]]
    assert tally.condorcet_winner is None


def test_schulze_partial_ballots_and_pairwise_ties():
    # 0 is ahead of everyone (3-0 over 1 and 2, 2-1 over 3); among 1, 2 and 3 every pair is
    # 1-1, because each ranked-over-unranked preference is matched by the opposite one.
    tally = schulze(4, [[0, 1], [0, 2], [3, 0]])
    assert tally.winner == 0
    assert tally.condorcet_winner == 0
    assert tally.ranking == [[0], [1, 2, 3]]
    assert tally.scores == [3.0, 0.0, 0.0, 0.0]


def test_schulze_tiers_never_order_options_inside_a_tier():
    rng = random.Random(3)
    for _ in range(100):
        n = rng.randint(2, 6)
        ballots = [rng.sample(range(n), rng.randint(1, n)) for _ in range(rng.randint(1, 8))]
        tally = schulze(n, ballots)
        p = tally.strongest
        for t, tier in enumerate(tally.ranking):
            for i in tier:
                assert all(p[i][j] == p[j][i] or p[i][j] < p[j][i] for j in tier)
                # Anything in a later tier is never strictly above something in this tier's top.
                for later in tally.ranking[t + 1 :]:
                    assert all(not p[j][i] > p[i][j] for j in later)


def test_ranked_dispatch():
    ballots = [[0, 1, 2], [1, 0, 2], [0, 2, 1]]
    for method, func in (("schulze", schulze), ("borda", borda), ("irv", irv)):
        assert ranked(method, 3, ballots) == func(3, ballots)
        assert ranked(method, 3, ballots).method == method


# --------------------------------------------------------------------------------------------
# Published example: Tennessee capital (Wikipedia, used across the voting-method articles)
# --------------------------------------------------------------------------------------------

TENNESSEE = [(42, "MNCK"), (26, "NCKM"), (15, "CKNM"), (17, "KCNM")]
MEMPHIS, NASHVILLE, CHATTANOOGA, KNOXVILLE = range(4)


def test_tennessee_schulze():
    tally = schulze(4, expand(TENNESSEE, "MNCK"))
    assert tally.winner == NASHVILLE
    assert tally.condorcet_winner == NASHVILLE
    assert tally.ranking == [[NASHVILLE], [CHATTANOOGA], [KNOXVILLE], [MEMPHIS]]


def test_tennessee_borda():
    tally = borda(4, expand(TENNESSEE, "MNCK"))
    assert tally.scores == [126.0, 194.0, 173.0, 107.0]
    assert tally.winner == NASHVILLE
    assert tally.ranking == [[NASHVILLE], [CHATTANOOGA], [MEMPHIS], [KNOXVILLE]]


def test_tennessee_irv_rounds():
    tally = irv(4, expand(TENNESSEE, "MNCK"))
    assert tally.winner == KNOXVILLE
    assert tally.condorcet_winner == NASHVILLE  # IRV disagrees with the Condorcet winner here
    assert tally.rounds == [
        IrvRound(counts={0: 42.0, 1: 26.0, 2: 15.0, 3: 17.0}, eliminated=[CHATTANOOGA]),
        IrvRound(counts={0: 42.0, 1: 26.0, 3: 32.0}, eliminated=[NASHVILLE]),
        IrvRound(counts={0: 42.0, 3: 58.0}, eliminated=[]),
    ]
    assert tally.ranking == [[KNOXVILLE], [MEMPHIS], [NASHVILLE], [CHATTANOOGA]]
    assert tally.scores == [42.0, 0.0, 0.0, 58.0]
    assert plurality(4, [b[0] for b in expand(TENNESSEE, "MNCK")]).winner == MEMPHIS


def test_to_json_is_plain_and_complete():
    tally = irv(4, expand(TENNESSEE, "MNCK"))
    data = tally.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["rounds"][1] == {
        "counts": {"0": 42.0, "1": 26.0, "3": 32.0},
        "eliminated": [1],
        "tied_last": [],
        "outcomes": {},
    }
    assert set(data) == {
        "method",
        "scores",
        "ranking",
        "winner",
        "tied",
        "ballots",
        "rounds",
        "pairwise",
        "strongest",
        "condorcet_winner",
        "complete",
    }
    assert data["winner"] == KNOXVILLE and data["condorcet_winner"] == NASHVILLE


# --------------------------------------------------------------------------------------------
# Cross-check against pref_voting and trivial counters
# --------------------------------------------------------------------------------------------


def random_election(rng: random.Random, partial: bool) -> tuple[int, list[list[int]]]:
    n = rng.randint(3, 8)
    voters = rng.randint(5, 60)
    if partial:
        ballots = [rng.sample(range(n), rng.randint(1, n)) for _ in range(voters)]
    else:
        ballots = [rng.sample(range(n), n) for _ in range(voters)]
    return n, ballots


def pv_full(ballots: Sequence[Sequence[int]]):  # type: ignore[no-untyped-def]
    pv_profiles = pytest.importorskip("pref_voting.profiles")
    return pv_profiles.Profile(ballots)


def pv_partial(n: int, ballots: Sequence[Sequence[int]]):  # type: ignore[no-untyped-def]
    pv_ties = pytest.importorskip("pref_voting.profiles_with_ties")
    profile = pv_ties.ProfileWithTies(
        [{o: rank for rank, o in enumerate(b, start=1)} for b in ballots],
        candidates=list(range(n)),
    )
    # Unranked options below ranked ones, as in this module.
    profile.use_extended_strict_preference()
    return profile


def test_cross_check_full_ballots_against_pref_voting():
    pytest.importorskip("pref_voting")
    from pref_voting.iterative_methods import instant_runoff_put
    from pref_voting.margin_based_methods import beat_path
    from pref_voting.scoring_methods import borda as pv_borda

    rng = random.Random(20240601)
    for _ in range(200):
        n, ballots = random_election(rng, partial=False)
        profile = pv_full(ballots)
        assert winner_set(schulze(n, ballots)) == list(beat_path(profile))
        assert winner_set(borda(n, ballots)) == list(pv_borda(profile))
        # Parallel-universe tie-breaking: every elimination order, as the contract counts.
        assert winner_set(irv(n, ballots)) == list(instant_runoff_put(profile))


def test_cross_check_partial_ballots_against_pref_voting():
    pytest.importorskip("pref_voting")
    from pref_voting.iterative_methods import instant_runoff_put
    from pref_voting.margin_based_methods import beat_path
    from pref_voting.scoring_methods import borda_for_profile_with_ties, symmetric_borda_scores

    rng = random.Random(99)
    for _ in range(150):
        n, ballots = random_election(rng, partial=True)
        profile = pv_partial(n, ballots)
        # Winning votes: the strength of a defeat is the number of voters supporting it.
        expected = beat_path(profile, strength_function=profile.support)
        assert winner_set(schulze(n, ballots)) == list(expected)
        # Symmetric Borda (beats - beaten) is an affine transform of our averaged Borda score.
        expected = borda_for_profile_with_ties(profile, borda_scores=symmetric_borda_scores)
        assert winner_set(borda(n, ballots)) == list(expected)
        assert winner_set(irv(n, ballots)) == list(instant_runoff_put(profile))


def small_tied_election(rng: random.Random) -> tuple[int, list[list[int]], bool]:
    """Few voters over several options, so ties for last place are everywhere."""
    n = rng.randint(2, 7)
    partial = rng.random() < 0.5
    length = (lambda: rng.randint(1, n)) if partial else (lambda: n)
    return n, [rng.sample(range(n), length()) for _ in range(rng.randint(1, 12))], partial


def test_irv_ties_for_last_cross_checked_against_pref_voting_put():
    pytest.importorskip("pref_voting")
    from pref_voting.iterative_methods import instant_runoff_put

    rng = random.Random(14)
    tied_rounds = ties = 0
    for _ in range(600):
        n, ballots, partial = small_tied_election(rng)
        profile = pv_partial(n, ballots) if partial else pv_full(ballots)
        expected = list(instant_runoff_put(profile))
        tally = irv(n, ballots)
        assert winner_set(tally) == expected, (n, ballots)
        assert tally.complete
        # The search the count falls back on for ballots built to tie at every turn must agree
        # too: force it by giving the set-by-set count no allowance.
        searched = runoff.count(n, Counter(map(tuple, ballots)), IrvWork(), quick_cost=0)
        assert searched.winners == expected, (n, ballots)
        tied_rounds += any(r.tied_last for r in tally.rounds)
        ties += tally.winner is None
    assert tied_rounds > 150 and ties > 100  # the ties this test is about did occur


def test_irv_out_of_allowance_names_every_option_not_ruled_out():
    pytest.importorskip("pref_voting")
    from pref_voting.iterative_methods import instant_runoff_put

    rng = random.Random(41)
    cut_short = 0
    for _ in range(300):
        n, ballots, partial = small_tied_election(rng)
        expected = set(instant_runoff_put(pv_partial(n, ballots) if partial else pv_full(ballots)))
        budget = rng.choice([0, 5, 20, 60])
        outcome = runoff.count(
            n,
            Counter(map(tuple, ballots)),
            IrvWork(),
            quick_cost=0,
            search_cost=budget,
            work_limit=budget,
        )
        if outcome.complete:
            assert set(outcome.winners) == expected
        else:
            cut_short += 1
            assert expected <= set(outcome.winners)  # never drops a real winner
            assert not outcome.rounds[-1].eliminated and not outcome.rounds[-1].outcomes
    assert cut_short > 20


def test_cross_check_plurality_and_approval_against_counter():
    rng = random.Random(5)
    for _ in range(200):
        n = rng.randint(1, 8)
        marks = [rng.randrange(n) for _ in range(rng.randint(0, 60))]
        counts = Counter(marks)
        tally = plurality(n, marks)
        assert tally.scores == [counts[o] for o in range(n)]
        if marks:
            best = max(counts.values())
            top = sorted(o for o in range(n) if counts[o] == best)
            assert winner_set(tally) == top
        approvals = [rng.sample(range(n), rng.randint(0, n)) for _ in range(rng.randint(0, 60))]
        counts = Counter(o for ballot in approvals for o in ballot)
        tally = approval(n, approvals)
        assert tally.scores == [counts[o] for o in range(n)]
        if approvals:
            best = max(counts[o] for o in range(n))
            top = sorted(o for o in range(n) if counts[o] == best)
            assert winner_set(tally) == top


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@st.composite
def ranked_elections(draw: st.DrawFn) -> tuple[int, list[list[int]]]:
    n = draw(st.integers(min_value=1, max_value=6))
    orders = st.permutations(list(range(n)))
    ballots = draw(
        st.lists(
            st.tuples(orders, st.integers(min_value=0, max_value=n)).map(
                lambda pair: list(pair[0][: pair[1]])
            ),
            max_size=12,
        )
    )
    return n, ballots


@settings(max_examples=150, deadline=None)
@given(ranked_elections())
def test_property_ranked_methods(election):
    n, ballots = election
    for method in ("schulze", "borda", "irv"):
        tally = ranked(method, n, ballots)
        assert tally.ballots == len(ballots)
        check_invariants(tally, n)
        assert tally.pairwise == naive_pairwise(n, ballots)
    assert borda(n, ballots).scores == pytest.approx(naive_borda(n, ballots))


@settings(max_examples=200, deadline=None)
@given(ranked_elections())
def test_property_irv_rounds_retrace_the_result(election):
    n, ballots = election
    tally = irv(n, ballots)
    if not ballots:
        return
    rounds = tally.rounds
    assert set(rounds[0].counts) == set(range(n))
    for before, after in pairwise(rounds):
        assert set(after.counts) == set(before.counts) - set(before.eliminated)
        assert before.eliminated, "only the last round may drop nobody"
    for round_ in rounds:
        assert sum(round_.counts.values()) <= tally.ballots
        low = min(round_.counts.values())
        assert all(round_.counts[o] == low for o in round_.eliminated + round_.tied_last)
        if round_.tied_last:
            assert len(round_.eliminated) <= 1 and set(round_.eliminated) <= set(round_.tied_last)
    last = rounds[-1]
    if tally.winner is not None:
        assert last.eliminated == [] and tally.winner in last.counts
        assert all(r.outcomes == {} for r in rounds)
    elif last.outcomes:
        assert sorted({o for won in last.outcomes.values() for o in won}) == tally.tied
        assert all(won != tally.tied for won in last.outcomes.values())


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.integers(min_value=0, max_value=n - 1), max_size=12),
            st.lists(st.sets(st.integers(min_value=0, max_value=n - 1)), max_size=12),
            st.lists(
                st.dictionaries(
                    st.integers(min_value=0, max_value=n - 1), st.integers(0, 5), max_size=n
                ),
                max_size=12,
            ),
        )
    )
)
def test_property_single_mark_methods(case):
    n, marks, approvals, dots = case
    check_invariants(plurality(n, marks), n)
    check_invariants(approval(n, approvals), n)
    check_invariants(points(n, dots), n)


# --------------------------------------------------------------------------------------------
# Instant-runoff worst cases: bounded work, not a timed assertion (speed is in bench/)
# --------------------------------------------------------------------------------------------


def work_bound(ballots: Sequence[Sequence[int]], n: int) -> int:
    """The allowance plus what one step may add past it (a few passes over the distinct
    ballots) and the rounds shown afterwards (one pass each)."""
    distinct = len({tuple(b) for b in ballots if b})
    return runoff.WORK_LIMIT + (3 + n) * (distinct + 1)


def test_irv_25_options_all_tied_at_every_turn_is_settled_within_bounded_work():
    # Voter i ranks i, i+1, ... (mod 25): every option has one vote and every drop hands one
    # vote on, so ties for last recur at every turn and millions of standing sets are
    # reachable.  By symmetry every option wins in some order.
    n = 25
    ballots = [[(i + k) % n for k in range(n)] for i in range(n)]
    work = IrvWork()
    tally = irv(n, ballots, work=work)
    assert tally.complete
    assert (tally.winner, tally.tied) == (None, list(range(n)))
    assert work.cost <= work_bound(ballots, n)
    assert tally.rounds[0].tied_last == list(range(n)) and not tally.rounds[0].eliminated


def test_irv_25_options_one_strong_option_among_24_weak_ones_is_settled_at_once():
    # 24 options with one vote each, passed on to option 24, which starts with 2: the weak ones
    # tie for last in every order, yet none can ever catch up, so 24 wins every order.
    n = 25
    ballots = [[i, 24] for i in range(24)] + [[24], [24]]
    work = IrvWork()
    tally = irv(n, ballots, work=work)
    assert (tally.winner, tally.complete) == (24, True)
    assert work.cost <= work_bound(ballots, n)


def test_irv_25_options_too_many_orders_stops_within_bounded_work_and_says_so():
    # Every option first on exactly one ballot and random preferences after it: no bound cuts
    # the search short and tens of millions of standing sets are reachable.  The count stops at
    # its allowance and reports an incomplete tie rather than running on.
    rng = random.Random(3)
    n = 25
    ballots = []
    for i in range(n):
        rest = [o for o in range(n) if o != i]
        rng.shuffle(rest)
        ballots.append([i, *rest[: rng.choice([1, 2, 5, 24])]])
    work = IrvWork()
    tally = irv(n, ballots, work=work)
    assert work.cost <= work_bound(ballots, n)
    assert not tally.complete and tally.winner is None and len(tally.tied) >= 2
    assert tally.to_json()["complete"] is False
