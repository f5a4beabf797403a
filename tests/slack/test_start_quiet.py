"""A start logs what the operator needs and nothing else: Bolt, seeing SLACK_BOT_TOKEN in the
environment next to the client we hand it (which carries that same token), would warn on every
start that the token "will be unused"; that one message is dropped, Bolt's others are not."""

from __future__ import annotations

import logging

import pytest

from bot.clock import FakeClock
from tests.slack.conftest import BOT_TOKEN, running_slack_server


def test_no_token_will_be_unused_warning_at_start(
    migrated_sqlite_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # as `align serve` gets it in production
    with caplog.at_level(logging.DEBUG), running_slack_server(migrated_sqlite_url, clock) as server:
        assert server.post_command("help").status_code == 200
        server.settle()
    bolt = [r for r in caplog.records if r.name.startswith("slack_bolt")]
    assert not [r for r in bolt if "will be unused" in r.getMessage()]
    # The filter is that narrow: Bolt's own logger still speaks.
    with caplog.at_level(logging.WARNING):
        logging.getLogger("slack_bolt.AsyncApp").warning("something else Bolt has to say")
    assert "something else Bolt has to say" in caplog.text
