"""What the machine a benchmark ran on could do, printed beside its figures.

Some targets are ratios against a baseline run in the same process (bare inserts, a bare Bolt
app) and some are absolute (CPU per read command). Neither survives a change of machine: a bare
Bolt app's ack rate is bounded by its own 10 ms ack polling, not by the CPU, so on a slower CPU
Align's ratio against it drops while the baseline's rate does not; an anonymous batch on SQLite
waits for three fdatasyncs, whose cost is the disk's. Two sessions on one machine image measured
the same code 2-3x apart (CPU per read command 0.75 ms, then 2.5 ms). These two figures, taken
on the spot, let a reader tell a change in the code from a change in the machine.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time

LOOP = 10_000
SYNCS = 50


def python_loop_ms() -> float:
    """Best of five: `sum(i * i for i in range(10_000))`, a fixed pure-Python workload. Seen on
    this project's 2-core machines: 0.8 ms with Debian's python3.11, 1.0-2.1 ms with pyenv's
    3.11.7 (the venv `make` builds) on the same machine, minutes apart."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            sum(i * i for i in range(LOOP))
        best = min(best, (time.perf_counter() - start) / 20)
    return best * 1000


def fdatasync_ms(directory: str | None = None) -> float:
    """Median cost of appending a 4 KiB page to a file and `fdatasync`ing it, as SQLite's WAL
    does at a checkpoint: growing a file makes the sync carry metadata too."""
    with tempfile.TemporaryDirectory(dir=directory) as where:
        path = os.path.join(where, "sync-probe")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            page, times = b"\0" * 4096, []
            for _ in range(SYNCS):
                os.write(fd, page)
                start = time.perf_counter()
                os.fdatasync(fd)
                times.append(time.perf_counter() - start)
        finally:
            os.close(fd)
    times.sort()
    return times[len(times) // 2] * 1000


def describe(directory: str | None = None) -> str:
    """One line: the CPUs, the interpreter, and the two reference figures."""
    return (
        f"machine: {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()} ({sys.executable}); reference: pure-Python loop "
        f"{python_loop_ms():.2f} ms, 4 KiB append + fdatasync {fdatasync_ms(directory):.2f} ms"
    )


if __name__ == "__main__":
    print(describe())
