"""Tests for bot.tally: table cases, published examples, a pref_voting cross-check, properties."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.tally import (
    IrvRound,
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


def test_irv_eliminates_ties_for_last_together_and_keeps_every_round():
    # 0 and 1 tie for last with 2 votes each; 2 has 3, 3 has 4 -> 0 and 1 go together.
    ballots = [[0, 2]] * 2 + [[1, 2]] * 2 + [[2]] * 3 + [[3]] * 4
    tally = irv(4, ballots)
    assert tally.rounds[0].eliminated == [0, 1]
    assert tally.rounds[1].counts == {2: 7.0, 3: 4.0}
    assert tally.winner == 2
    assert tally.ranking == [[2], [3], [0, 1]]
    assert tally.scores == [0.0, 0.0, 7.0, 4.0]


@pytest.mark.parametrize(
    ("ballots", "winner", "tied", "eliminated", "ranking"),
    [
        # Round 1: 1 vote each -> eliminating all would leave nobody, so it is a three-way tie.
        ([[0, 1], [1, 0], [2, 0]], None, [0, 1, 2], [[]], [[0, 1, 2]]),
        ([[0, 1], [0, 1], [1, 0], [1, 0], [2, 0, 1], [2, 1, 0]], None, [0, 1, 2], [[]], None),
        # Round 1: 0:2 1:2 2:1 -> 2 out, its ballot moves to 0 -> 3 of 5 is a majority.
        ([[0], [1], [2, 0], [0], [1]], 0, [], [[2], []], [[0], [1], [2]]),
        # Round 1: 0:2 1:2 2:3 -> 0 and 1 out together (not everyone); their ballots exhaust,
        # so 2 holds 3 of the 3 non-exhausted ballots.
        ([[0], [0], [1], [1], [2, 1], [2, 0], [2]], 2, [], [[0, 1], []], [[2], [0, 1]]),
        # Round 1: 2 out and its ballot exhausts; round 2: 0:2 1:2 -> the final two tie.
        ([[0], [0], [1], [1], [2]], None, [0, 1], [[2], []], [[0, 1], [2]]),
    ],
)
def test_irv_ties(ballots, winner, tied, eliminated, ranking):
    tally = irv(3, ballots)
    assert (tally.winner, tally.tied) == (winner, tied)
    assert [r.eliminated for r in tally.rounds] == eliminated
    if ranking is not None:
        assert tally.ranking == ranking
    check_invariants(tally, 3)


def test_irv_exhausted_ballots_leave_the_majority_base():
    # Round 1: 0:3, 1:2, 2:2 -> tie for last between 1 and 2 (not everyone) -> both out.
    # Their ballots exhaust, so 0 wins with 3 of 3 non-exhausted ballots.
    tally = irv(3, [[0]] * 3 + [[1]] * 2 + [[2]] * 2)
    assert tally.winner == 0
    assert tally.rounds[-1].counts == {0: 3.0}
    assert tally.ranking == [[0], [1, 2]]


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
    assert data["rounds"][1] == {"counts": {"0": 42.0, "1": 26.0, "3": 32.0}, "eliminated": [1]}
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


def irv_is_unambiguous(tally: Tally) -> bool:
    # IRV has no single standard for ties for last: pref_voting itself offers simultaneous
    # elimination, tie-breaker orders and parallel-universe tie-breaking, and its truncated-
    # ballot variant checks the majority threshold in a different place.  So winners are
    # compared only where every round eliminates exactly one option and a unique winner emerges,
    # where every IRV variant must agree.  (On these seeds pref_voting's simultaneous-elimination
    # default happens to agree on the remaining elections too, but that is not asserted.)
    return tally.winner is not None and all(len(r.eliminated) == 1 for r in tally.rounds[:-1])


def test_cross_check_full_ballots_against_pref_voting():
    pv_profiles = pytest.importorskip("pref_voting.profiles")
    from pref_voting.iterative_methods import instant_runoff
    from pref_voting.margin_based_methods import beat_path
    from pref_voting.scoring_methods import borda as pv_borda

    rng = random.Random(20240601)
    compared_irv = 0
    for _ in range(200):
        n, ballots = random_election(rng, partial=False)
        profile = pv_profiles.Profile(ballots)
        assert winner_set(schulze(n, ballots)) == list(beat_path(profile))
        assert winner_set(borda(n, ballots)) == list(pv_borda(profile))
        ours = irv(n, ballots)
        if irv_is_unambiguous(ours):
            compared_irv += 1
            assert winner_set(ours) == list(instant_runoff(profile))
    assert compared_irv > 50


def test_cross_check_partial_ballots_against_pref_voting():
    pv_ties = pytest.importorskip("pref_voting.profiles_with_ties")
    from pref_voting.iterative_methods import instant_runoff_for_truncated_linear_orders
    from pref_voting.margin_based_methods import beat_path
    from pref_voting.scoring_methods import borda_for_profile_with_ties, symmetric_borda_scores

    rng = random.Random(99)
    compared_irv = 0
    for _ in range(150):
        n, ballots = random_election(rng, partial=True)
        profile = pv_ties.ProfileWithTies(
            [{o: rank for rank, o in enumerate(b, start=1)} for b in ballots],
            candidates=list(range(n)),
        )
        # Unranked options below ranked ones, as in this module.
        profile.use_extended_strict_preference()
        # Winning votes: the strength of a defeat is the number of voters supporting it.
        expected = beat_path(profile, strength_function=profile.support)
        assert winner_set(schulze(n, ballots)) == list(expected)
        # Symmetric Borda (beats - beaten) is an affine transform of our averaged Borda score.
        expected = borda_for_profile_with_ties(profile, borda_scores=symmetric_borda_scores)
        assert winner_set(borda(n, ballots)) == list(expected)
        ours = irv(n, ballots)
        if irv_is_unambiguous(ours):
            compared_irv += 1
            assert [ours.winner] == list(instant_runoff_for_truncated_linear_orders(profile))
    assert compared_irv > 30


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
