"""Migration 0014 (on SQLite, `pending_ballots` and `members` without a rowid) on a database
already in use: every row of every table is the same after the upgrade and after the downgrade,
no copy of a waiting ballot is left behind in the file, and the ballots that waited, sealed, are
counted afterwards like any others. PostgreSQL's tables are left as they are."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.migrate import current, downgrade, upgrade
from tests.storage.test_poll_features_migration import run
from tests.storage.test_secret_fingerprint_migration import say, snapshot

TABLES = ("members", "pending_ballots")


def without_rowid(url: str) -> dict[str, bool]:
    """Whether each table is a WITHOUT ROWID one (SQLite then makes no index of its own for the
    primary key: the table is that index)."""
    return {
        table: not run(
            url,
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = :table "
            "AND name LIKE 'sqlite_autoindex_%'",
            table=table,
        )
        for table in TABLES
    }


def copies_in_file(path: Path, sealed: list[bytes]) -> list[int]:
    """How often each sealed ballot's opening bytes are in the database file, once the WAL is
    written back into it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    content = path.read_bytes()
    return [content.count(s[:32]) for s in sealed]


def test_an_existing_database_keeps_every_row_up_and_down(db_url: str) -> None:
    database = make_url(db_url).database if db_url.startswith("sqlite") else None
    upgrade(db_url, "0013")
    say(db_url, "pm", 'poll "Lunch?" "Pizza" "Sushi" anonymous')
    for n in range(7):  # five are counted at once; the two after them wait, sealed
        say(db_url, f"v{n}", f"vote P-1 {n % 2 + 1} | why {n}")
        if n == 4:
            say(db_url, "pm", "results P-1")
    before = snapshot(db_url)
    assert len(before["pending_ballots"]) == 2 and len(before["members"]) == 8
    sealed = [bytes(s) for (s,) in run(db_url, "SELECT sealed FROM pending_ballots")]
    if database:
        assert without_rowid(db_url) == {"members": False, "pending_ballots": False}

    upgrade(db_url)
    assert current(db_url) == "0014"
    assert snapshot(db_url) == before
    if database:
        assert without_rowid(db_url) == {"members": True, "pending_ballots": True}
        assert copies_in_file(Path(database), sealed) == [1, 1]  # the old table's are zeroed

    downgrade(db_url, "0013")
    assert snapshot(db_url) == before
    if database:
        assert without_rowid(db_url) == {"members": False, "pending_ballots": False}
        assert copies_in_file(Path(database), sealed) == [1, 1]
    upgrade(db_url)

    # The two that waited are counted with three more; the voters of before are recognised.
    assert say(db_url, "v6", "vote P-1 2").startswith("Changed your vote on P-1")
    for n in range(7, 10):
        say(db_url, f"v{n}", "vote P-1 1")
    say(db_url, "pm", "results P-1")
    assert run(db_url, "SELECT count(*) FROM ballots") == [(10,)]
    assert run(db_url, "SELECT count(*) FROM pending_ballots") == [(0,)]
    assert run(db_url, "SELECT count(*) FROM members") == [(11,)]
