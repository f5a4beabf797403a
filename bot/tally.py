"""Vote tallies for Align's polls, as pure functions over already-collected ballots.

The tallies are kept free of I/O, storage and chat concerns so that a result can be recomputed
from the stored ballots at any time and always come out the same.  That reproducibility is also
why ties are never broken here: a hidden coin flip or an index-order tie-break would make a close
poll look decided and would differ between two people re-running the count.  A tie is reported
as a tie (``winner is None`` and ``tied`` naming the options) and the people deciding resolve it.

Options are the integers ``0 .. n_options - 1``.  Ranked ballots list SOME or all options, best
first; the options a voter left off share the bottom of that ballot, below every ranked option
and equal among themselves.  That is how people fill in long ranked polls in practice (they rank
the few they care about), so every ranked method here has to give partial ballots a meaning
rather than reject them.

Large polls are counted by first merging identical ballots (``Counter`` over tuples), because
clustered opinions repeat a lot; the per-ballot work that remains is done with C-level iteration
and packed big-integer arithmetic so that 100,000 distinct ballots over 25 options still count
in under a second of CPython time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add, itemgetter, ne
from typing import Any

from bot import runoff
from bot.runoff import IrvRound, IrvWork

__all__ = [
    "IrvRound",
    "IrvWork",
    "Tally",
    "approval",
    "borda",
    "borda_matrix",
    "from_scores",
    "irv",
    "pairwise_matrix",
    "plurality",
    "points",
    "ranked",
    "schulze",
    "schulze_matrix",
]

RankedBallot = tuple[int, ...]


@dataclass(frozen=True)
class Tally:
    """The complete outcome of one count, including the evidence behind it.

    Besides the winner, the tally keeps the full ranking in tiers and the raw matrices so that the
    bot can answer "why did X win?" and "who came second?" without recounting.  ``winner`` is None
    whenever the top is not a single option (or nobody voted), and ``tied`` then names the options
    sharing first place, so callers can never mistake a tie for a decision.  ``complete`` is
    False only for an instant-runoff count whose tie-for-last orders were too many to follow
    within its allowance of work; ``tied`` then names every option that was not ruled out.
    """

    method: str
    scores: list[float]
    ranking: list[list[int]]
    winner: int | None
    tied: list[int]
    ballots: int
    rounds: list[IrvRound] = field(default_factory=list)
    pairwise: list[list[int]] | None = None
    strongest: list[list[int]] | None = None
    condorcet_winner: int | None = None
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        """Plain lists, dicts, numbers and None only, so results can be stored as JSON columns or
        sent to chat adapters without a custom encoder, and survive a JSON round trip unchanged."""
        return {
            "method": self.method,
            "scores": [float(score) for score in self.scores],
            "ranking": [list(tier) for tier in self.ranking],
            "winner": self.winner,
            "tied": list(self.tied),
            "ballots": self.ballots,
            "rounds": [round_.to_json() for round_ in self.rounds],
            "pairwise": None if self.pairwise is None else [list(row) for row in self.pairwise],
            "strongest": None if self.strongest is None else [list(row) for row in self.strongest],
            "condorcet_winner": self.condorcet_winner,
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Tally:
        """The tally ``to_json`` gave (a count cached in the database is read back so)."""
        return cls(
            method=raw["method"],
            scores=[float(score) for score in raw["scores"]],
            ranking=[list(tier) for tier in raw["ranking"]],
            winner=raw["winner"],
            tied=list(raw["tied"]),
            ballots=raw["ballots"],
            rounds=[IrvRound.from_json(r) for r in raw.get("rounds") or []],
            pairwise=None if raw.get("pairwise") is None else [list(r) for r in raw["pairwise"]],
            strongest=None if raw.get("strongest") is None else [list(r) for r in raw["strongest"]],
            condorcet_winner=raw.get("condorcet_winner"),
            complete=raw.get("complete", True),
        )


# --------------------------------------------------------------------------------------------
# Validation and shared helpers
# --------------------------------------------------------------------------------------------


def _check_n_options(n_options: int) -> None:
    # The engine validates polls long before counting; this guard only stops a programming error
    # from turning into a silently wrong (e.g. empty) result.
    if isinstance(n_options, bool) or not isinstance(n_options, int) or n_options < 1:
        raise ValueError(f"n_options must be a positive integer, got {n_options!r}")


def _check_option(option: object, n_options: int) -> None:
    # bool is an int subclass; accepting True as option 1 would hide a caller bug.
    if isinstance(option, bool) or not isinstance(option, int) or not 0 <= option < n_options:
        raise ValueError(
            f"option {option!r} is not a valid option index (expected an int in 0..{n_options - 1})"
        )


def _aggregate_ranked(
    n_options: int, ballots: Iterable[Sequence[int]]
) -> tuple[Counter[RankedBallot], int]:
    """Merge identical ballots first: every later pass then costs per distinct ballot, which is
    what makes big clustered polls cheap.  Validation also runs per distinct ballot for the same
    reason, using C-level set operations rather than a Python loop over every entry."""
    _check_n_options(n_options)
    counter: Counter[RankedBallot] = Counter(map(tuple, ballots))
    total = sum(counter.values())
    distinct = list(counter)
    if distinct:
        seen: set[int] = set().union(*distinct)
        for option in seen:
            _check_option(option, n_options)
        # A ballot has a duplicate exactly when its set is smaller than the ballot itself; the
        # check runs entirely in C and only the error path loops in Python.
        if any(map(ne, map(len, map(set, distinct)), map(len, distinct))):
            ballot = next(b for b in distinct if len(set(b)) != len(b))
            dup = next(o for o in ballot if ballot.count(o) > 1)
            raise ValueError(f"ranked ballot {list(ballot)} lists option {dup} more than once")
    return counter, total


def _tiers_by_score(scores: Sequence[float]) -> list[list[int]]:
    """Equal scores share a tier instead of being ordered by index, which would be a silent
    tie-break."""
    by_score: dict[float, list[int]] = {}
    for option, score in enumerate(scores):
        by_score.setdefault(score, []).append(option)
    return [by_score[score] for score in sorted(by_score, reverse=True)]


def _decide(ranking: list[list[int]], n_ballots: int) -> tuple[int | None, list[int]]:
    """A winner exists only when first place is held by one option and someone actually voted;
    otherwise the tie is surfaced through ``tied`` (empty when there is nothing to report)."""
    if n_ballots == 0:
        return None, []
    top = ranking[0]
    if len(top) == 1:
        return top[0], []
    return None, sorted(top)


def _no_ballots(method: str, n_options: int, **extra: Any) -> Tally:
    # With no ballots every option is equally (un)supported: one tier, no winner, nothing tied.
    return Tally(
        method=method,
        scores=[0.0] * n_options,
        ranking=[list(range(n_options))],
        winner=None,
        tied=[],
        ballots=0,
        **extra,
    )


def _score_tally(method: str, scores: list[float], n_ballots: int) -> Tally:
    ranking = _tiers_by_score(scores)
    winner, tied = _decide(ranking, n_ballots)
    return Tally(
        method=method, scores=scores, ranking=ranking, winner=winner, tied=tied, ballots=n_ballots
    )


# --------------------------------------------------------------------------------------------
# Single-mark methods
# --------------------------------------------------------------------------------------------


def from_scores(method: str, scores: Sequence[int | float], n_ballots: int) -> Tally:
    """A single-mark result (``plurality``, ``approval``, ``points``) from per-option totals
    already summed, for a poll that keeps its totals as votes arrive instead of recounting."""
    if n_ballots == 0:
        return _no_ballots(method, len(scores))
    return _score_tally(method, [float(s) for s in scores], n_ballots)


def plurality(n_options: int, ballots: Iterable[int]) -> Tally:
    """One mark per ballot; the most-marked option wins, and an equal top is reported as a tie."""
    _check_n_options(n_options)
    counts: Counter[int] = Counter(ballots)
    for option in counts:
        _check_option(option, n_options)
    n_ballots = sum(counts.values())
    if n_ballots == 0:
        return _no_ballots("plurality", n_options)
    scores = [float(counts[o]) for o in range(n_options)]
    return _score_tally("plurality", scores, n_ballots)


def approval(n_options: int, ballots: Iterable[Collection[int]]) -> Tally:
    """Each ballot approves any number of options (including none, which still counts as a ballot
    cast).  Listing an option twice is rejected rather than deduplicated, since it signals a bug
    upstream that would otherwise pass unnoticed."""
    _check_n_options(n_options)
    counts = [0] * n_options
    n_ballots = 0
    for ballot in ballots:
        marks = set(ballot)
        if len(marks) != len(ballot):
            raise ValueError(f"approval ballot {list(ballot)} lists an option more than once")
        for option in marks:
            _check_option(option, n_options)
            counts[option] += 1
        n_ballots += 1
    if n_ballots == 0:
        return _no_ballots("approval", n_options)
    return _score_tally("approval", [float(c) for c in counts], n_ballots)


def points(n_options: int, ballots: Iterable[Mapping[int, int]]) -> Tally:
    """Dots voting: each ballot spreads points over options and the totals decide.

    Budgets per voter are the engine's business (it knows the poll settings); here only the
    invariants every points ballot must satisfy are guarded: valid options and non-negative whole
    points.  A ballot giving zero points everywhere still counts as a ballot cast.
    """
    _check_n_options(n_options)
    totals = [0] * n_options
    n_ballots = 0
    for ballot in ballots:
        for option, amount in ballot.items():
            _check_option(option, n_options)
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise ValueError(f"points for option {option} must be an int, got {amount!r}")
            if amount < 0:
                raise ValueError(f"points for option {option} must not be negative, got {amount}")
            totals[option] += amount
        n_ballots += 1
    if n_ballots == 0:
        return _no_ballots("points", n_options)
    return _score_tally("points", [float(t) for t in totals], n_ballots)


# --------------------------------------------------------------------------------------------
# Pairwise counting
# --------------------------------------------------------------------------------------------


def _pairwise_from(
    n_options: int, counter: Mapping[RankedBallot, int], total: int
) -> list[list[int]]:
    """Count d[i][j] for all pairs with packed big integers instead of a per-pair loop.

    A naive count touches every pair of every ballot (300 Python-level increments per 25-option
    ballot), which is too slow for 100,000 ballots.  Instead row i of the matrix is one integer
    with a ``width``-bit field per column j, wide enough that no field can overflow into the next
    (every field is at most ``total``).  For one ballot, the set of options that the option at
    position k beats is "everything after k, plus every unranked option"; as packed integers that
    is a running suffix sum, which ``accumulate`` produces in C.  A dict maps those suffix values
    back to option order and ``map(add, ...)`` folds them into the rows, so each ballot costs a
    handful of C-level passes instead of O(n^2) interpreted steps.
    """
    n = n_options
    d = [[0] * n for _ in range(n)]
    if total == 0 or n == 1:
        return d
    width = total.bit_length()
    unit = [1 << (o * width) for o in range(n)]
    unit_at = unit.__getitem__
    everyone = sum(unit)
    in_option_order: Callable[[dict[int, int]], tuple[int, ...]] = itemgetter(*range(n))
    zeros = dict.fromkeys(range(n), 0)
    rows = [0] * n
    for ballot, weight in counter.items():
        length = len(ballot)
        if length == 0:
            continue  # an empty ballot expresses no preference between any pair
        reverse = ballot[::-1]
        # accumulate() yields one value more than the ballot has entries (the whole ballot's
        # sum); zip() drops it, hence strict=False.
        if length == n:
            beats = dict(zip(reverse, accumulate(map(unit_at, reverse), initial=0), strict=False))
        else:
            # Unranked options are beaten by every ranked one; they beat nobody, so keep 0.
            unranked = everyone - sum(map(unit_at, ballot))
            beats = zeros.copy()
            suffixes = accumulate(map(unit_at, reverse), initial=unranked)
            beats.update(zip(reverse, suffixes, strict=False))
        row_add: Iterable[int] = in_option_order(beats)
        if weight != 1:
            row_add = [value * weight for value in row_add]
        rows = list(map(add, rows, row_add))
    mask = (1 << width) - 1
    for i, packed in enumerate(rows):
        row = d[i]
        for j in range(n):
            row[j] = (packed >> (j * width)) & mask
    return d


def pairwise_matrix(n_options: int, ballots: Iterable[Sequence[int]]) -> list[list[int]]:
    """d[i][j] = number of voters preferring i over j, unranked options sharing the bottom.

    Exposed on its own because the head-to-head table is the most convincing explanation of a
    ranked result, whatever method decided it.
    """
    counter, total = _aggregate_ranked(n_options, ballots)
    return _pairwise_from(n_options, counter, total)


def _condorcet_winner(d: list[list[int]], n_ballots: int) -> int | None:
    # Worth reporting next to any ranked result: when it exists and a method disagrees with it
    # (IRV often does), people deserve to see that.
    if n_ballots == 0:
        return None
    n = len(d)
    for i in range(n):
        if all(d[i][j] > d[j][i] for j in range(n) if j != i):
            return i
    return None


# --------------------------------------------------------------------------------------------
# Ranked methods
# --------------------------------------------------------------------------------------------


def borda(n_options: int, ballots: Iterable[Sequence[int]]) -> Tally:
    """Borda count that treats partial ballots fairly.

    On a ballot over n options the option at 0-based position k gets ``n - 1 - k`` points, and the
    options left off the ballot share the remaining points equally, i.e. each gets their average
    ``(n - 1 - L) / 2`` for a ballot ranking L options.  This was chosen over "unranked get 0"
    because that variant rewards voters who truncate (it widens the gap between their favourite
    and everyone unranked) and punishes voters who rank everything; with averaging, a full ballot
    and the same ballot with its last option dropped score identically, so truncating never pays.
    Scores can therefore be halves.

    The same rule is "one point per option beaten, half a point per option tied with" on each
    ballot, which is why the scores are computed from the pairwise matrix:
    ``score_i = ((n - 1) * B + sum_j (d[i][j] - d[j][i])) / 2``.  That reuses the fast pairwise
    count, and the matrix is reported alongside the scores anyway.
    """
    counter, total = _aggregate_ranked(n_options, ballots)
    return borda_matrix(_pairwise_from(n_options, counter, total), total)


def borda_matrix(d: list[list[int]], total: int) -> Tally:
    """Borda from the pairwise matrix of ``total`` ballots (see ``borda``), for a poll that keeps
    its matrix as votes arrive instead of recounting the ballots."""
    n = len(d)
    if total == 0:
        return _no_ballots("borda", n, pairwise=d)
    scores = [
        ((n - 1) * total + sum(d[i][j] - d[j][i] for j in range(n) if j != i)) / 2 for i in range(n)
    ]
    ranking = _tiers_by_score(scores)
    winner, tied = _decide(ranking, total)
    return Tally(
        method="borda",
        scores=scores,
        ranking=ranking,
        winner=winner,
        tied=tied,
        ballots=total,
        pairwise=d,
        condorcet_winner=_condorcet_winner(d, total),
    )


def irv(n_options: int, ballots: Iterable[Sequence[int]], *, work: IrvWork | None = None) -> Tally:
    """Instant-runoff voting, one elimination at a time, without hidden tie-breaks.

    Each round, a ballot counts for its highest-ranked option still standing (exhausted ballots
    count for no one).  An option with a strict majority of the non-exhausted ballots wins;
    otherwise the option with the fewest votes is eliminated.  Options tied for last are
    followed in every elimination order (see ``bot.runoff``): one winner if every order elects
    it, else a tie between the winners the orders lead to.

    Ranking: the winner (or the tied options) first, then any other options still standing in
    the last round shown by their votes there, then eliminated options, later eliminations
    ranked higher and options eliminated together sharing a tier.  Below the top, that order is
    the one the rounds show; where an order among options tied for last changed nothing, the
    rounds say so.

    ``work``, when given, receives what the count cost (the bench prints it, a test bounds it).
    """
    counter, total = _aggregate_ranked(n_options, ballots)
    d = _pairwise_from(n_options, counter, total)
    if total == 0:
        return _no_ballots("irv", n_options, pairwise=d)
    outcome = runoff.count(n_options, counter, work if work is not None else IrvWork())
    final = outcome.rounds[-1].counts
    scores = [final.get(o, 0.0) for o in range(n_options)]
    head = outcome.winners
    others = [o for o in sorted(final) if o not in head]
    ranking = [head]
    ranking.extend(_tiers_by_score_subset(others, scores))
    ranking.extend(reversed(outcome.eliminated))
    return Tally(
        method="irv",
        scores=scores,
        ranking=ranking,
        winner=head[0] if len(head) == 1 else None,
        tied=head if len(head) > 1 else [],
        ballots=total,
        rounds=outcome.rounds,
        pairwise=d,
        condorcet_winner=_condorcet_winner(d, total),
        complete=outcome.complete,
    )


def _tiers_by_score_subset(options: list[int], scores: Sequence[float]) -> list[list[int]]:
    by_score: dict[float, list[int]] = {}
    for option in options:
        by_score.setdefault(scores[option], []).append(option)
    return [by_score[score] for score in sorted(by_score, reverse=True)]


def _strongest_paths(d: list[list[int]]) -> list[list[int]]:
    """Widest paths by winning votes (Floyd-Warshall variant); links exist only for wins.

    Winning votes (rather than margins) is Schulze's recommended strength and the one used in
    the published examples, so results can be checked against them.
    """
    n = len(d)
    p = [[d[i][j] if i != j and d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for k in range(n):
        pk = p[k]
        for i in range(n):
            if i == k:
                continue
            pi = p[i]
            pik = pi[k]
            if pik == 0:
                continue
            for j in range(n):
                if j == i:  # j == k needs no skip: p[k][k] == 0 never improves anything
                    continue
                via = pik if pik < pk[j] else pk[j]
                if via > pi[j]:
                    pi[j] = via
    return p


def _schulze_tiers(p: list[list[int]]) -> list[list[int]]:
    """Peel off maximal elements of the (transitive, possibly partial) Schulze order.

    Each tier holds the options no remaining option beats, so nothing inside a tier is strictly
    ordered, and the first tier is exactly the set of potential winners.
    """
    remaining = list(range(len(p)))
    tiers: list[list[int]] = []
    while remaining:
        tier = [i for i in remaining if not any(p[j][i] > p[i][j] for j in remaining if j != i)]
        tiers.append(tier)
        taken = set(tier)
        remaining = [i for i in remaining if i not in taken]
    return tiers


def schulze(n_options: int, ballots: Iterable[Sequence[int]]) -> Tally:
    """Schulze (beatpath) method with winning votes.

    Chosen as the default ranked method because it picks the Condorcet winner whenever there is
    one and still gives a consistent, explainable order when preferences are cyclic.  ``scores``
    counts how many options each option beats via strongest paths, which gives a simple number
    to display next to the ranking.
    """
    counter, total = _aggregate_ranked(n_options, ballots)
    return schulze_matrix(_pairwise_from(n_options, counter, total), total)


def schulze_matrix(d: list[list[int]], total: int) -> Tally:
    """Schulze from the pairwise matrix of ``total`` ballots (see ``schulze``), for a poll that
    keeps its matrix as votes arrive instead of recounting the ballots."""
    n = len(d)
    p = _strongest_paths(d)
    if total == 0:
        return _no_ballots("schulze", n, pairwise=d, strongest=p)
    scores = [float(sum(1 for j in range(n) if p[i][j] > p[j][i])) for i in range(n)]
    ranking = _schulze_tiers(p)
    winner, tied = _decide(ranking, total)
    return Tally(
        method="schulze",
        scores=scores,
        ranking=ranking,
        winner=winner,
        tied=tied,
        ballots=total,
        pairwise=d,
        strongest=p,
        condorcet_winner=_condorcet_winner(d, total),
    )


_RANKED: dict[str, Callable[[int, Iterable[Sequence[int]]], Tally]] = {
    "schulze": schulze,
    "borda": borda,
    "irv": irv,
}


def ranked(method: str, n_options: int, ballots: Iterable[Sequence[int]]) -> Tally:
    """Dispatch by the method name stored with a poll, so callers need no per-method branching."""
    try:
        count = _RANKED[method]
    except KeyError:
        known = ", ".join(sorted(_RANKED))
        raise ValueError(f"unknown ranked method {method!r} (expected one of: {known})") from None
    return count(n_options, ballots)
