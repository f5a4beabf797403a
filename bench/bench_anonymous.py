"""Benchmark: the cost of an anonymous vote as the poll grows, on SQLite and PostgreSQL.

Run with ``python -m bench.bench_anonymous`` (``--quick``: fewer votes); PostgreSQL rows run when
``ALIGN_BENCH_POSTGRES_URL`` (or ``ALIGN_TEST_POSTGRES_URL``) is set (a database the benchmark
may create schemas in, each run in a scratch schema of its own).

Anonymous votes used to rewrite all of the poll's ballots on PostgreSQL (O(n) per vote, one
at a time per poll). Now a vote writes participation and one sealed pending ballot, and every
fifth is counted in a batch (`bot/polls/batches.py`). Each row times `VOTES` votes through
``engine.handle`` on a poll already holding n ballots (inserted directly), each followed by the
scheduler's batch step (`batches.flush_due`, which counts every fifth), and prints votes per
second and the ratio of the 10k row to the 1k row (1.0: the cost does not grow with n).
Printing only: no target fails the run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, insert, select, text

from adapters.bootstrap import App, build
from adapters.settings import Settings
from bot.context import Actor
from bot.polls import batches, tallies
from storage import tallies as running_tallies
from storage.models import Ballot, Participation, Poll

SIZES = (1_000, 10_000)


def _app(url: str) -> App:
    settings = Settings(_env_file=None, ALIGN_DATABASE_URL=url, ALIGN_SECRET="bench")  # type: ignore[call-arg]
    return build(settings)


def _actor(user: str) -> Actor:
    return Actor(workspace="bench", channel="general", user=user)


def _prefill(app: App, number: int, n: int) -> None:
    """n anonymous ballots and their participation rows, written directly."""
    with app.db.uow() as session:
        poll_id = session.execute(select(Poll.id).where(Poll.number == number)).scalar_one()
        now = datetime.now(UTC)
        session.execute(
            insert(Ballot),
            [
                {
                    "id": uuid.uuid4().hex,
                    "poll_id": poll_id,
                    "voter_key": "h:" + secrets.token_hex(24),
                    "choice": [i % 3],
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(Participation),
            [{"poll_id": poll_id, "user": f"old{i}", "voted_at": now} for i in range(n)],
        )
        poll = session.get(Poll, poll_id)
        assert poll is not None
        choices = [[i % 3] for i in range(n)]
        running_tallies.store(
            session, poll_id, tallies.recount(poll.mode, len(poll.options), choices)
        )


def vote_rate(app: App, number: int, n: int, votes: int) -> float:
    opened = app.engine.handle(_actor("owner"), 'poll "Bench?" "A" "B" "C" anonymous')
    assert opened.ok and opened.data["id"] == f"P-{number}", opened.error
    _prefill(app, number, n)
    start = time.perf_counter()
    for k in range(votes):
        reply = app.engine.handle(_actor(f"new{k}"), f"vote P-{number} {k % 3 + 1}")
        assert reply.ok, reply.error
        batches.flush_due(app.engine.deps, lambda _session, _poll: None)
    elapsed = time.perf_counter() - start
    closed = app.engine.handle(_actor("owner"), f"close P-{number}")
    assert closed.data["ballots"] == n + votes, closed.data["ballots"]
    return votes / elapsed


def _pg_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in base else "?"
    return schema, f"{base}{joiner}options={quote(f'-csearch_path={schema}')}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 votes per row instead of 200")
    args = parser.parse_args(argv)
    votes = 50 if args.quick else 200
    pg = os.environ.get("ALIGN_BENCH_POSTGRES_URL") or os.environ.get("ALIGN_TEST_POSTGRES_URL", "")
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql") if pg else ("sqlite",):
            for n in SIZES:
                schema = ""
                if backend == "sqlite":
                    url = f"sqlite:///{Path(tmp) / f'anon_{n}.db'}"
                else:
                    schema, url = _pg_schema(pg)
                app = _app(url)
                try:
                    rows.append((backend, n, vote_rate(app, 1, n, votes)))
                finally:
                    app.db.dispose()
                    if schema:
                        with create_engine(pg, isolation_level="AUTOCOMMIT").connect() as conn:
                            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(f"Anonymous votes per second ({votes} votes, batches counted as they fill)")
    print()
    print(f"| {'database':<10} | {'ballots before':>14} | {'votes/s':>8} | {'vs 1k':>6} |")
    print(f"|{'-' * 12}|{'-' * 15}:|{'-' * 9}:|{'-' * 7}:|")
    first: dict[str, float] = {}
    for backend, n, rate in rows:
        first.setdefault(backend, rate)
        print(f"| {backend:<10} | {n:>14,} | {rate:>8.0f} | {rate / first[backend]:>6.2f} |")
    print()
    print("Printing only. A vote moves the poll's running tally by its difference and an")
    print("anonymous one waits sealed for its batch, so 'vs 1k' near 1.0 means no growth with n.")


if __name__ == "__main__":
    main()
