"""Migration 0012 (the ALIGN_SECRET fingerprint) on a database already in use: every row of every
table is the same after the upgrade and after the downgrade; the new table starts empty, and the
first process to start stores its secret's fingerprint — the voters of before still recognised."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from adapters.bootstrap import check_secret
from bot.context import Actor
from storage.db import normalize_url
from storage.migrate import current, downgrade, upgrade
from storage.secret_check import fingerprint
from tests.conftest import opened
from tests.storage.test_poll_features_migration import run

Snapshot = dict[str, list[str]]


def snapshot(url: str) -> Snapshot:
    """Every row of every table but Alembic's, as text, in a stable order."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            names = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
            return {
                name: sorted(
                    repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"'))
                )
                for name in names
            }
    finally:
        engine.dispose()


def say(url: str, user: str, line: str) -> str:
    with opened(url) as app:
        reply = app.engine.handle(Actor("local", "general", user), line)
        assert reply.ok, reply.error
        return reply.text


def test_an_existing_database_keeps_every_row_up_and_down(db_url: str) -> None:
    upgrade(db_url, "0011")
    say(db_url, "pm", "decide Ship the beta | owner:@ana tag:launch")
    say(db_url, "pm", 'poll "Lunch?" "Pizza" "Sushi" anonymous')
    for n in range(7):  # five or more are counted at once; the two after them wait, sealed
        say(db_url, f"v{n}", f"vote P-1 {n % 2 + 1} | why {n}")
        if n == 4:
            say(db_url, "pm", "results P-1")
    before = snapshot(db_url)
    assert len(before["ballots"]) == 5 and len(before["pending_ballots"]) == 2

    upgrade(db_url, "0012")
    assert current(db_url) == "0012"
    after = snapshot(db_url)
    assert after.pop("secret_fingerprints") == []
    assert after == before

    downgrade(db_url, "0011")
    assert snapshot(db_url) == before
    upgrade(db_url)

    # The first start stores the fingerprint; the counted and the waiting voters of before are
    # recognised (the secret they were keyed with is the one it stores).
    with opened(db_url) as app:
        check_secret(app)
    stored = run(db_url, "SELECT name, fingerprint FROM secret_fingerprints")
    assert stored == [("ALIGN_SECRET", fingerprint(b"test-secret"))]
    assert say(db_url, "v0", "vote P-1 2").startswith("Changed your vote on P-1")
    assert say(db_url, "v6", "vote P-1 2").startswith("Changed your vote on P-1")
