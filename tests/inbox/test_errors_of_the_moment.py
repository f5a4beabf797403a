"""A vote that meets an error of the moment on PostgreSQL (`storage.db.transient`: a deadlock,
a serialization failure, the connection lost) is run again at once, in a transaction of its own,
a few times (`storage.db.ATTEMPTS_NOW`), before its clicker is told anything went wrong: under
concurrency such errors are expected, and a vote acknowledged is a vote owed.

The error is PostgreSQL's own: a trigger on `ballots` refuses the first inserts with SQLSTATE
40001, as a serialization failure would (a sequence counts them: it is not rolled back with the
transaction that fails)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.clock import FakeClock
from storage.db import ATTEMPTS_NOW
from storage.models import Ballot, InboxEntry
from tests.conftest import count_rows
from tests.inbox.test_hand_off import (
    _lunch_poll_and_its_tacos_button,
    click_tacos,
    rows,
    tacos_button,
    web_and_worker,
    work,
)
from tests.slack.conftest import SlackServer, running_slack_server
from tests.teams.harness import BEN, actions_of, teams_server
from tests.teams.test_votes import open_poll, results

REFUSE = """
CREATE SEQUENCE refused_inserts;
CREATE FUNCTION refuse_first_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('refused_inserts') <= {times} THEN
        RAISE EXCEPTION 'could not serialize access (injected)' USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_first_inserts BEFORE INSERT ON ballots
    FOR EACH ROW EXECUTE FUNCTION refuse_first_inserts();
"""


CUT = """
CREATE SEQUENCE cut_inserts;
CREATE FUNCTION cut_first_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('cut_inserts') <= {times} THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cut_first_inserts BEFORE INSERT ON ballots
    FOR EACH ROW EXECUTE FUNCTION cut_first_inserts();
"""
"""The connection of the next inserts into `ballots` is lost mid-statement (its backend ends,
as in a restart or a failover): the vote's own statements run on the raw cursor."""


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the errors of the moment are PostgreSQL's (SQLite has one writer)")
    return db_url


@contextmanager
def ballots_refused(db_url: str, times: int, *, how: str = REFUSE) -> Iterator[None]:
    """The next `times` inserts into `ballots` fail with a serialization failure (or `how`)."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(how.format(times=times)))
        yield
    finally:
        engine.dispose()


def _open_poll(server: SlackServer) -> tuple[str, dict[str, Any]]:
    server.post_command('poll "Lunch?" "Tacos" "Pho"')
    server.settle()
    return tacos_button(server)


def _texts(server: SlackServer) -> list[str]:
    return [r.body.get("text", "") for r in server.fake.responses]


def _statuses(server: SlackServer) -> list[str]:
    return [status for status, _ in rows(server)]


@pytest.mark.parametrize("how", [REFUSE, CUT], ids=["serialization-failure", "connection-lost"])
def test_a_click_refused_until_its_last_attempt_is_counted_once(
    pg_url: str, clock: FakeClock, how: str
) -> None:
    """One process (`--role all`): the vote runs alone in a worker thread (`Inbox.once`). Its
    ballot insert runs on the raw cursor (`storage.db.Prepared`): a connection lost there is an
    error of the moment too, tried again on a connection of its own."""
    with running_slack_server(pg_url, clock) as server:
        message_ts, tacos = _open_poll(server)
        with ballots_refused(pg_url, ATTEMPTS_NOW - 1, how=how):
            click_tacos(server, message_ts, tacos, ["U0RETRY001"])
            server.settle()
        texts = _texts(server)
        assert not [t for t in texts if "went wrong" in t], texts
        assert sum("Recorded your vote on P-1" in t for t in texts) == 1, texts
        assert count_rows(server.app, Ballot) == 1
        assert _statuses(server) == ["done", "done"]


def test_a_click_refused_at_every_attempt_is_told_and_stores_nothing(
    pg_url: str, clock: FakeClock
) -> None:
    with running_slack_server(pg_url, clock) as server:
        message_ts, tacos = _open_poll(server)
        with ballots_refused(pg_url, ATTEMPTS_NOW):
            click_tacos(server, message_ts, tacos, ["U0RETRY002"])
            server.settle()
        texts = _texts(server)
        assert sum("Something went wrong on our side" in t for t in texts) == 1, texts
        assert not [t for t in texts if "Recorded your vote" in t], texts
        assert count_rows(server.app, Ballot) == 0


def test_a_handed_off_click_refused_in_its_group_and_again_alone_is_counted_once(
    pg_url: str, clock: FakeClock
) -> None:
    """A worker taking hand-offs runs votes in groups (`Inbox.runs_together`): the first refusal
    meets the vote in its group's savepoint, the next ones when it runs again alone."""
    with web_and_worker(pg_url, clock) as (web, worker):
        message_ts, tacos = _lunch_poll_and_its_tacos_button(web, worker)
        with ballots_refused(pg_url, ATTEMPTS_NOW):  # one in the group, the rest alone
            click_tacos(web, message_ts, tacos, ["U0RETRY003"])
            web.settle()
            assert work(worker) == 1
        texts = _texts(web)
        assert not [t for t in texts if "went wrong" in t], texts
        assert sum("Recorded your vote on P-1" in t for t in texts) == 1, texts
        assert count_rows(web.app, Ballot) == 1
        assert count_rows(web.app, InboxEntry) == 2
        assert _statuses(web) == ["done", "done"]


def test_a_teams_click_refused_until_its_last_attempt_is_counted_once(
    pg_url: str, clock: FakeClock
) -> None:
    """Teams goes through `Inbox.once` too: the card click's vote is counted and the card
    updated, with no error shown."""

    async def main() -> None:
        async with teams_server(pg_url, clock) as server:
            card_id, card = await open_poll(server, "poll “Lunch?” “Pizza” “Salad”")
            pizza = actions_of(card)[0]["data"]
            with ballots_refused(pg_url, ATTEMPTS_NOW - 1):
                await server.click(pizza, card_id=card_id, by=BEN)
            assert results(server)["counts"] == {"Pizza": 1, "Salad": 0}
            sent = [s.text or "" for s in server.connector.sent_of("reply")]
            assert not [t for t in sent if "went wrong" in t.lower()], sent
            assert len(server.connector.sent_of("update")) == 1

    asyncio.run(main())
