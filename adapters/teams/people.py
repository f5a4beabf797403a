"""Who is in a Teams conversation: the engine's `Directory` port, fed by the connector's
paged members API.

The engine asks `members(workspace, channel)` from a worker thread, inside a database
transaction. Calling the connector there would hold that transaction (on SQLite, the write lock)
across a network round trip, and the worker has no turn context to authenticate with. So the
async side refreshes a conversation's roster on the turns that reach it — at most once per
`ttl` (10 minutes by the app's clock), one fetch in flight per conversation — and the sync side
only reads the cache. A conversation never fetched (after a restart, before its first message)
answers None and the engine falls back to the people it has seen there; an empty or failed fetch
answers None too, rather than claiming that nobody may vote.

The roster also gives display names (kept in the `profiles` table, so proactive messages can show
them) and the `29:` id → AAD object id map that mention entities need.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta

from botframework.connector.aio import ConnectorClient

from adapters.bootstrap import App
from adapters.teams import refs
from bot.context import Directory

log = logging.getLogger("align.teams.people")

ROSTER_TTL = timedelta(minutes=10)
PAGE_SIZE = 500
MAX_PAGES = 20  # 10,000 members: past that, "who has not voted" is not a useful list


class TeamsDirectory:
    """Rosters of Teams conversations by AAD object id; other workspaces go to `fallback`."""

    def __init__(self, app: App, *, fallback: Directory | None = None) -> None:
        self.app = app
        self.fallback = fallback
        self.ttl = ROSTER_TTL
        self._lock = threading.Lock()
        self._rosters: dict[tuple[str, str], tuple[datetime, list[str]]] = {}
        self._aad: dict[str, str] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}

    # -- the engine's side (sync, any thread) ------------------------------------------------

    def members(self, workspace: str, channel: str) -> list[str] | None:
        if not workspace.startswith("teams:"):
            return self.fallback.members(workspace, channel) if self.fallback else None
        with self._lock:
            cached = self._rosters.get((workspace, channel))
        return list(cached[1]) if cached and cached[1] else None

    def aad_of(self, teams_id: str) -> str | None:
        """The AAD object id of a `29:` id seen in a roster."""
        with self._lock:
            return self._aad.get(teams_id)

    # -- the async side ------------------------------------------------------------------------

    def fresh(self, workspace: str, channel: str) -> bool:
        with self._lock:
            cached = self._rosters.get((workspace, channel))
        return cached is not None and self.app.clock.now() - cached[0] < self.ttl

    async def refresh(self, client: ConnectorClient, *, workspace: str, channel: str) -> None:
        """Fetch the roster unless it is fresh; concurrent callers share one fetch."""
        key = (workspace, channel)
        if self.fresh(workspace, channel):
            return
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(client, workspace, channel))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        await asyncio.shield(task)

    async def _fetch(self, client: ConnectorClient, workspace: str, channel: str) -> None:
        now = self.app.clock.now()
        members: list[str] = []
        names: dict[str, str] = {}
        aad: dict[str, str] = {}
        token: str | None = None
        try:
            for _ in range(MAX_PAGES):
                page = await client.conversations.get_conversation_paged_members(
                    channel, page_size=PAGE_SIZE, continuation_token=token
                )
                for account in page.members or []:
                    if not account.aad_object_id:
                        continue  # bots and guests without an AAD id cannot vote by that id
                    members.append(account.aad_object_id)
                    if account.id:
                        aad[account.id] = account.aad_object_id
                    if account.name:
                        names[account.aad_object_id] = account.name
                token = page.continuation_token
                if not token:
                    break
        except Exception as exc:  # a roster is a nicety: the command still runs without it
            log.warning("teams roster of %s unavailable: %s", channel, exc)
            with self._lock:  # do not ask again on every message while it keeps failing
                self._rosters[(workspace, channel)] = (now, [])
            return
        with self._lock:
            self._rosters[(workspace, channel)] = (now, sorted(set(members)))
            self._aad.update(aad)
        await asyncio.to_thread(
            refs.save_names, self.app.db, workspace=workspace, names=names, now=now
        )

    def learn(self, teams_id: str | None, aad_id: str | None) -> None:
        """Remember a `29:` id → AAD id pair seen on an activity."""
        if teams_id and aad_id:
            with self._lock:
                self._aad[teams_id] = aad_id
