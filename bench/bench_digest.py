"""Benchmark: build and queue the weekly digests of 1,000 channels with 100 changes each.

Run with ``python -m bench.bench_digest`` (``--quick``: 100 channels). On a fresh SQLite file it
creates the channels' decisions, items, polls and questions and 100 audit rows per channel
(records, status changes, lane moves, re-scores, poll closes, answers), a weekly schedule per
channel, then times one scheduler tick that finds every digest due and, per channel, claims the
period, reads the week's audit rows, builds the digest and writes the outbox row — the production
path (`bot.jobs.tick`). Targets: under 10 s and 300 MB.

Baseline in the same run: the time to read the same audit rows with one query and nothing else,
which is the floor any digest builder has to pay. The memory figures are tracemalloc's peak
(Python allocations during the tick, measured in a second, traced run) and the process's
maximum resident set size (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from adapters.bootstrap import build
from adapters.settings import Settings
from bot import jobs
from bot.clock import FakeClock
from storage.models import (
    AuditEntry,
    Channel,
    Decision,
    Item,
    OutboxMessage,
    Poll,
    Question,
    Schedule,
    ScheduleRun,
)

WORKSPACE = "slack:TBENCH"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday; the digests are due a week later
DUE = START + timedelta(days=7)
TARGET_SECONDS, TARGET_MB = 10.0, 300.0


def populate(app: Any, channels: int) -> int:
    """100 changes per channel, spread over the week; returns the number of audit rows."""
    counters = {"D": 0, "I": 0, "P": 0, "Q": 0}
    audit: list[dict[str, Any]] = []
    objects: dict[Any, list[dict[str, Any]]] = {Decision: [], Item: [], Poll: [], Question: []}
    next_id = {Decision: 1, Item: 1, Poll: 1, Question: 1}

    def new(model: Any, prefix: str, channel: str, at: datetime, **fields: Any) -> tuple[int, int]:
        counters[prefix] += 1
        oid = next_id[model]
        next_id[model] += 1
        base = {
            "id": oid,
            "workspace": WORKSPACE,
            "channel": channel,
            "number": counters[prefix],
            "created_by": "U1",
            "created_at": at,
            "updated_at": at,
        }
        objects[model].append(base | fields)
        return oid, counters[prefix]

    def log(channel: str, at: datetime, action: str, kind: str, oid: int, ref: str, **ba: Any):
        audit.append(
            {
                "workspace": WORKSPACE,
                "channel": channel,
                "actor": "U1",
                "at": at,
                "action": action,
                "object_kind": kind,
                "object_id": oid,
                "object_ref": ref,
                "before": ba.get("before"),
                "after": ba.get("after"),
            }
        )

    for c in range(channels):
        channel = f"C{c:05d}"
        minute = 0

        def at() -> datetime:
            nonlocal minute
            minute += 90  # 100 changes × 90 minutes ≈ 6.25 days
            return START + timedelta(minutes=minute)

        for i in range(10):  # 10 decisions recorded, 5 of them changed
            t = at()
            oid, n = new(Decision, "D", channel, t, title=f"Decision {i}", status="accepted")
            log(channel, t, "create", "decision", oid, f"D-{n}", after={"title": f"Decision {i}"})
            if i < 5:
                log(
                    channel,
                    at(),
                    "status",
                    "decision",
                    oid,
                    f"D-{n}",
                    before={"status": "accepted"},
                    after={"status": "superseded"},
                )
        for i in range(20):  # 20 items added, each moved and re-scored
            t = at()
            oid, n = new(Item, "I", channel, t, title=f"Item {i}", lane="now" if i < 5 else "next")
            log(channel, t, "create", "item", oid, f"I-{n}", after={"title": f"Item {i}"})
            log(
                channel,
                at(),
                "move",
                "item",
                oid,
                f"I-{n}",
                before={"lane": "later"},
                after={"lane": "next"},
            )
            log(
                channel,
                at(),
                "score",
                "item",
                oid,
                f"I-{n}",
                before={"rice": 10.0},
                after={"rice": 42.0},
            )
        for i in range(5):  # 5 polls opened and closed
            t = at()
            oid, n = new(Poll, "P", channel, t, question=f"Poll {i}", mode="single")
            log(channel, t, "create", "poll", oid, f"P-{n}", after={"question": f"Poll {i}"})
            log(channel, at(), "close", "poll", oid, f"P-{n}", after={"winner": "yes"})
        for i in range(10):  # 10 questions opened, 5 answered
            t = at()
            oid, n = new(Question, "Q", channel, t, text=f"Question {i}", owner="U2")
            log(channel, t, "create", "question", oid, f"Q-{n}", after={"text": f"Question {i}"})
            if i < 5:
                log(channel, at(), "answer", "question", oid, f"Q-{n}", after={"answer": "yes"})
    with app.db.uow() as session:
        for model, rows in objects.items():
            for start in range(0, len(rows), 5000):
                session.execute(insert(model), rows[start : start + 5000])
        for start in range(0, len(audit), 5000):
            session.execute(insert(AuditEntry), audit[start : start + 5000])
        session.execute(
            insert(Channel),
            [
                {"workspace": WORKSPACE, "channel": f"C{c:05d}", "tz": "UTC", "platform": "slack"}
                for c in range(channels)
            ],
        )
        session.execute(
            insert(Schedule),
            [
                {
                    "workspace": WORKSPACE,
                    "channel": f"C{c:05d}",
                    "platform": "slack",
                    "kind": "digest",
                    "weekday": 0,
                    "at_time": "09:00",
                    "tz": "UTC",
                    "enabled": True,
                    "created_by": "U1",
                    "updated_at": START,
                }
                for c in range(channels)
            ],
        )
    return len(audit)


def reset(app: Any) -> None:
    with app.db.uow() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(ScheduleRun))
        session.execute(update(Channel).values(last_digest_at=None))


def baseline(app: Any) -> tuple[float, int]:
    """Read the same audit rows with one query: the floor under any digest builder."""
    started = time.perf_counter()
    with app.db.uow() as session:
        rows = session.execute(
            select(
                AuditEntry.object_ref,
                AuditEntry.object_kind,
                AuditEntry.object_id,
                AuditEntry.action,
                AuditEntry.before,
                AuditEntry.after,
            ).where(
                AuditEntry.workspace == WORKSPACE,
                AuditEntry.at > DUE - timedelta(days=7),
                AuditEntry.at <= DUE,
            )
        ).all()
    return time.perf_counter() - started, len(rows)


def run(channels: int) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="align-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    clock = FakeClock(START)
    app = build(Settings(_env_file=None, ALIGN_DATABASE_URL=url), clock=clock)  # type: ignore[call-arg]
    started = time.perf_counter()
    rows = populate(app, channels)
    print(f"setup: {channels} channels, {rows} audit rows in {time.perf_counter() - started:.1f} s")

    clock.set(DUE)
    base_seconds, base_rows = baseline(app)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    report = jobs.tick(app.engine.deps, clock.now())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with app.db.uow() as session:
        queued = session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
    assert report.digests == channels == queued, (report, queued)

    reset(app)
    tracemalloc.start()
    jobs.tick(app.engine.deps, clock.now())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = peak / 1024 / 1024

    print(f"baseline: read {base_rows} audit rows with one query: {base_seconds:.2f} s")
    print(
        f"digests: built and queued {queued} digests in {seconds:.2f} s "
        f"({seconds / channels * 1000:.2f} ms/channel, "
        f"{seconds / base_seconds:.1f}× the baseline); CPU time {cpu:.2f} s"
    )
    print(
        f"memory: tracemalloc peak {peak_mb:.1f} MB during the tick; "
        f"process max RSS {rss_after:.0f} MB (was {rss_before:.0f} MB before the tick)"
    )
    ok = seconds < TARGET_SECONDS and rss_after < TARGET_MB
    print(f"target: < {TARGET_SECONDS:.0f} s and < {TARGET_MB:.0f} MB: {'met' if ok else 'MISSED'}")
    app.db.dispose()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 channels instead of 1,000")
    parser.add_argument("--channels", type=int, default=None)
    args = parser.parse_args(argv)
    channels = args.channels or (100 if args.quick else 1000)
    return 0 if run(channels) else 1


if __name__ == "__main__":
    sys.exit(main())
