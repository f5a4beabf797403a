"""Instant-runoff voting counted honestly when options tie for last place.

Instant-runoff eliminates the option with the fewest votes, one at a time.  When several options
share last place, rules that eliminate them all at once can elect somebody no real elimination
order elects (in the 45-voter Schulze example on Wikipedia, dropping the two options tied on 8
votes together elects A, while dropping either one first elects C).  A coin flip or an
index-order tie-break would hide the tie instead.  So, as the command contract says, every
elimination order is followed ("parallel-universe tie-breaking", as pref_voting's
``instant_runoff_put`` names it): one winner if every order leads to it, otherwise a tie between
the winners the orders lead to.

Options tied for last are still dropped together when their votes *together* trail the next
option: then every order drops all of them before anyone else, so following each order would
only repeat the same work.  An option with a strict majority of the ballots still in play wins
at once; it could never be last, so the outcome is the same as counting to the end.

Following every order is exponential in the worst case (deciding whether an option is a
parallel-universe winner is NP-complete), so a count works in stages within a fixed allowance
of work, each stage exact:

1. Count each standing set that some order reaches, once (a count depends only on which options
   still stand).  Ties in real polls reach a few thousand sets, and knowing the winners of every
   set is what lets the rounds say whom dropping each tied option elects.
2. When that runs long, search per option for an order that elects it, cutting every branch
   that sound bounds show cannot matter.  Ballots built to tie at every turn reach millions of
   sets, yet this settles them in a few thousand steps.
3. When the search cannot settle everyone either, go on counting sets up to the overall limit.

Only if all three run out is the result a tie between every option not ruled out, marked
incomplete.  ``IrvWork`` reports what a count cost, so the bench can print it and a test can
bound it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

RankedBallot = tuple[int, ...]
# A ballot on a pile: the ballot, how many voters cast it, and where its current top sits.
Entry = tuple[RankedBallot, int, int]


@dataclass(frozen=True)
class IrvRound:
    """One counting round, kept so the bot can show how the result arose.

    People distrust an IRV result they cannot retrace; keeping every round (not only the last)
    lets the bot explain where each eliminated option's votes went.  ``tied_last`` names options
    that shared last place where the order of dropping them had to be followed; ``outcomes``
    then says whom dropping each of them first elects, whenever those answers were worked out
    (always when the round ends in a tie, since that is what the tie is made of).
    """

    counts: dict[int, float]
    eliminated: list[int]
    tied_last: list[int] = field(default_factory=list)
    outcomes: dict[int, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Keys become strings because JSON objects cannot have integer keys; doing it here keeps
        a stored result identical to what a JSON round trip gives back."""
        return {
            "counts": {str(option): count for option, count in self.counts.items()},
            "eliminated": list(self.eliminated),
            "tied_last": list(self.tied_last),
            "outcomes": {str(option): list(won) for option, won in self.outcomes.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IrvRound:
        """The round ``to_json`` gave, with its integer keys back (a cached count is read so)."""
        return cls(
            counts={int(option): count for option, count in raw["counts"].items()},
            eliminated=list(raw["eliminated"]),
            tied_last=list(raw.get("tied_last") or []),
            outcomes={
                int(option): list(won) for option, won in (raw.get("outcomes") or {}).items()
            },
        )


@dataclass
class IrvWork:
    """What one count cost: standing sets counted, ballots moved, ballots read to rule options
    in or out, and winner searches run.  ``cost`` sums the first three; the search stops at a
    limit on it (see ``count``)."""

    states: int = 0
    transfers: int = 0
    scans: int = 0
    searches: int = 0

    @property
    def cost(self) -> int:
        return self.states + self.transfers + self.scans


@dataclass(frozen=True)
class Runoff:
    """The outcome: every winner (one, or several when the orders disagree), the rounds shown,
    the groups eliminated along them in order, and whether every order was followed to the end
    (when not, ``winners`` names every option that was not ruled out)."""

    winners: list[int]
    rounds: list[IrvRound]
    eliminated: list[list[int]]
    complete: bool = True


class _State:
    """The count while some options stand: votes per standing option and each option's pile.

    A pile is a tuple of chunks (lists of entries) that are never changed once built, so a
    child state shares its parent's chunks and adds one chunk per option that receives votes;
    dropping an option costs the ballots it held, not the whole electorate.
    """

    __slots__ = ("active", "mask", "piles", "votes")

    def __init__(
        self,
        mask: int,
        votes: dict[int, int],
        piles: dict[int, tuple[list[Entry], ...]],
        active: int,
    ) -> None:
        self.mask = mask
        self.votes = votes
        self.piles = piles
        self.active = active  # ballots not exhausted

    def entries(self, option: int) -> Iterator[Entry]:
        for chunk in self.piles[option]:
            yield from chunk


def _first_round(n_options: int, counter: Mapping[RankedBallot, int]) -> _State:
    piles: dict[int, list[Entry]] = {o: [] for o in range(n_options)}
    votes = dict.fromkeys(range(n_options), 0)
    active = 0
    for ballot, weight in counter.items():
        if ballot:
            piles[ballot[0]].append((ballot, weight, 0))
            votes[ballot[0]] += weight
            active += weight
    return _State((1 << n_options) - 1, votes, {o: (p,) for o, p in piles.items()}, active)


def _without(state: _State, losers: Iterable[int], work: IrvWork) -> _State:
    """The next round once ``losers`` are out: their ballots move to their next standing option
    or are exhausted."""
    losers = list(losers)
    mask = state.mask
    for loser in losers:
        mask &= ~(1 << loser)
    votes = dict(state.votes)
    piles = dict(state.piles)
    active = state.active
    moved: dict[int, list[Entry]] = {}
    for loser in losers:
        del votes[loser]
        for chunk in piles.pop(loser):
            work.transfers += len(chunk)
            for ballot, weight, position in chunk:
                position += 1
                length = len(ballot)
                while position < length and not mask >> ballot[position] & 1:
                    position += 1
                if position < length:
                    to = ballot[position]
                    moved.setdefault(to, []).append((ballot, weight, position))
                    votes[to] += weight
                else:
                    active -= weight
    for to, entries in moved.items():
        piles[to] = (*piles[to], entries)
    work.states += 1
    return _State(mask, votes, piles, active)


def _step(state: _State) -> tuple[str, list[int]]:
    """What this round does: ("win", [option]), ("out", options dropped now) or ("tie", options
    sharing last place whose order must be followed)."""
    votes = state.votes
    standing = sorted(votes)
    top = max(votes.values())
    if len(standing) == 1 or 2 * top > state.active:
        return "win", [next(o for o in standing if votes[o] == top)]
    low = min(votes.values())
    last = [o for o in standing if votes[o] == low]
    if len(last) == 1:
        return "out", last
    above = [v for v in votes.values() if v != low]
    if above and low * len(last) < min(above):
        return "out", last
    return "tie", last


def _contenders(state: _State, work: IrvWork) -> tuple[int, bool]:
    """The options some order from here might still elect (a bitmask), and whether exactly
    those win.  Both answers are sound; they only spare the search branches that cannot matter.

    If no ballot can move to another standing option any more, the votes never change: options
    drop from the bottom and whoever has the most votes is last to stand (every one of them, if
    several share the most) — exact.  Otherwise, take a leader L: another option can only ever
    hold the ballots on which it comes before L (counted from where each ballot now sits), as
    L's ballots stay with L while L stands.  An option that can never reach L's votes is always
    below L, so it can neither outlast L nor win a majority while L stands: it cannot win.  If
    that rules out everyone but L, L wins every order — exact again.
    """
    votes = state.votes
    mask = state.mask
    top = max(votes.values())
    leaders = [o for o, v in votes.items() if v == top]
    leader = leaders[0]
    reach = dict.fromkeys(votes, 0)
    static = True
    for option in votes:
        for ballot, weight, position in state.entries(option):
            work.scans += 1
            if option == leader:
                if static and any(mask >> o & 1 for o in ballot[position + 1 :]):
                    static = False
                continue
            for o in ballot[position:]:
                if mask >> o & 1:
                    if o != option:
                        static = False
                    if o == leader:
                        break
                    reach[o] += weight
    if static:
        return _bits(leaders), True
    possible = _bits(o for o in votes if o == leader or reach[o] >= top)
    return possible, possible == 1 << leader


def _dead(state: _State, target: int, work: IrvWork) -> bool:
    """Whether ``target`` provably cannot win from here: some other option C has more votes
    than ``target`` could ever hold while C stands (the ballots on which ``target`` comes before
    C).  Then ``target`` stays below C, so it can neither outlast C nor win a majority."""
    mask = state.mask
    votes = state.votes
    holding = 0  # ballots on which target still stands
    before = dict.fromkeys(votes, 0)  # ... and C comes before it
    for option in votes:
        for ballot, weight, position in state.entries(option):
            work.scans += 1
            ahead: list[int] = []
            for o in ballot[position:]:
                if mask >> o & 1:
                    if o == target:
                        holding += weight
                        for c in ahead:
                            before[c] += weight
                        break
                    ahead.append(o)
    return any(holding - before[c] < v for c, v in votes.items() if c != target)


def _gift(state: _State, option: int, target: int) -> int:
    """How many of ``option``'s ballots would move straight to ``target`` if it went now: the
    search for a way ``target`` wins tries dropping its biggest donors first."""
    mask = state.mask & ~(1 << option)
    gift = 0
    for ballot, weight, position in state.entries(option):
        for o in ballot[position + 1 :]:
            if mask >> o & 1:
                gift += weight if o == target else 0
                break
    return gift


def _bits(options: Iterable[int]) -> int:
    mask = 0
    for option in options:
        mask |= 1 << option
    return mask


def _options(mask: int) -> frozenset[int]:
    return frozenset(o for o in range(mask.bit_length()) if mask >> o & 1)


class _OutOfWork(Exception):
    """A search spent its allowance (see ``count``)."""


def _every_order(root: _State, work: IrvWork, limit: int, table: dict[int, int]) -> bool:
    """Fill ``table`` with the winners of every standing set some order reaches (both as
    bitmasks); False if ``work.cost`` would pass ``limit`` first.  Sets already in the table are
    not counted again, so a second call with a higher limit carries on where one stopped.

    Each set is counted once, however many orders reach it.  This is cheap whenever ties are
    ordinary (a poll of 30 people over 25 options reaches a few thousand sets), and it answers
    for every set at once, which is what explaining a tie round by round needs.
    """

    def solve(state: _State) -> int:
        if work.cost > limit:
            raise _OutOfWork
        kind, options = _step(state)
        if kind == "win":
            won = 1 << options[0]
        else:
            groups = [options] if kind == "out" else [[o] for o in options]
            won = 0
            for group in groups:
                mask = state.mask & ~_bits(group)
                known = table.get(mask)
                won |= known if known is not None else solve(_without(state, group, work))
        table[state.mask] = won
        return won

    try:
        if root.mask not in table:
            solve(root)
    except _OutOfWork:
        return False
    return True


def _search_winners(root: _State, work: IrvWork, limit: int) -> tuple[int, bool]:
    """Every option some order from ``root`` elects (a bitmask), for when too many standing sets
    are reachable to count each; and whether the search finished within ``limit`` units of
    ``work.cost``.  When it did not, the options it could not settle are included, so the
    answer names every option not ruled out.

    One depth-first search per option not yet seen winning, asking "does some order elect it?":
    it never drops that option, stops at the first order that elects it, and gives up on a
    branch once the option provably cannot win there (``_contenders``, ``_dead``).  Ballots
    built to tie at every turn reach millions of sets, yet most options win in some order found
    at once, and the others are soon ruled out.
    """
    work.searches += 1
    found = 0  # winners seen so far

    def elects(target: int, until: int) -> bool:
        seen: set[int] = set()

        def explore(state: _State) -> bool:
            nonlocal found
            while True:
                if not state.mask >> target & 1 or state.mask in seen:
                    return False
                if work.cost > until:
                    raise _OutOfWork
                seen.add(state.mask)
                kind, options = _step(state)
                if kind == "win":
                    found |= 1 << options[0]
                    return options[0] == target
                if kind == "out":
                    state = _without(state, options, work)
                    continue
                possible, exact = _contenders(state, work)
                if exact:
                    found |= possible
                    return bool(possible >> target & 1)
                if not possible >> target & 1 or _dead(state, target, work):
                    return False
                rivals = [o for o in options if o != target]
                rivals.sort(key=lambda o: -_gift(state, o, target))
                return any(explore(_without(state, (o,), work)) for o in rivals)

        return explore(root)

    # Each option gets a fair share of what is left, so one hard option cannot leave the rest
    # unsearched; options with more votes (likelier winners) go first.
    unsettled = 0
    queue = sorted(root.votes, key=lambda o: (-root.votes[o], o))
    for index, option in enumerate(queue):
        if found >> option & 1:
            continue
        share = (limit - work.cost) // (len(queue) - index)
        until = work.cost + max(share, 0)
        try:
            if elects(option, until):
                found |= 1 << option
        except _OutOfWork:
            unsettled |= 1 << option
    return found | unsettled, not unsettled


# What a count may spend, in units of IrvWork.cost (a few microseconds each).  Standing sets are
# counted one by one up to QUICK_COST (ordinary ties); past that, the search for winners may
# spend SEARCH_COST more (ballots built to tie at every turn); if it cannot settle them, counting
# carries on up to WORK_LIMIT in all (unlucky random ties among many options).  So a count
# stays within about a second and a half of CPython time, whatever the ballots.
QUICK_COST = 60_000
SEARCH_COST = 150_000
WORK_LIMIT = 400_000


def count(
    n_options: int,
    counter: Mapping[RankedBallot, int],
    work: IrvWork,
    *,
    quick_cost: int = QUICK_COST,
    search_cost: int = SEARCH_COST,
    work_limit: int = WORK_LIMIT,
) -> Runoff:
    """Count merged ballots (at least one cast) and keep the rounds that explain the result.

    The rounds shown follow one elimination order.  Where options tie for last and every order
    leads to the same result, the round says so and the lowest-numbered option goes first.
    Where orders lead to different winners, the rounds follow an order that keeps every winner
    in play for as long as one does, and end at the round where the orders part, saying whom
    dropping each tied option first elects (when every reachable set was counted).
    """
    root = _first_round(n_options, counter)
    table: dict[int, int] = {}
    start = work.cost
    counted = _every_order(root, work, start + quick_cost, table)
    if not counted:
        winners, complete = _search_winners(root, work, work.cost + search_cost)
        counted = not complete and _every_order(root, work, start + work_limit, table)
    if counted:
        winners, complete = table[root.mask], True
    state = root
    rounds: list[IrvRound] = []
    groups: list[list[int]] = []
    while True:
        counts = {o: float(state.votes[o]) for o in sorted(state.votes)}
        kind, options = _step(state)
        if kind == "win":
            rounds.append(IrvRound(counts, []))
            break
        if kind == "out":
            rounds.append(IrvRound(counts, options))
            groups.append(options)
            state = _without(state, options, work)
            continue
        if winners & (winners - 1) == 0:  # one winner: every order elects it
            rounds.append(IrvRound(counts, [options[0]], tied_last=options))
            groups.append([options[0]])
            state = _without(state, options[:1], work)
            continue
        if not counted:
            rounds.append(IrvRound(counts, [], tied_last=options))
            break
        won = {o: table[state.mask & ~(1 << o)] for o in options}
        outcomes = {o: sorted(_options(w)) for o, w in won.items()}
        keep = next((o for o in options if won[o] == winners), None)
        rounds.append(IrvRound(counts, [] if keep is None else [keep], options, outcomes))
        if keep is None:
            break
        groups.append([keep])
        state = _without(state, (keep,), work)
    return Runoff(sorted(_options(winners)), rounds, groups, complete)
