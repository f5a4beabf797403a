"""Migration 0011 (pending ballots): the upgrade keeps every ballot as it was; the downgrade
counts the ballots still waiting into `ballots` (the schema before has nowhere else for them),
with the key they were sealed under — and without it stops, losing nothing."""

from __future__ import annotations

import pytest

from adapters.bootstrap import build
from bot.context import Actor
from storage.migrate import current, downgrade, upgrade
from tests.conftest import make_settings
from tests.storage.test_migrations import head
from tests.storage.test_poll_features_migration import run


def _vote(url: str, *lines: tuple[str, str]) -> None:
    app = build(make_settings(url))
    try:
        for user, line in lines:
            reply = app.engine.handle(Actor("local", "general", user), line)
            assert reply.ok, reply.error
    finally:
        app.db.dispose()


def test_existing_ballots_stay_and_waiting_ones_are_counted_on_the_way_down(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(db_url)
    _vote(
        db_url,
        ("pm", 'poll "Named" "A" "B"'),
        ("ana", "vote P-1 1"),
        ("pm", 'poll "Secret" "A" "B" anonymous'),
        *[(f"v{n}", f"vote P-2 {n % 2 + 1} | why {n}") for n in range(7)],
        ("pm", "results P-2"),  # counts the first seven as one batch
        ("v0", "vote P-2 2"),  # a change waits…
        ("w1", "vote P-2 1"),  # …beside a new ballot
    )
    assert run(db_url, "SELECT count(*) FROM pending_ballots") == [(2,)]
    monkeypatch.delenv("ALIGN_SECRET", raising=False)
    with pytest.raises(RuntimeError, match="ALIGN_SECRET"):
        downgrade(db_url, "0007")
    assert current(db_url) == head()  # stopped; nothing lost
    assert run(db_url, "SELECT count(*) FROM pending_ballots") == [(2,)]

    monkeypatch.setenv("ALIGN_SECRET", "test-secret")
    downgrade(db_url, "0007")
    assert current(db_url) == "0007"
    choices = sorted(str(c) for (c,) in run(db_url, "SELECT choice FROM ballots WHERE poll_id = 2"))
    # Seven counted, v0's change applied, w1's ballot added: A for v2 v4 v6 w1, B for the rest.
    assert choices == ["[0]"] * 4 + ["[1]"] * 4
    reasons = sorted(
        r or "" for (r,) in run(db_url, "SELECT reason FROM ballots WHERE poll_id = 2")
    )
    assert reasons == ["", "", *[f"why {n}" for n in range(1, 7)]]
    assert run(db_url, "SELECT voter_key FROM ballots WHERE poll_id = 1") == [("ana",)]

    upgrade(db_url)  # and up again: the old code's ballots are read as counted ones
    app = build(make_settings(db_url))
    try:
        res = app.engine.handle(Actor("local", "general", "pm"), "close P-2")
        assert res.ok, res.error
        assert res.data["ballots"] == 8
    finally:
        app.db.dispose()
