"""Benchmark for instant-runoff when options tie for last place (``bot.runoff``).

Run with ``python -m bench.bench_irv`` (``--quick``: up to 12 options; ``--smoke``: 6, to see
that it runs). A missed target is printed and the exit status is 0; a winner that disagrees with
the baseline exits 1.

Following every elimination order is exponential in the worst case, so this prints what the
count costs on the ballots that make ties hardest, up to the 25 options a poll may have:

* ``cyclic``: voter i ranks i, i+1, ... (mod n); every option has one vote and every drop
  passes one vote on, so ties for last recur at every turn.
* ``bullet``: every option has one vote and nothing passes on.
* ``strong+weak``: one option with 2 votes, n-1 options with one vote each passed on to it.
* ``random few``: random partial ballots from 20 to 40 voters (the ties a real 25-option poll
  with few voters has); the costliest of 60 elections is shown.
* ``one first each``: every option first on exactly one ballot, random after it; no bound helps,
  and the count stops at its allowance with an incomplete tie.

The baseline is pref_voting's ``instant_runoff_put`` (a plain recursion over every order), timed
where it finishes in reasonable time; its winners are checked against ours.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from bot import runoff
from bot.tally import IrvWork, Tally, irv

TARGET_SECONDS = 2.0  # the worst 25-option count must stay under this
BASELINE_MAX_OPTIONS = 9  # pref_voting's recursion grows factorially beyond this on these cases

Ballots = list[list[int]]


def cyclic(rng: random.Random, n: int) -> Ballots:
    return [[(i + k) % n for k in range(n)] for i in range(n)]


def bullet(rng: random.Random, n: int) -> Ballots:
    return [[i] for i in range(n)]


def strong_and_weak(rng: random.Random, n: int) -> Ballots:
    return [[i, n - 1] for i in range(n - 1)] + [[n - 1], [n - 1]]


def one_first_each(rng: random.Random, n: int) -> Ballots:
    ballots = []
    for i in range(n):
        rest = [o for o in range(n) if o != i]
        rng.shuffle(rest)
        ballots.append([i, *rest[: rng.choice([1, 2, 5, n - 1])]])
    return ballots


def random_few(rng: random.Random, n: int) -> Ballots:
    """The costliest of 60 random polls of 20 to 40 voters with partial ballots."""
    worst: tuple[int, Ballots] = (-1, [])
    for _ in range(60):
        ballots = [rng.sample(range(n), rng.randint(1, n)) for _ in range(rng.randint(20, 40))]
        work = IrvWork()
        irv(n, ballots, work=work)
        if work.cost > worst[0]:
            worst = (work.cost, ballots)
    return worst[1]


CASES: dict[str, Callable[[random.Random, int], Ballots]] = {
    "cyclic": cyclic,
    "bullet": bullet,
    "strong+weak": strong_and_weak,
    "random few": random_few,
    "one first each": one_first_each,
}


def timed(func: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def winners(tally: Tally) -> list[int]:
    return [tally.winner] if tally.winner is not None else tally.tied


def baseline(ballots: Sequence[Sequence[int]], n: int) -> tuple[float, list[int]] | None:
    try:
        from pref_voting.iterative_methods import instant_runoff_put
        from pref_voting.profiles_with_ties import ProfileWithTies
    except ImportError:
        return None
    profile = ProfileWithTies(
        [{o: rank for rank, o in enumerate(b, start=1)} for b in ballots],
        candidates=list(range(n)),
    )
    profile.use_extended_strict_preference()
    seconds, result = timed(lambda: instant_runoff_put(profile))
    return seconds, list(result)  # type: ignore[call-overload]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")
    parser.add_argument(
        "--quick", action="store_true", help="up to 12 options (no 25-option verdict)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="6 options only, checked against pref_voting: to see that it runs",
    )
    args = parser.parse_args(argv)
    sizes = (6,) if args.smoke else (6, 9, 12) if args.quick else (6, 9, 12, 16, 20, 25)
    print(f"instant-runoff tie benchmark (Python {sys.version.split()[0]}, seed {args.seed})")
    print(
        f"allowance: {runoff.WORK_LIMIT:,} work units (quick count {runoff.QUICK_COST:,}, "
        f"search {runoff.SEARCH_COST:,}); seconds are one run"
    )
    header = (
        f"{'case':<15} {'opts':>4} {'ballots':>7} {'seconds':>8} {'states':>9} {'cost':>9} "
        f"{'search':>6} {'winners':>7} {'complete':>8} {'baseline s':>10}"
    )
    print(header)
    print("-" * len(header))
    worst_25 = 0.0
    mismatch = False
    for name, build in CASES.items():
        for n in sizes:
            rng = random.Random(f"{args.seed}-{name}-{n}")
            ballots = build(rng, n)
            work = IrvWork()
            seconds, result = timed(lambda b=ballots, k=n, w=work: irv(k, b, work=w))
            assert isinstance(result, Tally)
            base = "-"
            if n <= BASELINE_MAX_OPTIONS:
                measured = baseline(ballots, n)
                if measured is not None:
                    base = f"{measured[0]:.4f}"
                    if result.complete and measured[1] != winners(result):
                        mismatch = True
                        base += " MISMATCH"
            if n == 25:
                worst_25 = max(worst_25, seconds)
            print(
                f"{name:<15} {n:>4} {len(ballots):>7} {seconds:8.4f} {work.states:>9,} "
                f"{work.cost:>9,} {'yes' if work.searches else 'no':>6} "
                f"{len(winners(result)):>7} {'yes' if result.complete else 'NO':>8} {base:>10}"
            )
    print()
    if args.quick or args.smoke:
        print(f"worst 25-option count < {TARGET_SECONDS} s: not measured (--quick, --smoke)")
    else:
        met = worst_25 < TARGET_SECONDS
        print(
            f"worst 25-option count < {TARGET_SECONDS} s: {'MET' if met else 'NOT MET'} "
            f"({worst_25:.3f} s)"
        )
    if mismatch:  # a wrong count is a defect, not a missed target
        print("MISMATCH: bot.tally.irv and pref_voting disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
