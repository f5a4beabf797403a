"""A poll's live message when something fails on the way: the database while a change is
counted. Driven as Slack drives Align (signed clicks, the fake Web API) on the FakeClock."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from adapters.postings import COUNT_RETRY
from bot.context import Actor
from storage.models import Posting
from tests.slack.conftest import SlackServer

BEN = "U0BEN00002"


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _text(call: Any) -> str:
    return json.dumps(call.args["blocks"], ensure_ascii=False)


def _database_away(statement: str) -> OperationalError:
    """What SQLAlchemy raises when the connection drops mid-statement."""
    return OperationalError(statement, {}, Exception("server closed the connection unexpectedly"))


def open_poll(server: SlackServer) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Post a poll; the ts of its message and its two buttons."""
    server.paced_by_the_clock()
    server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    posted = server.poll_message(1)
    date, scope = _buttons(posted.args["blocks"])
    return posted.result["ts"], date, scope


def click(server: SlackServer, button: dict[str, Any], ts: str, *, user: str) -> None:
    answered = len(server.fake.responses)
    response = server.post_action(
        action_id=button["action_id"], value=button["value"], message_ts=ts, user=user
    )
    assert response.status_code == 200
    server.fake.wait_for_responses_sync(answered + 1)
    server.settle()


def postings(server: SlackServer) -> list[tuple[int, int]]:
    """(changes, shown) of every live message."""
    with server.app.db.uow() as session:
        rows = session.execute(select(Posting.changes, Posting.shown)).all()
    return [(c, s) for c, s in rows]


def test_a_change_the_database_failed_to_count_is_counted_again_and_shown(
    slack_server_any_db: SlackServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The vote is stored, then counting it on the poll's message fails (the database drops the
    connection). Only this process knows the message is behind, so it must count it again —
    after a wait on the clock, not in a loop — and the message shows the vote with no later
    click to bring it along."""
    server = slack_server_any_db
    ts, date, _ = open_poll(server)
    engine = server.app.engine
    count = engine.posting_changed
    refused: list[str] = []

    def count_once_refused(actor: Actor, ref: str) -> int:
        if not refused:
            refused.append(ref)
            raise _database_away("UPDATE postings SET changes=(postings.changes + 1) ...")
        return count(actor, ref)

    monkeypatch.setattr(engine, "posting_changed", count_once_refused)
    caplog.set_level(logging.INFO, logger="align.postings")
    before = server.app.clock.now()

    click(server, date, ts, user=BEN)

    assert refused == ["P-1"]
    (update,) = server.fake.calls_to("chat.update")
    assert update.args["ts"] == ts
    assert "*1*  1. Date" in _text(update)
    assert server.app.clock.now() - before >= COUNT_RETRY  # waited for it, on the clock
    failures = [r for r in caplog.records if r.getMessage() == "refreshing P-1 failed"]
    assert len(failures) == 1  # logged once per failure
    assert postings(server) == [(1, 1)]


def test_a_click_whose_card_cannot_be_looked_up_still_updates_the_poll_message(
    slack_server_any_db: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A click from a card this process has not noted (another copy of the poll) is looked up
    first, to note it as a live message too. When that lookup fails, the change must still
    count on the live message already known."""
    server = slack_server_any_db
    ts, date, _ = open_poll(server)
    engine = server.app.engine
    look_up = engine.postings
    refused: list[str] = []

    def look_up_once_refused(actor: Actor, ref: str) -> list[tuple[str, str]]:
        if not refused:
            refused.append(ref)
            raise _database_away("SELECT postings.conversation, postings.message_id ...")
        return look_up(actor, ref)

    monkeypatch.setattr(engine, "postings", look_up_once_refused)
    click(server, date, "1700000000.000100", user=BEN)  # not the message Align posted

    assert refused == ["P-1"]
    (update,) = server.fake.calls_to("chat.update")
    assert update.args["ts"] == ts
    assert "*1*  1. Date" in _text(update)
