"""A list's base query paged on the raw cursor (`paging.Listing`, for `decisions` with no
filter) gives the page `page_query` gives through SQLAlchemy — the same rows, converted the
same way, the same total — and `decisions` sends it there, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from bot.decisions import _CHANNEL_DECISIONS, _CHANNEL_LISTING
from bot.paging import PAGE_SIZE, page_query
from bot.parser import parse
from tests.conftest import Chat


def test_a_listing_pages_as_page_query_does(chat: Chat) -> None:
    for n in range(1, PAGE_SIZE + 4):
        chat.ok(f"decide Choice {n} owner:@ana review:2027-01-0{1 + n % 9} tag:t{n % 3}")
    chat.ok("decide Elsewhere", channel="other")
    scope = {"scope_workspace": chat.workspace, "scope_channel": chat.channel}
    db = chat.app.db
    for line in ("decisions", "decisions page:2"):
        cmd = parse(line)
        with db.reading(), db.uow() as session:
            expected = page_query(session, _CHANNEL_DECISIONS, scope, cmd, entities=False)
            listed = _CHANNEL_LISTING.page(session, scope, cmd)
        assert (listed.number, listed.total, listed.size) == (
            expected.number,
            expected.total,
            expected.size,
        )
        assert [tuple(row) for row in listed.rows] == [tuple(row) for row in expected.rows]
        assert [row._asdict() for row in listed.rows] == [
            dict(row._mapping) for row in expected.rows
        ]
        assert listed.rows and listed.rows[0].created_at.tzinfo is not None
    past = chat.fails("decisions page:3")
    assert past.error == f"There are 2 pages ({PAGE_SIZE + 3} in all); page:3 is past the end."


def test_decisions_with_no_filter_reads_its_page_on_the_raw_cursor(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    chat.ok("decide Ship it")
    chat.app.db.engine.echo = True  # SQLAlchemy logs each statement it sends
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            assert chat.ok("decisions").data["decisions"][0]["title"] == "Ship it"
            sent = [r.getMessage() for r in caplog.records]
            assert not any("page_total" in line for line in sent)
            caplog.clear()
            assert chat.ok("decisions Ship").data["page"]["total"] == 1  # a filter: SQLAlchemy
            assert any("page_total" in r.getMessage() for r in caplog.records)
    finally:
        chat.app.db.engine.echo = False
