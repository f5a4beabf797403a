"""Benchmark for recording votes through the engine, on SQLite.

Run with ``python -m bench.bench_votes`` (``--quick`` uses fewer voters and a smaller close).

What a vote costs, end to end: ``engine.handle(actor, "vote P-1 …")`` parses the line, loads the
poll, validates the ballot, upserts the ballot and the participation row, writes the audit row,
recounts the whole poll for the reply (the live tally people see) and remembers the voter in the
channel — two transactions. The baseline is the floor under that: the same ballot and
participation rows inserted with bare SQLAlchemy, one transaction per voter, on the same kind of
database file. The ratio says what the engine's work costs on top of the writes.

Sequential runs show the cost per vote; the 8-thread runs show what SQLite's single writer
(``BEGIN IMMEDIATE``) makes of concurrent voters. Each vote recounts all ballots so far, so the
rate falls as a poll grows; the rows say how many voters they used.

The last rows time ``close`` (count, freeze, record the decision) on a ranked poll with 10,000
ballots over 10 options, inserted directly beforehand.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from adapters.bootstrap import App, build
from adapters.settings import Settings
from bot.context import Actor
from bot.polls import voter_key
from storage.models import Ballot, Participation, Poll

OPTIONS = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]


def _app(directory: Path, name: str) -> App:
    url = f"sqlite:///{directory / name}.db"
    settings = Settings(_env_file=None, ALIGN_DATABASE_URL=url, ALIGN_SECRET="bench")  # type: ignore[call-arg]
    return build(settings)


def _actor(user: str) -> Actor:
    return Actor(workspace="bench", channel="general", user=user)


def _ballot_line(mode: str, rng: random.Random) -> str:
    if mode == "single":
        return str(rng.randint(1, len(OPTIONS)))
    order = rng.sample(range(1, len(OPTIONS) + 1), rng.randint(2, len(OPTIONS)))
    return " ".join(map(str, order))


def _ballot_value(mode: str, rng: random.Random) -> list[int]:
    if mode == "single":
        return [rng.randrange(len(OPTIONS))]
    return rng.sample(range(len(OPTIONS)), rng.randint(2, len(OPTIONS)))


def _run(calls: list[Callable[[], object]], threads: int) -> float:
    start = time.perf_counter()
    if threads == 1:
        for call in calls:
            call()
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(call) for call in calls]:
                future.result()
    return time.perf_counter() - start


def engine_rate(app: App, mode: str, voters: int, threads: int, number: int) -> float:
    """Votes per second through `engine.handle`, one vote per voter."""
    opening = 'poll "Bench?" ' + " ".join(f'"{o}"' for o in OPTIONS)
    opened = app.engine.handle(
        _actor("owner"), opening + (" mode:ranked" if mode == "ranked" else "")
    )
    assert opened.ok and opened.data["id"] == f"P-{number}", opened.error
    rng = random.Random(number)
    lines = [f"vote P-{number} {_ballot_line(mode, rng)}" for _ in range(voters)]

    def vote(n: int) -> Callable[[], object]:
        def call() -> object:
            reply = app.engine.handle(_actor(f"u{n}"), lines[n])
            assert reply.ok, reply.error
            return reply

        return call

    elapsed = _run([vote(n) for n in range(voters)], threads)
    result = app.engine.handle(_actor("owner"), f"results P-{number}")
    assert result.data["ballots"] == voters, result.data["ballots"]
    return voters / elapsed


def baseline_rate(app: App, mode: str, voters: int, threads: int) -> float:
    """Votes per second for the bare inserts: a ballot row and a participation row per voter,
    each voter in its own transaction, no engine."""
    with app.db.uow() as session:
        poll = Poll(
            workspace="bench",
            channel="baseline",
            number=10_000 + threads + (0 if mode == "single" else 1),
            question="Baseline",
            mode=mode,
            created_by="owner",
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        session.add(poll)
        session.flush()
        poll_id = poll.id
    rng = random.Random(7)
    choices = [_ballot_value(mode, rng) for _ in range(voters)]

    def insert(n: int) -> Callable[[], object]:
        def call() -> object:
            with app.db.uow() as session:
                session.add(
                    Ballot(
                        id=uuid.uuid4().hex, poll_id=poll_id, voter_key=f"u{n}", choice=choices[n]
                    )
                )
                session.add(
                    Participation(poll_id=poll_id, user=f"u{n}", voted_at=datetime.now(UTC))
                )
            return None

        return call

    return voters / _run([insert(n) for n in range(voters)], threads)


def close_time(app: App, ballots: int, options: int = 10) -> tuple[float, float]:
    """Seconds for `results` and for `close … decide` on a ranked poll with this many ballots."""
    texts = " ".join(f'"Option {i}"' for i in range(options))
    opened = app.engine.handle(_actor("owner"), f'poll "Big?" {texts} mode:ranked')
    assert opened.ok, opened.error
    ref = opened.data["id"]
    rng = random.Random(11)
    centers = [rng.sample(range(options), options) for _ in range(4)]
    with app.db.uow() as session:
        poll = session.query(Poll).filter_by(workspace="bench", number=int(ref[2:])).one()
        deps = app.engine.deps
        rows_b, rows_p = [], []
        for n in range(ballots):
            order = list(rng.choice(centers))
            for _ in range(3):
                i = rng.randrange(options - 1)
                order[i], order[i + 1] = order[i + 1], order[i]
            order = order[: rng.randint(3, options)]
            user = f"big{n}"
            rows_b.append(
                {
                    "id": uuid.uuid4().hex,
                    "poll_id": poll.id,
                    "voter_key": voter_key(deps, poll, user),
                    "choice": order,
                }
            )
            rows_p.append({"poll_id": poll.id, "user": user, "voted_at": datetime.now(UTC)})
        session.execute(Ballot.__table__.insert(), rows_b)
        session.execute(Participation.__table__.insert(), rows_p)
    start = time.perf_counter()
    shown = app.engine.handle(_actor("owner"), f"results {ref}")
    results_s = time.perf_counter() - start
    assert shown.ok and shown.data["ballots"] == ballots
    start = time.perf_counter()
    closed = app.engine.handle(_actor("owner"), f"close {ref} decide")
    close_s = time.perf_counter() - start
    assert closed.ok and "decision" in closed.data, closed.error
    return results_s, close_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 voters per row, close on 2,000")
    args = parser.parse_args(argv)
    voters = 200 if args.quick else 1_000
    big = 2_000 if args.quick else 10_000
    rows: list[tuple[str, str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        number = 0
        for mode in ("single", "ranked"):
            for threads in (1, 8):
                number += 1
                app = _app(directory, f"engine_{mode}_{threads}")
                rate = engine_rate(app, mode, voters, threads, 1)
                app.db.dispose()
                base_app = _app(directory, f"base_{mode}_{threads}")
                base = baseline_rate(base_app, mode, voters, threads)
                base_app.db.dispose()
                label = "sequential" if threads == 1 else f"{threads} threads"
                rows.append((mode, label, voters, rate, base))
        app = _app(directory, "close")
        results_s, close_s = close_time(app, big)
        app.db.dispose()

    print(f"Votes recorded per second on SQLite ({voters} voters per row, one vote each)")
    print()
    print(
        f"| {'poll':<7} | {'voters':<10} | {'engine.handle votes/s':>21} | "
        f"{'bare insert votes/s':>19} | {'engine / bare':>13} |"
    )
    print(f"|{'-' * 9}|{'-' * 12}|{'-' * 22}:|{'-' * 20}:|{'-' * 14}:|")
    for mode, label, _, rate, base in rows:
        print(f"| {mode:<7} | {label:<10} | {rate:>21.0f} | {base:>19.0f} | {rate / base:>13.2f} |")
    print()
    print(f"Ranked poll (schulze) with {big:,} ballots over 10 options:")
    print(f"  results: {results_s * 1000:.0f} ms   close … decide: {close_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
