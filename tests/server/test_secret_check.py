"""Every process sharing a database holds the same ALIGN_SECRET, or does not start.

Real `align serve` processes, configured by their environment only, on SQLite and PostgreSQL: the
first stores a fingerprint of its secret, a later one with the same secret starts, one with
another secret (a typo in one replica's environment) exits 1 with one sentence before it listens —
whatever its role — and two started together on an empty database agree on whose fingerprint is
stored. `align adopt-secret` is the deliberate way to change it, and a process still running with
the old secret then stops by itself, saying why, and exits 1.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.secret_watch import SECRET_REPLACED
from storage.db import normalize_url
from storage.secret_check import fingerprint
from tests.server.process import AlignProcess, align, free_port, wait_until
from tests.server.test_start_errors import one_sentence

FIRST = "first-secret-0123456789abcdef"
OTHER = "other-secret-0123456789abcdef"


def stored(url: str) -> list[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT fingerprint FROM secret_fingerprints")).scalars()
            return list(rows)
    finally:
        engine.dispose()


def env(url: str, secret: str, port: int) -> dict[str, str]:
    return {
        "ALIGN_DATABASE_URL": url,
        "ALIGN_SECRET": secret,
        "ALIGN_PORT": str(port),
        "ALIGN_HOST": "127.0.0.1",
        "ALIGN_SHUTDOWN_GRACE": "2",
    }


def serve(
    stack: ExitStack, tmp: Path, url: str, secret: str, role: str = "all", **extra: str
) -> AlignProcess:
    port = free_port()
    return stack.enter_context(
        align(tmp, "serve", "--role", role, port=port, **env(url, secret, port), **extra)
    )


def stop(process: AlignProcess) -> None:
    process.send(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.output


def refused(process: AlignProcess) -> str:
    """The one sentence a refused process said, after checking it exited 1 without listening."""
    assert process.wait(timeout=60) == 1, process.output
    assert "Align listening" not in process.output
    return one_sentence(process.output)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as processes:
        yield processes


def test_the_first_process_stores_the_fingerprint_and_the_same_secret_starts_again(
    db_url: str, tmp_path: Path, stack: ExitStack
) -> None:
    first = serve(stack, tmp_path, db_url, FIRST)
    first.wait_listening()
    assert stored(db_url) == [fingerprint(FIRST.encode())]
    # A keyed fingerprint of its own: neither the secret nor any plain hash of it.
    (held,) = stored(db_url)
    assert FIRST not in held and FIRST.encode().hex() not in held
    stop(first)
    for role in ("worker", "web"):
        again = serve(stack, tmp_path, db_url, FIRST, role)
        again.wait_listening()
        stop(again)
    assert stored(db_url) == [fingerprint(FIRST.encode())]


# Each role on one database (the check runs before the role matters); `all`: the adopt test.
@pytest.mark.parametrize(
    ("db_url", "role"), [("sqlite", "web"), ("postgres", "worker")], indirect=["db_url"]
)
def test_a_process_with_another_secret_is_refused_in_one_sentence(
    db_url: str, tmp_path: Path, stack: ExitStack, role: str
) -> None:
    running = serve(stack, tmp_path, db_url, FIRST)
    running.wait_listening()
    typo = serve(stack, tmp_path, db_url, OTHER, role)
    sentence = refused(typo)
    assert sentence.startswith("ALIGN_SECRET is not the secret this database is used with")
    assert "set the same ALIGN_SECRET in every process" in sentence
    assert "align adopt-secret" in sentence
    assert OTHER not in sentence and FIRST not in sentence
    assert stored(db_url) == [fingerprint(FIRST.encode())]  # the first one's, untouched
    stop(running)


def test_two_processes_started_together_on_an_empty_database_agree(
    db_url: str, tmp_path: Path, stack: ExitStack
) -> None:
    both = [serve(stack, tmp_path, db_url, FIRST), serve(stack, tmp_path, db_url, OTHER)]
    wait_until(
        lambda: all(p.proc.poll() is not None or "Align listening" in p.output for p in both),
        60,
        "both processes to listen or exit",
    )
    (winner,) = [p for p in both if p.proc.poll() is None]
    (loser,) = [p for p in both if p is not winner]
    assert "ALIGN_SECRET is not the secret this database is used with" in refused(loser)
    secret = FIRST if winner is both[0] else OTHER
    assert stored(db_url) == [fingerprint(secret.encode())]
    stop(winner)


def test_adopt_secret_makes_the_new_secret_the_databases(
    db_url: str, tmp_path: Path, stack: ExitStack
) -> None:
    first = serve(stack, tmp_path, db_url, FIRST)
    first.wait_listening()
    stop(first)

    # Asked without a terminal to answer: nothing changes.
    with align(tmp_path, "adopt-secret", **env(db_url, OTHER, 0)) as unanswered:
        assert unanswered.wait(timeout=60) == 1
    assert "Adopt this ALIGN_SECRET?" in unanswered.output
    assert stored(db_url) == [fingerprint(FIRST.encode())]

    with align(tmp_path, "adopt-secret", "--yes", **env(db_url, OTHER, 0)) as adopted:
        assert adopted.wait(timeout=60) == 0, adopted.output
    # It says what the old secret's data loses before it adopts the new one.
    assert "will never be counted" in adopted.output
    assert "webhook rotate" in adopted.output
    assert "ALIGN_SECRET adopted" in adopted.output
    assert stored(db_url) == [fingerprint(OTHER.encode())]

    now = serve(stack, tmp_path, db_url, OTHER)
    now.wait_listening()
    assert "ALIGN_SECRET is not the secret" in refused(serve(stack, tmp_path, db_url, FIRST))
    stop(now)


# A web process (no scheduler; with hand-off, what it seals a worker opens) and a worker.
@pytest.mark.parametrize(
    ("db_url", "role"), [("postgres", "web"), ("sqlite", "worker")], indirect=["db_url"]
)
def test_a_process_running_when_the_secret_is_adopted_stops_saying_why(
    db_url: str, tmp_path: Path, stack: ExitStack, role: str
) -> None:
    running = serve(
        stack,
        tmp_path,
        db_url,
        FIRST,
        role,
        ALIGN_HAND_OFF="true",
        ALIGN_SECRET_RECHECK_FOR_TESTS="0.2",  # instead of every 30 s
    )
    running.wait_listening()
    with align(tmp_path, "adopt-secret", "--yes", **env(db_url, OTHER, 0)) as adopted:
        assert adopted.wait(timeout=60) == 0, adopted.output

    # By itself, the graceful way (as on SIGTERM), and non-zero for its supervisor to see.
    assert running.wait(timeout=30) == 1, running.output
    errors = [line for line in running.output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(f"align.secret: {SECRET_REPLACED}"), errors
    assert "stopping: finishing work in flight" in running.output
    assert running.output.rstrip().endswith("stopped")
    assert stored(db_url) == [fingerprint(OTHER.encode())]
