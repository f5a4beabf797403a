"""`align serve` as an operator runs it: a real process, configured by its environment only,
stopped by signals; its stderr kept in a file for the test to read.

The process gets a minimal environment (no variable of the test's own shell leaks in) and runs
in the test's temporary directory, so no `.env` file is picked up by accident. It runs this
checkout's code: the virtualenv's editable install points at one checkout only, and a test run
in another (a git worktree) would otherwise start that one's `align serve`, not its own.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ALIGN = str(Path(sys.executable).parent / "align")
CHECKOUT = str(Path(__file__).resolve().parents[2])
START_TIMEOUT = 60.0


PORTS = range(20000, 32000)
"""Where `free_port` looks: below Linux's ephemeral range (32768-60999). A port the kernel hands
out — to a socket bound to port 0, or to an outgoing connection of another test running
meanwhile — never falls here, so a port found free stays free until the `align serve` under
test binds it. One asked of the kernel (port 0) was once taken in between, and the replica
given it could not listen."""


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(PORTS.start, PORTS.stop)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # in use: another
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(condition: object, timeout: float, what: str) -> None:
    """Poll `condition()` (a callable) until true; a condition, not a schedule, is awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class AlignProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_listening(self, timeout: float = START_TIMEOUT) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"align exited {self.proc.returncode}:\n{self.output}")
            return "Align listening" in self.output

        wait_until(up, timeout, "`Align listening`")

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"align still running after {timeout}s:\n{self.output}") from exc


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONPATH": CHECKOUT,
        **variables,
    }


@contextmanager
def align(tmp_path: Path, *args: str, port: int = 0, **variables: str) -> Iterator[AlignProcess]:
    """`align <args>` with exactly `variables` as its configuration (plus PATH and HOME)."""
    log = tmp_path / f"align-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [ALIGN, *args],
            cwd=tmp_path,
            env=environment(tmp_path, **variables),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield AlignProcess(proc, log, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
