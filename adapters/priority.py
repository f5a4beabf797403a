"""Work yields to acks: in a process that acknowledges requests, the threads that run the engine
and build the replies take a lower CPU priority than the event loop that sends the acks.

One process shares one interpreter lock between its acks and its work. Past what it could work,
its acks slowed to the working pace (bench_slack, saturation: 0.45-0.59x a bare Bolt app's acks)
and the backlog's bound hardly came into play: the work kept taking the CPU the "busy" answers
needed. With the work's threads at nice +10 (ALIGN_WORKER_NICE), the kernel runs the loop first
whenever both are ready: 0.83-0.88x in the same runs, the bound answering the surplus at once,
with a 1,000-click burst still counted 0.02 s after its last ack. The work is only ever late
when the loop has something to do, and then it is what waits.

On Linux each thread has its own priority and a new thread starts with its creator's: the
threads lowered here are started by the event loop (the Slack listeners' pool, the inbox's
engine groups, the profile lookups), and a lowered thread never starts one that an ack waits
for (every `GroupCommit` is submitted to from the loop). The thread that runs read commands on
SQLite is not lowered: a read's work is its ack's answer (adapters/slack/workers.py).
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("align.serve")

_lowered_by = 0


def work_yields(by: int) -> None:
    """From now on, `lower_this_thread` lowers a thread's priority by `by` (0: leaves it)."""
    global _lowered_by
    _lowered_by = by


def lowered_by() -> int:
    return _lowered_by


def lower_this_thread() -> None:
    """Lower the calling thread's CPU priority by what `work_yields` said (a thread's start)."""
    if not _lowered_by or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + _lowered_by))
    except OSError as exc:  # a platform without per-thread priorities: the work runs as before
        log.warning("a work thread's CPU priority could not be lowered (%s)", exc)


__all__ = ["lower_this_thread", "lowered_by", "work_yields"]
