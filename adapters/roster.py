"""One roster cache for every platform: who is in a channel, kept in the database.

The engine reads the `rosters` table inside its own transaction (`storage/rosters.py`), never the
network, and every process shares that table — so eligibility, reminders and frozen results are
the same whichever replica computes them. The async side `refresh`es a channel's row through the
platform's `fetch` when it is older than `ttl` by the app's clock: one fetch in flight per channel
in a process, however many clicks arrive, and none at all while the row is fresh (a fresh row seen
once is remembered in memory, so a burst of commands costs no extra reads). A failed or empty
fetch is stored as "unknown" (NULL) with its time, so a platform that keeps refusing is not asked
on every message, and the engine falls back to the people it has seen in the channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from storage import rosters
from storage.db import Database

log = logging.getLogger("align.roster")

ROSTER_TTL = timedelta(minutes=5)

Fetch = Callable[[], Awaitable[list[str] | None]]
"""Lists a channel's members on its platform; None when the platform will not say."""


class RosterCache:
    def __init__(self, db: Database, clock: Clock, *, ttl: timedelta = ROSTER_TTL) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._fresh_until: dict[tuple[str, str], datetime] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}

    def members(self, workspace: str, channel: str) -> list[str] | None:
        """The stored members (what the engine reads), for operators and tests."""
        with self.db.uow() as session:
            return rosters.members(session, workspace, channel)

    async def refresh(self, workspace: str, channel: str, fetch: Fetch) -> None:
        """Make sure the stored roster is at most `ttl` old; concurrent callers share one fetch."""
        key = (workspace, channel)
        now = self.clock.now()
        until = self._fresh_until.get(key)
        if until is not None and now < until:
            return
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh(key, fetch))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        await asyncio.shield(task)

    async def _refresh(self, key: tuple[str, str], fetch: Fetch) -> None:
        stored = await asyncio.to_thread(self._fetched_at, key)
        now = self.clock.now()
        if stored is not None and timedelta(0) <= now - stored < self.ttl:
            self._fresh_until[key] = stored + self.ttl  # another process fetched it
            return
        try:
            found = await fetch()
        except Exception as exc:  # a roster is a nicety: the command still runs without it
            log.warning("roster of %s unavailable: %s", key[1], exc)
            found = None
        await asyncio.to_thread(self._store, key, found or None, now)
        self._fresh_until[key] = now + self.ttl

    def _fetched_at(self, key: tuple[str, str]) -> datetime | None:
        with self.db.uow() as session:
            return rosters.fetched_at(session, *key)

    def _store(self, key: tuple[str, str], members: list[str] | None, now: datetime) -> None:
        with self.db.uow() as session:
            rosters.store(session, *key, members, now=now)


__all__ = ["ROSTER_TTL", "Fetch", "RosterCache"]
