"""Migration 0010 (running tallies) on a database that already has polls and ballots: each poll
gets the tally a recount of its ballots gives, votes after the upgrade move it from there, and
the downgrade gives back every poll, option and ballot (it drops only the derived tallies)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.context import Actor
from storage.migrate import current, downgrade, upgrade
from tests.conftest import opened
from tests.polls.recount import assert_tally_is_a_recount
from tests.storage.test_poll_features_migration import run

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLLS = {  # number: (mode, method, options, ballots)
    1: ("single", None, ["Pizza", "Sushi"], [[0], [1], [1]]),
    2: ("multi", None, ["A", "B", "C"], [[0, 2], [2]]),
    3: ("dots", None, ["X", "Y"], [[[0, 3], [1, 2]], [[1, 5]]]),
    4: ("ranked", "schulze", ["P", "Q", "R"], [[0, 1], [2, 0, 1], [1]]),
    5: ("ranked", "irv", ["P", "Q", "R"], [[0, 1], [2, 0, 1], [1], [1, 2], [1]]),
    6: ("ranked", "borda", ["P", "Q"], []),
}


def test_existing_polls_get_the_tally_their_ballots_give_and_keep_everything_down(
    db_url: str,
) -> None:
    upgrade(db_url, "0007")
    for number, (mode, method, options, ballots) in POLLS.items():
        run(
            db_url,
            "INSERT INTO polls (workspace, channel, number, question, kind, mode, budget, method, "
            "anonymous, public, results_hidden, options_open, created_by, created_at, "
            "updated_at) VALUES ('local', 'general', :number, 'Q?', 'poll', :mode, :budget, "
            ":method, false, false, false, false, 'pm', :at, :at)",
            number=number,
            mode=mode,
            budget=5 if mode == "dots" else None,
            method=method,
            at=AT,
        )
        (poll_id,) = run(db_url, "SELECT id FROM polls WHERE number = :n", n=number)[0]
        for position, text in enumerate(options, start=1):
            run(
                db_url,
                "INSERT INTO poll_options (poll_id, position, text) VALUES (:poll, :pos, :text)",
                poll=poll_id,
                pos=position,
                text=text,
            )
        for k, choice in enumerate(ballots):
            run(
                db_url,
                "INSERT INTO ballots (id, poll_id, voter_key, choice) "
                "VALUES (:id, :poll, :key, :choice)",
                id=f"b{number}{k}",
                poll=poll_id,
                key=f"v{k}",
                choice=json.dumps(choice),
            )
    run(db_url, "INSERT INTO counters (workspace, kind, last) VALUES ('local', 'P', 6)")

    upgrade(db_url)
    with opened(db_url) as app:
        for number, (*_, ballots) in POLLS.items():
            assert assert_tally_is_a_recount(app.db, "local", number) == len(ballots)
        pm = Actor("local", "general", "pm")
        assert app.engine.handle(pm, "results P-1").data["counts"] == {"Pizza": 1, "Sushi": 2}
        assert app.engine.handle(pm, "results P-5").data["winner"] == "Q"
        # Votes after the upgrade move the recounted tally: v0 changes, pm is new.
        assert app.engine.handle(Actor("local", "general", "v0"), "vote P-1 2").ok
        assert app.engine.handle(pm, "vote P-4 3 2").ok
        assert app.engine.handle(pm, "results P-1").data["counts"] == {"Pizza": 0, "Sushi": 3}
        for number in POLLS:
            assert_tally_is_a_recount(app.db, "local", number)

    downgrade(db_url, "0007")
    assert current(db_url) == "0007"
    assert len(run(db_url, "SELECT id FROM polls")) == 6
    assert len(run(db_url, "SELECT id FROM poll_options")) == 15
    assert len(run(db_url, "SELECT id FROM ballots")) == 16
    upgrade(db_url)  # and up again: recounted, the votes made at 0010 included
    with opened(db_url) as app:
        for number in POLLS:
            assert_tally_is_a_recount(app.db, "local", number)
