"""`align serve` keeps its threads on one CPU (ALIGN_CPU, adapters/cpu.py): `auto` starts where
the process is and follows the idlest CPU it may use, a number stays put, `off` leaves the
threads to the kernel. The moves are decided from /proc/stat's figures, given here; the
pinning itself is read back from the kernel on a real `align serve` process."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from pathlib import Path

import pytest

from adapters import cpu
from adapters.preflight import ConfigError
from adapters.server import one_cpu
from tests.conftest import make_settings
from tests.fakes import FakeSlackApi
from tests.server.process import align, free_port, wait_until

STAT = """cpu  900 0 300 8000 100 0 0 0 0 0
cpu0 500 0 100 3900 50 0 0 0 0 0
cpu1 400 0 200 4100 50 0 0 7 0 0
intr 12345
ctxt 999
"""


def test_proc_stat_reads_as_busy_and_total_ticks_per_cpu() -> None:
    # busy: all but idle (4th) and iowait (5th); steal (8th) is busy: the host's, not ours.
    assert cpu.cpu_times(STAT) == {0: (600, 4550), 1: (607, 4757)}


class Readings:
    """What /proc would say at each check: per CPU (busy, total) and this process's ticks."""

    def __init__(self) -> None:
        self.times: cpu.Times = {0: (0, 0), 1: (0, 0)}
        self.own = 0
        self.pinned: list[int] = []

    def advance(self, busy: dict[int, int], own: int, ticks: int = 100) -> None:
        for c, more in busy.items():
            self.times[c] = (self.times[c][0] + more, self.times[c][1] + ticks)
        self.own += own

    def follow(self, on: int = 0) -> cpu.Follow:
        return cpu.Follow(
            on,
            frozenset(self.times),
            read_stat=lambda: dict(self.times),
            own_ticks=lambda: self.own,
            pin=self.pinned.append,
        )

    def looked(self, on: int = 0) -> cpu.Follow:
        """`follow`, once its first look has taken the readings."""
        keeper = self.follow(on)
        keeper.check()
        return keeper


def test_the_first_look_only_takes_the_readings() -> None:
    readings = Readings()
    keeper = readings.follow()
    readings.advance({0: 100, 1: 0}, own=0)  # before the first look: not compared
    assert keeper.check() is None
    assert readings.pinned == []


def test_a_cpu_busy_with_this_process_alone_is_kept() -> None:
    readings = Readings()
    keeper = readings.looked()
    readings.advance({0: 95, 1: 0}, own=90)  # nearly all of CPU 0 is our own work
    assert keeper.check() is None
    assert (keeper.cpu, readings.pinned) == (0, [])


def test_other_work_on_its_cpu_moves_every_thread_to_the_idler_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="align.serve")
    readings = Readings()
    keeper = readings.looked()
    readings.advance({0: 100, 1: 10}, own=40)  # 60% of CPU 0 went to someone else
    # Worth a move: first a second look, after a random pause, over a fresh moment.
    assert keeper.check() is None and readings.pinned == []
    assert keeper.soon is not None and 0 <= keeper.soon <= cpu.SPREAD
    readings.advance({0: 100, 1: 10}, own=40)  # the pause: not counted
    assert keeper.check() is None and keeper.soon == cpu.CONFIRM
    readings.advance({0: 100, 1: 10}, own=40)
    assert keeper.check() == 1
    assert (keeper.cpu, readings.pinned) == (1, [1])
    assert keeper.soon is None
    assert "moved to CPU 1: other work took 60% of CPU 0, CPU 1 was 10% busy" in caplog.text
    # The next look starts afresh on CPU 1: what came before the move is not compared.
    readings.advance({0: 0, 1: 100}, own=100)
    assert keeper.check() is None
    readings.advance({0: 0, 1: 100}, own=100)
    assert keeper.check() is None
    assert readings.pinned == [1]


def test_work_that_left_meanwhile_is_not_followed() -> None:
    """Two processes on CPU 0, both busy: each look's window still holds the other's work if
    the other moved away near its end. Moving on it, both ended up on CPU 1 and moved back
    together, look after look (two real `align serve` started together, each half busy: both
    moved at their first look, one came back 17 s later; simulated, up to 27 moves in 20
    minutes). The second, fresh look sees the other gone."""
    readings = Readings()
    keeper = readings.looked()
    readings.advance({0: 100, 1: 0}, own=50)  # the other process: half of CPU 0
    assert keeper.check() is None and keeper.soon is not None
    readings.advance({0: 50, 1: 50}, own=50)  # it looked first and moved to CPU 1
    keeper.check()
    readings.advance({0: 50, 1: 50}, own=50)
    assert keeper.check() is None
    assert (keeper.cpu, readings.pinned) == (0, [])
    assert keeper.soon is None


def a_move_decided(
    readings: Readings, keeper: cpu.Follow, busy: dict[int, int], own: int
) -> int | None:
    """What `keeper` does after `busy` and `own` over a look, then again over its second one."""
    readings.advance(busy, own=own)
    assert keeper.check() is None and keeper.soon is not None, "no move to confirm"
    keeper.check()  # the second look's readings
    readings.advance(busy, own=own)
    return keeper.check()


def test_a_cpu_that_refuses_the_threads_is_left_where_they_are_and_not_tried_again() -> None:
    """A CPU out of the set the process may use since it started (a container's CPU set
    changed) or taken offline as the threads were moved: sched_setaffinity refuses it. The
    keeper said it was there all the same, and from then on watched that idle CPU instead of
    the threads' own: it never moved again, whatever took their CPU."""
    readings = Readings()
    readings.times[2] = (0, 0)
    keeper = readings.follow()

    def refused(to: int) -> None:
        if to == 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        readings.pinned.append(to)

    keeper.pin = refused
    keeper.check()
    with pytest.raises(OSError):
        a_move_decided(readings, keeper, {0: 100, 1: 0, 2: 20}, own=0)
    assert (keeper.cpu, keeper.allowed, readings.pinned) == (0, {0, 2}, [])
    keeper.check()  # the next look's readings
    assert a_move_decided(readings, keeper, {0: 100, 1: 0, 2: 20}, own=0) == 2
    assert (keeper.cpu, readings.pinned) == (2, [2])


def test_a_cpu_taken_offline_under_the_threads_is_left_for_the_idlest_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Offline, the threads' CPU leaves /proc/stat, and the kernel spreads them over the
    others, forgetting their pinning: the keeper, seeing no figures for its CPU, stayed put and
    left them spread for good."""
    caplog.set_level(logging.INFO, logger="align.serve")
    readings = Readings()
    readings.times[2] = (0, 0)
    keeper = readings.looked()
    del readings.times[0]
    assert a_move_decided(readings, keeper, {1: 60, 2: 20}, own=10) == 2
    assert (keeper.cpu, readings.pinned) == (2, [2])
    assert "moved to CPU 2: CPU 0 was taken offline, CPU 2 was 20% busy" in caplog.text


def test_it_does_not_move_for_less_than_the_margin() -> None:
    readings = Readings()
    keeper = readings.looked()
    # 50% of CPU 0 is others' work; CPU 1 is 30% busy: idler by 20 points, under the margin.
    readings.advance({0: 90, 1: 30}, own=40)
    assert keeper.check() is None
    assert readings.pinned == []


def test_a_cpu_missing_from_the_readings_is_no_candidate() -> None:
    readings = Readings()
    keeper = readings.looked()
    readings.advance({0: 100, 1: 0}, own=0)
    del readings.times[1]  # taken offline
    assert keeper.check() is None
    assert readings.pinned == []


def test_off_leaves_the_threads_where_the_kernel_puts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned: list[int] = []
    monkeypatch.setattr(cpu, "_pin_all", pinned.append)
    assert one_cpu(make_settings("sqlite:///unused.db", ALIGN_CPU="off")) is None
    assert pinned == []


@pytest.mark.skipif(not cpu.supported(), reason="Linux CPU affinity")
def test_a_cpu_the_process_may_not_use_is_refused_in_words() -> None:
    beyond = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(ConfigError, match=rf"ALIGN_CPU={beyond}: this process may run on CPUs"):
        one_cpu(make_settings("sqlite:///unused.db", ALIGN_CPU=str(beyond)))


@pytest.mark.skipif(not cpu.supported(), reason="Linux CPU affinity")
def test_where_affinity_is_refused_the_threads_are_left_to_the_kernel_and_the_log_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sandbox that refuses sched_setaffinity (EPERM): `auto` follows nothing and says the
    threads are the kernel's; a CPU named in ALIGN_CPU is refused at start in one sentence."""
    pinned: list[int] = []
    monkeypatch.setattr(cpu, "_pin_all", pinned.append)

    def refused(pid: int, cpus: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refused)
    monkeypatch.setattr(cpu, "_current_cpu", lambda: min(os.sched_getaffinity(0)))
    if len(os.sched_getaffinity(0)) > 1:
        with caplog.at_level(logging.WARNING, logger="align.serve"):
            assert one_cpu(make_settings("sqlite:///unused.db", ALIGN_CPU="auto")) is None
        assert "threads are left to the kernel" in caplog.text
    first = min(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match=rf"ALIGN_CPU={first}: this process may not choose"):
        one_cpu(make_settings("sqlite:///unused.db", ALIGN_CPU=str(first)))
    assert pinned == []


def test_a_setting_that_is_no_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match="ALIGN_CPU"):
        make_settings("sqlite:///unused.db", ALIGN_CPU="fast")


def _cpus_of_every_thread(pid: int) -> set[str]:
    """Each thread's `Cpus_allowed_list`, as the kernel has it."""
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found.add(line.split(":", 1)[1].strip())
    return found


needs_two = pytest.mark.skipif(
    not cpu.supported() or len(os.sched_getaffinity(0)) < 2, reason="two CPUs, Linux affinity"
)


@needs_two
@pytest.mark.parametrize("setting", ["auto", "off", "first"])
def test_a_real_align_serve_keeps_every_thread_on_one_cpu(tmp_path: Path, setting: str) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    value = str(allowed[0]) if setting == "first" else setting
    port = free_port()
    with FakeSlackApi.running() as slack:
        env = {
            "ALIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'align.db'}",
            "ALIGN_SECRET": "s",
            "ALIGN_PORT": str(port),
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.url,
            "ALIGN_CPU": value,
        }
        with align(tmp_path, "serve", port=port, **env) as serve:
            serve.wait_listening()
            pid = serve.proc.pid
            # Started by then: the event loop, the inbox's writer, the scheduler's threads.
            wait_until(lambda: len(os.listdir(f"/proc/{pid}/task")) > 2, 10, "threads")
            cpus = _cpus_of_every_thread(pid)
            if setting == "off":  # what this test's own process may use: every CPU allowed
                assert cpus == _cpus_of_every_thread(os.getpid()) and len(allowed) > 1
            elif setting == "first":
                assert cpus == {value}
                assert f"threads kept on CPU {value} (ALIGN_CPU)" in serve.output
            else:
                assert len(cpus) == 1 and next(iter(cpus)).isdigit()
                assert int(next(iter(cpus))) in allowed
                assert "following the idlest (ALIGN_CPU=auto" in serve.output
            serve.send(signal.SIGTERM)
            assert serve.wait(timeout=30) == 0


class Looks:
    """What `follow` reads of a `Follow`, and a count of its looks; `check` is each test's."""

    looks = 0
    fixed = False
    cpu = 1
    allowed = frozenset({0, 1})
    soon: float | None = None

    def followed(
        self, *, until_looks: int | None = None, turns: int = 100_000, every: float = 0
    ) -> int:
        """`cpu.follow` over this stand-in, its first look at once, for turns of the loop that
        take no time: until it looked `until_looks` times, or `turns` turns. Its looks."""

        async def main() -> int:
            task = asyncio.ensure_future(cpu.follow(self, first=0, every=every))  # type: ignore[arg-type]
            for _ in range(turns):
                if until_looks is not None and self.looks >= until_looks:
                    break
                await asyncio.sleep(0)
            task.cancel()
            return self.looks

        return asyncio.run(main())


def test_following_looks_again_and_again_and_outlives_a_failed_look(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Keeper(Looks):
        def check(self) -> None:
            self.looks += 1
            if self.looks in (1, 3):
                raise OSError("no /proc")

    assert Keeper().followed(until_looks=5) >= 5
    assert "ALIGN_CPU: could not look at the CPUs (no /proc)" in caplog.text


def test_a_look_that_would_move_is_followed_by_the_second_look_soon() -> None:
    class Keeper(Looks):
        def check(self) -> None:
            self.looks += 1
            self.soon = 0.0 if self.looks in (2, 3) else None  # pause, then the fresh moment

    # 100 turns of the loop, no time: only a sooner look can come.
    assert Keeper().followed(turns=100, every=3600) == 4  # the 3rd and 4th not waiting the hour


def test_a_look_that_keeps_failing_is_warned_of_once(caplog: pytest.LogCaptureFixture) -> None:
    """/proc unreadable for good (a sandbox): one warning, not one every ten seconds for the
    life of the process; another after a look that worked."""

    class Keeper(Looks):
        def check(self) -> None:
            self.looks += 1
            if self.looks != 20:
                raise PermissionError(13, "Permission denied", "/proc/stat")

    assert Keeper().followed(until_looks=30) >= 30
    warned = [r for r in caplog.records if "could not look at the CPUs" in r.getMessage()]
    assert len(warned) == 2, caplog.text


@pytest.mark.skipif(not cpu.supported(), reason="Linux CPU affinity")
def test_a_real_align_serve_on_a_cpu_it_may_not_use_says_so_in_one_sentence(
    tmp_path: Path,
) -> None:
    from tests.server.test_start_errors import one_sentence

    beyond = max(os.sched_getaffinity(0)) + 1
    env = {
        "ALIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'align.db'}",
        "ALIGN_SECRET": "s",
        "ALIGN_CPU": str(beyond),
    }
    with align(tmp_path, "serve", port=free_port(), **env) as serve:
        assert serve.wait(timeout=60) == 1
    allowed = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    assert one_sentence(serve.output) == (
        f"ALIGN_CPU={beyond}: this process may run on CPUs {allowed} only"
    )
    assert not (tmp_path / "align.db").exists()


def test_a_look_that_fails_otherwise_ends_following_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Keeper(Looks):
        def check(self) -> None:
            raise ValueError("a /proc/stat line of another shape")

    asyncio.run(cpu.follow(Keeper(), first=0, every=0))  # type: ignore[arg-type]  # returns
    assert "ALIGN_CPU: stopped following the idlest CPU; threads stay on CPU 1" in caplog.text
