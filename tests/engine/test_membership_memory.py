"""The engine remembers recent members to skip writes, and forgets old entries so the memory of
a long-running server stays bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import engine as engine_module
from bot.clock import FakeClock
from tests.conftest import Chat


def test_old_membership_entries_are_dropped_once_the_map_is_full(
    chat: Chat, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SEEN_LIMIT", 3)
    for user in ("ana", "ben", "cy"):
        chat.ok("roadmap", user=user)
    assert len(chat.app.engine._seen_at) == 3
    clock.advance(engine_module.SEEN_EVERY + timedelta(minutes=1))
    chat.ok("roadmap", user="dee")
    assert set(chat.app.engine._seen_at) == {("local", "general", "dee")}
