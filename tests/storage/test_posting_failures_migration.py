"""Migration 0013 (failed edits counted per live message) on a database already in use: every
live message is kept as it was, with no failure counted yet, and the downgrade gives every row of
every table back as it was before the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.bootstrap import build
from bot.clock import FakeClock
from bot.context import Actor
from storage.migrate import current, downgrade, upgrade
from tests.conftest import make_settings
from tests.storage.test_poll_features_migration import run
from tests.storage.test_secret_fingerprint_migration import say, snapshot

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
COLUMNS = (
    "id, object_kind, object_id, platform, conversation, message_id, changes, shown, "
    "next_update_at, held_by, held_until"
)


def test_live_messages_keep_every_row_up_and_down(db_url: str) -> None:
    upgrade(db_url, "0012")
    say(db_url, "pm", 'poll "Lunch?" "Pizza" "Sushi"')
    say(db_url, "ana", "vote P-1 1")
    (poll_id,) = run(db_url, "SELECT id FROM polls")[0]
    # One message up to date, one behind and waiting for its retry, one held by a worker.
    for n, (changes, shown, retry, held) in enumerate(
        [(1, 1, None, None), (3, 1, AT + timedelta(seconds=10), None), (2, 1, None, "w-1")]
    ):
        run(
            db_url,
            "INSERT INTO postings (object_kind, object_id, platform, conversation, message_id, "
            "created_at, changes, shown, next_update_at, held_by, held_until) VALUES ('poll', "
            f":poll, 'console', 'general', 'm{n}', :at, :changes, :shown, :retry, :held, :until)",
            poll=poll_id,
            at=AT,
            changes=changes,
            shown=shown,
            retry=retry,
            held=held,
            until=AT + timedelta(seconds=30) if held else None,
        )
    before = snapshot(db_url)
    kept = run(db_url, f"SELECT {COLUMNS} FROM postings ORDER BY id")
    assert len(kept) == 3

    upgrade(db_url, "0013")
    assert current(db_url) == "0013"
    assert run(db_url, f"SELECT {COLUMNS} FROM postings ORDER BY id") == kept
    assert run(db_url, "SELECT failures FROM postings") == [(0,), (0,), (0,)]
    others = {name: rows for name, rows in before.items() if name != "postings"}
    assert {name: rows for name, rows in snapshot(db_url).items() if name != "postings"} == others

    downgrade(db_url, "0012")
    assert snapshot(db_url) == before
    upgrade(db_url)

    # The messages behind are claimed (the held one's turn has run out); one edit fails and is
    # counted, the other goes out.
    app = build(make_settings(db_url), clock=FakeClock(AT + timedelta(minutes=1)), migrate=False)
    try:
        engine, viewer = app.engine, Actor("local", "general", "", platform="console")
        claim = engine.claim_posting_update(viewer, "P-1", worker="w-2", lease=timedelta(30))
        assert claim is not None
        assert [m.message_id for m in claim.messages] == ["m1", "m2"]  # m2's holder is gone
        retry = AT + timedelta(minutes=2)
        engine.finish_posting_update(
            claim,
            worker="w-2",
            next_update_at=retry,
            failed={m.id: retry for m in claim.messages if m.message_id == "m1"},
        )
        assert run(db_url, "SELECT message_id, failures FROM postings ORDER BY id") == [
            ("m0", 0),
            ("m1", 1),
            ("m2", 0),
        ]
    finally:
        app.db.dispose()
