"""One roster cache for every platform: who is in a channel, kept in the database.

The engine reads the `rosters` table inside its own transaction (`storage/rosters.py`), never the
network, and every process shares that table — so eligibility, reminders and frozen results are
the same whichever replica computes them. The async side `refresh`es a channel's row through the
platform's `fetch` when it is older than `ttl` by the app's clock: one fetch in flight per channel
in a process, however many clicks arrive, and none at all while the row is fresh (a fresh row seen
once is remembered in memory, so a burst of commands costs no extra reads). Adapters call `ready`
before a command: a stale roster is refreshed in the background and no command waits for it (it
runs on the stored roster; the next one sees the new list) — only a channel never listed at all
waits for its first list, since its first command may open a poll that counts who could vote. A
failed or empty fetch is stored as "unknown" (NULL) with its time, so a platform that keeps
refusing is not asked on every message, and the engine falls back to the people it has seen in
the channel.
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
        # Channels known to have a stored roster (however old), and, while a first refresh in
        # this process is reading that, the answer to come.
        self._listed: set[tuple[str, str]] = set()
        self._looked: dict[tuple[str, str], asyncio.Future[bool]] = {}

    def members(self, workspace: str, channel: str) -> list[str] | None:
        """The stored members (what the engine reads), for operators and tests."""
        with self.db.uow() as session:
            return rosters.members(session, workspace, channel)

    async def refresh(self, workspace: str, channel: str, fetch: Fetch) -> None:
        """Make sure the stored roster is at most `ttl` old; concurrent callers share one fetch."""
        task = self.refresh_soon(workspace, channel, fetch)
        if task is not None:
            await asyncio.shield(task)

    def refresh_soon(self, workspace: str, channel: str, fetch: Fetch) -> asyncio.Task[None] | None:
        """Start bringing the stored roster up to date unless it is fresh (in memory) or a fetch
        is under way, and return at once: the running fetch, or None."""
        key = (workspace, channel)
        until = self._fresh_until.get(key)
        if until is not None and self.clock.now() < until:
            return None
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(key, fetch))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task

    async def ready(self, workspace: str, channel: str, fetch: Fetch) -> None:
        """Before a command: start a refresh if the roster is stale, and do not wait for it —
        the command runs on the stored roster. Only a channel never listed at all (its first
        command, which may open a poll that counts who could vote) waits for the first list."""
        key = (workspace, channel)
        task = self.refresh_soon(workspace, channel, fetch)
        if task is None or key in self._listed:
            return
        looked = self._looked.get(key)
        if looked is not None and await asyncio.shield(looked):
            return  # stored before: the stale roster does for now
        await asyncio.shield(task)

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    async def idle(self) -> None:
        """Wait until no fetch is running (tests, shutdown)."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def _refresh(self, key: tuple[str, str], fetch: Fetch) -> None:
        looked: asyncio.Future[bool] | None = None
        if key not in self._listed:
            looked = self._looked[key] = asyncio.get_running_loop().create_future()
        try:
            await self._refresh_now(key, fetch, looked)
        except Exception as exc:  # the database: the next command in the channel tries again
            log.warning("roster of %s not refreshed: %s", key[1], exc)
        finally:
            if looked is not None:
                if not looked.done():
                    looked.set_result(False)
                self._looked.pop(key, None)

    async def _refresh_now(
        self, key: tuple[str, str], fetch: Fetch, looked: asyncio.Future[bool] | None
    ) -> None:
        stored = await asyncio.to_thread(self._fetched_at, key)
        if stored is not None:
            self._listed.add(key)
        if looked is not None:
            looked.set_result(stored is not None)
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
        self._listed.add(key)
        self._fresh_until[key] = now + self.ttl

    def _fetched_at(self, key: tuple[str, str]) -> datetime | None:
        with self.db.uow() as session:
            return rosters.fetched_at(session, *key)

    def _store(self, key: tuple[str, str], members: list[str] | None, now: datetime) -> None:
        with self.db.uow() as session:
            rosters.store(session, *key, members, now=now)


__all__ = ["ROSTER_TTL", "Fetch", "RosterCache"]
