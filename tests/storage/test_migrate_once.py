"""Several processes started together on an empty database: every one of them starts.

Each is a real `align run "decide …"` process (it migrates on start, as `serve` and `chat` do).
They are lined up on a barrier after their imports, so their migrations really overlap; before the
migration lock, the losers crashed ("table audit already exists" on SQLite, a UniqueViolation on
`alembic_version` on PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from storage.migrate import current
from storage.models import Decision
from tests.conftest import opened
from tests.storage.test_migrations import head

PROCESSES = 4

STARTER = """
import sys, time, pathlib
import adapters.bootstrap, adapters.console.repl, storage.migrate  # the slow part, before the line
from adapters.cli import main
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.001)
main(["run", sys.argv[3]])
"""


def start_together(
    db_url: str, tmp_path: Path, count: int
) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "ALIGN_DATABASE_URL": db_url, "ALIGN_SECRET": "test-secret"}
    go = tmp_path / "go"
    procs = []
    readies = []
    for n in range(count):
        ready = tmp_path / f"ready-{n}"
        readies.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", STARTER, str(ready), str(go), f"decide From process {n}"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline, "the processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def test_processes_started_together_on_an_empty_database_all_start(
    db_url: str, tmp_path: Path
) -> None:
    results = start_together(db_url, tmp_path, PROCESSES)
    failed = [(r.returncode, r.stderr[-2000:]) for r in results if r.returncode != 0]
    assert failed == []
    assert current(db_url) == head()
    with opened(db_url) as app, app.db.uow() as session:
        titles = sorted(session.execute(select(Decision.title)).scalars())
    assert titles == [f"From process {n}" for n in range(PROCESSES)]
