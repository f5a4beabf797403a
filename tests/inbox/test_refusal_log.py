"""A saturated process refuses requests by the hundred a second: the log says so in one line
per interval, with the count, instead of a line per request."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.inbox import REFUSALS_LOGGED_EVERY, Busy, Inbox
from bot.clock import FakeClock
from storage.db import Database


def test_refusals_are_logged_once_per_interval_with_their_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    db = Database(f"sqlite:///{tmp_path / 'align.db'}")
    inbox = Inbox(
        db,
        clock,
        secret=b"s" * 32,
        ack_budget=1.0,
        claim_timeout=timedelta(seconds=30),
        retention=timedelta(hours=1),
        max_backlog=0,  # full from the start: every request is refused
    )

    def refuse(n: int) -> None:
        for i in range(n):
            with pytest.raises(Busy):
                asyncio.run(inbox.record("slack", f"key-{clock.now()}-{i}", {}))

    with caplog.at_level(logging.WARNING, logger="align.inbox"):
        refuse(50)
        clock.advance(REFUSALS_LOGGED_EVERY - timedelta(seconds=1))
        refuse(30)
        clock.advance(timedelta(seconds=2))
        refuse(1)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    # The first refusal is logged at once; the next 79 wait for the interval to pass.
    assert [line.split(" request(s)")[0] for line in lines] == ["1", "80"], lines
    assert all("ALIGN_MAX_BACKLOG" in line for line in lines)
