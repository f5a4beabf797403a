"""One CPU for one process (ALIGN_CPU): its threads share one interpreter lock, and on two CPUs
they spend more handing it over than working.

A read command's work runs in a thread beside the event loop (adapters/slack/workers.py). The
engine's driver lets go of the lock at every step, and the loop lets go of it at every
socket call: on two CPUs each hand-over wakes a sleeping thread on the other CPU, and both
threads ran their Python slower with their caches on the wrong CPU. bench_slack, one process
on SQLite, `questions` with twenty reads in flight (server CPU per read, the same build run
alternately): 1.67 and 2.19 ms on two CPUs, 1.03 and 1.31 with the process on one; saturation
0.43x a bare Bolt app's acks against 0.78x. Nothing in the process gains from a second CPU:
SQLite's and the network's waits are waits, and all the rest needs the lock.

A pinned process cannot leave its CPU when something else takes it, as the kernel would move
an unpinned one. So `auto` follows: it starts on the CPU the process is on, and every
FOLLOW_EVERY seconds (jittered, so two processes on one host do not move in step) it moves
every thread to another of its allowed CPUs when that one was idler by more than MOVE_MARGIN
of the time than its own CPU was left to it by other work, and still is a moment later
(`Follow.check`). A number pins to that CPU and stays; `off` leaves the process to the kernel.
Linux only; elsewhere nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("align.serve")

FOLLOW_FIRST = 2.0
"""Seconds after start of the first look (two processes started together may share a CPU)."""
FOLLOW_EVERY = 10.0
MOVE_MARGIN = 0.25
"""How much idler (a fraction of the time) another CPU must have been to move there."""
SPREAD = 2.0
CONFIRM = 0.5
"""A look that would move looks again first: after a random pause of up to SPREAD seconds, over
the next CONFIRM seconds only, and moves if that look agrees. A look's window is some ten
seconds long: another process on this CPU that moved away near its end still counted as other
work here, and both moved — two busy `align serve` started together on one CPU both moved at
their first look, and one came back 17 s later; simulated, such pairs moved up to 27 times in
20 minutes, look after look in step. The later of two second looks sees the other gone; the
random pause keeps two second looks apart (simulated: one move, a second one now and then)."""

Times = dict[int, tuple[int, int]]
"""Per CPU: (busy, total) clock ticks since boot, from /proc/stat."""


def cpu_times(stat: str) -> Times:
    """/proc/stat's per-CPU lines as (busy, total) ticks: busy is all but idle and iowait
    (steal included: time the host gave to someone else is not ours either)."""
    times: Times = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in rest.split()[:8]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        times[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return times


def _read_stat() -> Times:
    return cpu_times(Path("/proc/stat").read_text())


def _own_ticks() -> int:
    """User + system ticks of this process, all its threads."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _current_cpu() -> int:
    """The CPU the calling thread last ran on (/proc/thread-self/stat, field 39)."""
    fields = Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[36])


def _pin_all(cpu: int) -> None:
    """Every thread of the process onto `cpu`; threads started later inherit it from their
    creator. Twice over the list: a thread started during the first pass by one not yet
    moved would keep the old set."""
    for _ in range(2):
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), {cpu})
            except (ProcessLookupError, PermissionError):  # ended meanwhile / not ours
                continue


def supported() -> bool:
    return hasattr(os, "sched_setaffinity") and Path("/proc/thread-self/stat").exists()


@dataclass
class Follow:
    """Where the process's threads are, and `check`, which moves them to an idler CPU."""

    cpu: int
    allowed: frozenset[int]
    fixed: bool = False
    """ALIGN_CPU named the CPU: it stays there (`follow` only says where it is)."""
    read_stat: Callable[[], Times] = _read_stat
    own_ticks: Callable[[], int] = _own_ticks
    pin: Callable[[int], None] = _pin_all
    soon: float | None = field(default=None, init=False)
    """Seconds to the next check when it must come sooner than usual: a move's second look."""
    _last: tuple[Times, int] | None = field(default=None, init=False)
    _confirming: bool = field(default=False, init=False)

    def check(self) -> int | None:
        """The CPU moved to, or None. Compares the time since the last check: the other work
        on this CPU (its busy time less this process's own) against each other allowed CPU's
        busy time. The first check only takes the readings; a check that would move asks for
        a second look first (SPREAD, CONFIRM: `soon`)."""
        self.soon = None
        now = (self.read_stat(), self.own_ticks())
        last, self._last = self._last, now
        if last is None:
            if self._confirming:  # the second look's fresh readings: it compares CONFIRM later
                self.soon = CONFIRM
            return None
        confirming, self._confirming = self._confirming, False
        (before, own_before), (after, own_after) = last, now

        def busy(cpu: int) -> float | None:
            if cpu not in before or cpu not in after:
                return None
            total = after[cpu][1] - before[cpu][1]
            return (after[cpu][0] - before[cpu][0]) / total if total > 0 else None

        if self.cpu not in after:  # offline: the kernel spread the threads, unpinned; any CPU
            others_here = 1 + MOVE_MARGIN  # will do (none is busier than all of the time)
        elif (here := busy(self.cpu)) is None:
            return None
        else:  # `busy` had ticks to divide by
            total_here = after[self.cpu][1] - before[self.cpu][1]
            others_here = max(0.0, here - (own_after - own_before) / total_here)
        idlest = min(
            ((b, c) for c in sorted(self.allowed - {self.cpu}) if (b := busy(c)) is not None),
            default=None,
        )
        if idlest is None or idlest[0] + MOVE_MARGIN > others_here:
            return None
        if not confirming:  # look again over a fresh moment, after a random pause
            self._confirming, self._last = True, None
            self.soon = random.uniform(0, SPREAD)
            return None
        try:
            self.pin(idlest[1])
        except OSError:  # refused: no longer in the process's CPU set, or just taken offline
            self.allowed -= {idlest[1]}  # the threads stay where they are, and so does `cpu`
            raise
        previous, self.cpu = self.cpu, idlest[1]
        self._last = None  # the next readings start afresh on the new CPU
        log.info(
            "moved to CPU %d: %s, CPU %d was %.0f%% busy",
            self.cpu,
            f"other work took {others_here:.0%} of CPU {previous}"
            if previous in after
            else f"CPU {previous} was taken offline",
            self.cpu,
            idlest[0] * 100,
        )
        return self.cpu


def keep_on_one(setting: str) -> Follow | None:
    """Put the process's threads on one CPU as ALIGN_CPU says (the module docstring); the
    `Follow` for `follow` to run, or None when the threads were left where they were. Called
    before any thread starts."""
    if setting == "off" or not supported():
        return None
    allowed = frozenset(os.sched_getaffinity(0))
    if setting != "auto":
        cpu = int(setting)
        if cpu not in allowed:
            raise ValueError(
                f"ALIGN_CPU={cpu}: this process may run on CPUs {_listed(allowed)} only"
            )
        if not _may_pin(cpu):
            raise ValueError(
                f"ALIGN_CPU={cpu}: this process may not choose its CPU here (a sandbox or "
                "container refuses it); set ALIGN_CPU=off"
            )
        _pin_all(cpu)
        return Follow(cpu, allowed, fixed=True)
    if len(allowed) < 2:
        return None
    cpu = _current_cpu()
    if cpu not in allowed:  # not yet moved onto an allowed one: take the first
        cpu = min(allowed)
    if not _may_pin(cpu):
        log.warning(
            "this process may not choose its CPU here (a sandbox or container refuses it): "
            "its threads are left to the kernel (ALIGN_CPU=auto)"
        )
        return None
    _pin_all(cpu)
    return Follow(cpu, allowed)


def _may_pin(cpu: int) -> bool:
    """Whether the calling thread could be put on `cpu`: where a sandbox refuses affinity
    (EPERM) every thread would stay where the kernel puts it, and the log must not say
    otherwise."""
    try:
        os.sched_setaffinity(0, {cpu})
    except PermissionError:
        return False
    return True


async def follow(
    keeper: Follow, *, first: float = FOLLOW_FIRST, every: float = FOLLOW_EVERY
) -> None:
    """Say where the threads are; then, for `auto`, `keeper.check()` now, after `first`
    seconds, then about every `every` — or sooner, when the check asks (`Follow.soon`) — until
    cancelled (a few /proc reads: on the loop). Run once the server listens: a start that
    fails says only why."""
    if keeper.fixed:
        log.info("threads kept on CPU %d (ALIGN_CPU)", keeper.cpu)
        return
    log.info(
        "threads kept on CPU %d of %s, following the idlest (ALIGN_CPU=auto; off to spread)",
        keeper.cpu,
        _listed(keeper.allowed),
    )
    wait, failing = first, False
    while True:
        try:
            keeper.check()
            failing = False
        except OSError as exc:  # /proc unreadable, a CPU taken away: stay where we are
            if not failing:  # once, not at every look for as long as it lasts
                log.warning("ALIGN_CPU: could not look at the CPUs (%s)", exc)
            failing = True
        except Exception:  # a /proc we cannot parse: following ends, said once, serving goes on
            log.exception(
                "ALIGN_CPU: stopped following the idlest CPU; threads stay on CPU %d", keeper.cpu
            )
            return
        await asyncio.sleep(wait if keeper.soon is None else keeper.soon)
        wait = every * random.uniform(0.8, 1.2)


def _listed(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


__all__ = ["Follow", "cpu_times", "follow", "keep_on_one", "supported"]
