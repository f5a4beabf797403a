"""Every benchmark `make bench` runs goes to its end and prints its figures — in its quick form,
or its smoke form where even that takes half a minute (bench_irv's pref_voting baseline at 9
options, bench_votes' 10k-ballot polls). Not its targets: those depend on the machine.
bench_anonymous once broke when running tallies landed and was found only by running it by hand.

(bench_webhooks is left out: it makes a 400 MB response on purpose, to watch memory.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURE = r"[\d,.]+"
# The reference figures a reader compares runs on different machines by (bench/machine.py).
MACHINE = r"machine: \d+ CPUs .*pure-Python loop [\d.]+ ms, 4 KiB append \+ fdatasync [\d.]+ ms"

RUNS = [
    pytest.param(
        "bench_tally", ["--quick"], [r"Schulze 10,000 x 25 < 0\.5 s: (MET|NOT MET)"], id="tally"
    ),
    pytest.param(
        "bench_irv",
        ["--smoke"],
        [rf"cyclic +6 +6 +{FIGURE} ", r"worst 25-option count < 2\.0 s: not measured"],
        id="irv",
    ),
    pytest.param(
        "bench_votes",
        ["--smoke"],
        [
            MACHINE,
            *(
                rf"\| SQLite +\| {kind} +\| {anonymous} +\| +1,000 \| +\d+ \| +\d+ \| +{FIGURE} \|"
                for kind in ("single", "ranked")
                for anonymous in ("no", "yes")
            ),
        ],
        id="votes",
    ),
    pytest.param("bench_anonymous", ["--quick"], [r"\| sqlite +\| +10,000 \|"], id="anonymous"),
    pytest.param("bench_digest", ["--quick"], [r"target: < 10 s and < 300 MB: "], id="digest"),
    pytest.param(
        "bench_slack",
        ["--smoke"],
        [
            MACHINE,
            r"(OK|MISS) +inbox record p50",
            r"(OK|MISS) +saturation: align acks",
            r"(OK|MISS) +saturation: align-split acks",
            # Every click of the burst counted and shown, in both shapes: the whole path works.
            r"OK +burst, align: the poll's message shows 40 votes",
            r"OK +burst, align-split: the poll's message shows 40 votes",
        ],
        id="slack",
    ),
]


@pytest.mark.parametrize(("module", "args", "expected"), RUNS)
def test_the_benchmark_runs_to_its_end_and_prints_its_figures(
    module: str, args: list[str], expected: list[str]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for line in expected:
        assert re.search(line, done.stdout), f"{line!r} not in:\n{done.stdout[-3000:]}"
