"""Who people are on Slack: profiles (admin, time zone) and channel rosters.

Profiles come from `users.info` and are kept in the `profiles` table for an hour, so a burst of
clicks costs one lookup per person, and a restart does not re-ask Slack for everyone.

Rosters feed the engine's `Directory` port, which the engine calls from its worker threads inside
a transaction. Blocking there on an HTTP call would hold a database transaction (on SQLite, the
write lock) for a network round trip, and with OAuth the worker has no token to make it. So the
async side fills a cache before it hands a command to the engine (`refresh`, one call in flight
per channel however many clicks arrive), and the sync side only reads it; a channel never fetched
answers None and the engine falls back to the people it has seen there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.bootstrap import App
from adapters.slack.workers import Workers
from bot.context import Directory
from storage.db import dialect_insert
from storage.models import Profile

log = logging.getLogger("align.slack.people")

PROFILE_TTL = timedelta(hours=1)
ROSTER_TTL = 60.0  # seconds
ROSTER_PAGES = 25  # 25 x 200 = 5,000 members: beyond that, participation counts are moot


@dataclass(frozen=True)
class Person:
    is_admin: bool = False
    tz: str | None = None


class People:
    """users.info, cached in memory and in the `profiles` table (expiry by the app's clock)."""

    def __init__(self, app: App, workers: Workers) -> None:
        self.app = app
        self.workers = workers
        self._memory: dict[tuple[str, str], tuple[Person, datetime]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Person]] = {}

    async def person(self, client: AsyncWebClient, workspace: str, user: str) -> Person:
        key = (workspace, user)
        now = self.app.clock.now()
        cached = self._memory.get(key)
        if cached and now - cached[1] < PROFILE_TTL:
            return cached[0]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Person] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            person = await self._lookup(client, workspace, user, now)
            future.set_result(person)
            return person
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._inflight[key]

    async def _lookup(
        self, client: AsyncWebClient, workspace: str, user: str, now: datetime
    ) -> Person:
        stored = await self.workers.run(self._load, workspace, user)
        if stored and now - stored[1] < PROFILE_TTL:
            self._memory[(workspace, user)] = stored
            return stored[0]
        try:
            response = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info %s failed: %s", user, exc.response.get("error"))
            return stored[0] if stored else Person()
        info: dict[str, Any] = response.get("user") or {}
        person = Person(
            is_admin=bool(
                info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner")
            ),
            tz=info.get("tz") or None,
        )
        name = (info.get("profile") or {}).get("display_name") or info.get("name")
        await self.workers.run(self._store, workspace, user, name, person, now)
        self._memory[(workspace, user)] = (person, now)
        return person

    def _load(self, workspace: str, user: str) -> tuple[Person, datetime] | None:
        with self.app.db.uow() as session:
            row = session.get(Profile, (workspace, user))
            if row is None:
                return None
            return Person(is_admin=row.is_admin, tz=row.tz), row.fetched_at

    def _store(
        self, workspace: str, user: str, name: str | None, person: Person, now: datetime
    ) -> None:
        insert = dialect_insert(self.app.db.dialect)
        values = {
            "display_name": (name or "")[:200] or None,
            "tz": person.tz,
            "is_admin": person.is_admin,
            "fetched_at": now,
        }
        stmt = (
            insert(Profile)
            .values(workspace=workspace, user=user, **values)
            .on_conflict_do_update(index_elements=[Profile.workspace, Profile.user], set_=values)
        )
        with self.app.db.uow() as session:
            session.execute(stmt)


class SlackDirectory:
    """The engine's Directory for Slack workspaces: a roster cache the async side fills.

    Other workspaces (Teams, console) go to `fallback`, the directory that was there before.
    """

    def __init__(self, *, fallback: Directory | None = None, ttl: float = ROSTER_TTL) -> None:
        self.fallback = fallback
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rosters: dict[tuple[str, str], tuple[list[str] | None, float]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}

    def members(self, workspace: str, channel: str) -> list[str] | None:
        if not workspace.startswith("slack:"):
            return self.fallback.members(workspace, channel) if self.fallback else None
        with self._lock:
            found = self._rosters.get((workspace, channel))
        return list(found[0]) if found and found[0] is not None else None

    def fresh(self, workspace: str, channel: str) -> bool:
        with self._lock:
            found = self._rosters.get((workspace, channel))
        return found is not None and time.monotonic() - found[1] < self.ttl

    async def refresh(
        self, client: AsyncWebClient, workspace: str, channel: str, *, bot_user: str | None
    ) -> None:
        """Make sure the roster is at most `ttl` old; concurrent callers share one fetch."""
        key = (workspace, channel)
        if self.fresh(workspace, channel):
            return
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(client, key, bot_user))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        await asyncio.shield(task)

    async def _fetch(
        self, client: AsyncWebClient, key: tuple[str, str], bot_user: str | None
    ) -> None:
        members: list[str] | None = []
        cursor: str | None = None
        try:
            for _ in range(ROSTER_PAGES):
                response = await client.conversations_members(
                    channel=key[1], limit=200, cursor=cursor or None
                )
                assert members is not None
                members += [m for m in response.get("members") or [] if m != bot_user]
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:
            # Not in the channel, a DM we cannot list, a missing scope: count who we have seen.
            log.info("conversations.members %s: %s", key[1], exc.response.get("error"))
            members = None
        except Exception:
            log.exception("conversations.members %s failed", key[1])
            members = None
        with self._lock:
            self._rosters[key] = (members, time.monotonic())
