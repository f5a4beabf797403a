"""Who people are on Slack: profiles (admin, time zone) and how to list a channel's members.

Profiles come from `users.info` and are kept in the `profiles` table for an hour, so a burst of
clicks costs one lookup per person, and a restart does not re-ask Slack for everyone. The table's
reads and writes of a burst (a thousand new people clicking one poll) share transactions
(`GroupCommit`): one each cost a turn on SQLite's write lock, twice per person. Channel
members are listed by `roster_fetch` for the shared roster cache (`adapters/roster.py`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import priority
from adapters.bootstrap import App
from adapters.roster import Fetch
from adapters.slack.workers import Workers
from storage import profiles
from storage.db import UnitOfWork, transient
from storage.group_commit import GroupCommit

log = logging.getLogger("align.slack.people")

PROFILE_TTL = timedelta(hours=1)
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
        self._grouped = GroupCommit(
            app.db,
            name="align-profiles",
            urgent=False,
            # A group's upserts come in the order people came: two processes' groups with the
            # same people in another order deadlock on PostgreSQL (two workers, or a web process
            # running reads beside its worker: bench_slack once). A read and an upsert run again
            # as they are: each alone, then.
            again_alone=transient,
            thread_setup=priority.lower_this_thread,  # work after the ack: acks go first
        )

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
        stored = await asyncio.wrap_future(
            self._grouped.submit(partial(self._load, workspace=workspace, user=user))
        )
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
        store = partial(
            self._store, workspace=workspace, user=user, name=name, person=person, now=now
        )
        await asyncio.wrap_future(self._grouped.submit(store))
        self._memory[(workspace, user)] = (person, now)
        return person

    @staticmethod
    def _load(session: UnitOfWork, *, workspace: str, user: str) -> tuple[Person, datetime] | None:
        found = profiles.person(session, workspace, user)
        if found is None:
            return None
        return Person(is_admin=found.is_admin, tz=found.tz), found.fetched_at

    @staticmethod
    def _store(
        session: UnitOfWork,
        *,
        workspace: str,
        user: str,
        name: str | None,
        person: Person,
        now: datetime,
    ) -> None:
        profiles.save_person(
            session, workspace, user, name=name, tz=person.tz, is_admin=person.is_admin, now=now
        )


def roster_fetch(client: AsyncWebClient, channel: str, *, bot_user: str | None) -> Fetch:
    """The Slack `Fetch` of `adapters/roster.py`: conversations.members, page by page, without
    the bot itself. Not in the channel, a DM we cannot list, a missing scope: None (then the
    engine counts the people it has seen there)."""

    async def fetch() -> list[str] | None:
        members: list[str] = []
        cursor: str | None = None
        try:
            for _ in range(ROSTER_PAGES):
                response = await client.conversations_members(
                    channel=channel, limit=200, cursor=cursor or None
                )
                members += [m for m in response.get("members") or [] if m != bot_user]
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:
            log.info("conversations.members %s: %s", channel, exc.response.get("error"))
            return None
        return members

    return fetch
