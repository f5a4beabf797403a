"""A fake Bot Framework connector (REST API v3) served over real HTTP on 127.0.0.1.

Tests put ``FakeBotConnector.url`` into an incoming activity's ``serviceUrl``; botbuilder's
real ``ConnectorClient`` / ``TeamsInfo`` then talk HTTP to this fake, which records what the
bot sent and answers like the Teams connector does. Nothing reaches Microsoft.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

# The generic async/threaded server base lives with the Slack fake so both fakes share one
# implementation of lifecycle, thread-safe recording and waiting.
from .slack_api import FakeHttpServer

__all__ = ["WRITE_KINDS", "FakeBotConnector", "Sent"]

#: Kinds recorded in ``FakeBotConnector.sent`` (requests that change the conversation).
WRITE_KINDS = frozenset({"send", "reply", "update", "delete", "history", "create_conversation"})


@dataclass(frozen=True)
class Sent:
    """One connector request, with ids already URL-decoded.

    ``activity_id`` is the id in the URL (the activity replied to / updated / deleted);
    ``result_id`` is the id the fake answered with (new activity or conversation id).
    """

    kind: str
    conversation_id: str
    activity_id: str | None
    activity: dict[str, Any]
    result_id: str | None = None
    status: int = 200
    authorization: str | None = None
    method: str = "POST"
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    @property
    def text(self) -> str | None:
        """The activity's text, the most common thing to assert on."""
        value = self.activity.get("text")
        return value if isinstance(value, str) else None


def _matches(target: str, *keys: str) -> bool:
    return any(fnmatch.fnmatchcase(key, target) for key in keys)


def _error(code: str, message: str, status: int) -> web.Response:
    """Bot Framework ``ErrorResponse`` body, as msrest's HttpOperationError expects."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FakeBotConnector(FakeHttpServer):
    """Fake Bot Framework connector: records activities the bot sends and serves rosters.

    Configure ``members[conversation_id]`` (ChannelAccount dicts), ``teams[team_id]`` and
    ``team_channels[team_id]``; script failures with ``fail_next``.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.members: dict[str, list[dict[str, Any]]] = {}
        self.teams: dict[str, dict[str, Any]] = {}
        self.team_channels: dict[str, list[dict[str, Any]]] = {}
        self._sent: list[Sent] = []
        self._requests: list[Sent] = []
        self._failed: list[Sent] = []
        self._next_activity = 1_700_000_000_000
        self._created_conversations: dict[str, str] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._held: list[Sent] = []

    # -- public API ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``, to use as an activity's ``serviceUrl``."""
        return self.root_url

    @property
    def sent(self) -> list[Sent]:
        """Snapshot of answered write requests (send/reply/update/delete/...) in order."""
        with self._cond:
            return list(self._sent)

    @property
    def requests(self) -> list[Sent]:
        """Snapshot of every answered request, reads (member lookups) included."""
        with self._cond:
            return list(self._requests)

    @property
    def failed(self) -> list[Sent]:
        """Snapshot of attempts answered with an injected failure (``fail_next``)."""
        with self._cond:
            return list(self._failed)

    def sent_of(self, kind: str) -> list[Sent]:
        """Answered requests of one kind, e.g. ``"reply"`` or ``"get_members"``."""
        with self._cond:
            return [s for s in self._requests if s.kind == kind]

    def fail_next(
        self,
        target: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Fail the next ``times`` requests whose kind or decoded path matches ``target``.

        ``target`` is a kind (``"reply"``, ``"get_members"``, ...) or an fnmatch pattern on the
        decoded path (``"/v3/conversations/*/activities*"``). 429/503 carry ``Retry-After``.
        """
        self._add_failure(target, status, retry_after, times, error)

    def hold(self, target: str) -> None:
        """Keep requests matching ``target`` (a kind, or an fnmatch pattern on the decoded path,
        as for ``fail_next``) waiting, unanswered, until ``release(target)``: a connector slow to
        answer one turn, so a test can act while that turn is still running."""
        self._holds.setdefault(target, asyncio.Event())

    def release(self, target: str) -> None:
        """Answer the held requests of ``target`` (and any later ones at once)."""
        event = self._holds.pop(target, None)
        if event is not None:
            event.set()

    async def wait_held(self, target: str, count: int = 1, timeout: float = 5.0) -> list[Sent]:
        """Await until ``count`` requests matching ``target`` arrived and are being held."""

        def probe() -> list[Sent] | None:
            found = [s for s in self._held if _matches(target, s.kind, s.path)]
            return found if len(found) >= count else None

        return await self._wait_async(
            probe, timeout, self._describe(f"held {target}", count, timeout)
        )

    def summary(self) -> str:
        """Human-readable list of recorded kinds, for assertion messages."""
        with self._cond:
            ok = [s.kind for s in self._requests]
            failed = [f"{s.kind}({s.status})" for s in self._failed]
        return f"requests={ok} failed={failed}"

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[Sent]:
        """Await until ``count`` requests of ``kind`` were answered; return all of them."""
        return await self._wait_async(
            self._probe(kind, count), timeout, self._describe(kind, count, timeout)
        )

    def wait_for_sync(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[Sent]:
        """Blocking ``wait_for`` for sync tests (server running via ``running()``)."""
        return self._wait_sync(
            self._probe(kind, count), timeout, self._describe(kind, count, timeout)
        )

    def reset(self) -> None:
        """Forget recordings, pending failures and per-test config; keep serving."""
        with self._cond:
            self._sent.clear()
            self._requests.clear()
            self._failed.clear()
            self._failures.clear()
            self._created_conversations.clear()
            self.members.clear()
            self.teams.clear()
            self.team_channels.clear()

    # -- waiting helpers -------------------------------------------------------------------

    def _probe(self, kind: str, count: int) -> Callable[[], list[Sent] | None]:
        def probe() -> list[Sent] | None:
            found = [s for s in self._requests if s.kind == kind]
            return found if len(found) >= count else None

        return probe

    def _describe(self, kind: str, count: int, timeout: float) -> Callable[[], str]:
        def describe() -> str:
            return f"timed out after {timeout}s waiting for {count} x {kind}; {self.summary()}"

        return describe

    # -- HTTP ------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024**2)
        base = "/v3/conversations"
        members = self._members
        routes = [
            ("POST", base, "create_conversation", self._create_conversation),
            ("POST", base + "/{cid}/activities", "send", self._send),
            ("POST", base + "/{cid}/activities/history", "history", self._history),
            ("POST", base + "/{cid}/activities/{aid}", "reply", self._send),
            ("PUT", base + "/{cid}/activities/{aid}", "update", self._update),
            ("DELETE", base + "/{cid}/activities/{aid}", "delete", self._delete),
            ("GET", base + "/{cid}/activities/{aid}/members", "get_activity_members", members),
            ("GET", base + "/{cid}/members", "get_members", members),
            ("GET", base + "/{cid}/members/{mid}", "get_member", self._member),
            ("GET", base + "/{cid}/pagedmembers", "get_paged_members", self._paged_members),
            ("GET", "/v3/teams/{tid}/conversations", "get_team_channels", self._team_channels),
            ("GET", "/v3/teams/{tid}", "get_team", self._team),
        ]
        for method, path, kind, handler in routes:
            app.router.add_route(method, path, self._endpoint(kind, handler))
        app.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._unknown))
        return app

    def _endpoint(
        self, kind: str, handler: Callable[[web.Request, Sent], Any]
    ) -> Callable[[web.Request], Any]:
        """Wrap a handler with body parsing, failure injection and recording."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            body: dict[str, Any] = {}
            if request.body_exists:
                try:
                    parsed = await request.json()
                except ValueError:
                    return _error("BadSyntax", "Request body is not valid JSON", 400)
                if isinstance(parsed, dict):
                    body = parsed
            record = Sent(
                kind=kind,
                conversation_id=request.match_info.get("cid", request.match_info.get("tid", "")),
                activity_id=request.match_info.get("aid"),
                activity=body,
                authorization=request.headers.get("Authorization"),
                method=request.method,
                path=request.path,
                query=dict(request.query),
                at=time.time(),
            )
            failure = self._take_failure(kind, request.path)
            if failure is not None:
                failed = replace(record, status=failure.status)
                self._record(lambda: self._failed.append(failed))
                code = "TooManyRequests" if failure.status == 429 else "ServiceError"
                return web.json_response(
                    {"error": {"code": failure.error or code, "message": "injected failure"}},
                    status=failure.status,
                    headers=failure.headers(),
                )
            gates = [e for t, e in self._holds.items() if _matches(t, kind, request.path)]
            if gates:
                self._record(lambda: self._held.append(record))
                for gate in gates:
                    await gate.wait()
            response, result_id = await handler(request, record)
            done = replace(record, status=response.status, result_id=result_id)

            def store() -> None:
                self._requests.append(done)
                if kind in WRITE_KINDS:
                    self._sent.append(done)

            self._record(store)
            return response

        return endpoint

    def _new_activity_id(self) -> str:
        with self._cond:
            self._next_activity += 1
            return str(self._next_activity)

    def _roster(self, conversation_id: str) -> list[dict[str, Any]]:
        """Members of a conversation; a channel thread id falls back to its channel's list."""
        if conversation_id in self.members:
            return list(self.members[conversation_id])
        channel_id = conversation_id.split(";messageid=", 1)[0]
        return list(self.members.get(channel_id, []))

    # -- handlers: each returns (response, result_id) --------------------------------------

    async def _send(self, request: web.Request, record: Sent) -> tuple[web.Response, str]:
        new_id = self._new_activity_id()
        return web.json_response({"id": new_id}, status=201), new_id

    async def _history(self, request: web.Request, record: Sent) -> tuple[web.Response, str]:
        new_id = self._new_activity_id()
        return web.json_response({"id": new_id}, status=201), new_id

    async def _update(self, request: web.Request, record: Sent) -> tuple[web.Response, str]:
        activity_id = record.activity_id or ""
        return web.json_response({"id": activity_id}), activity_id

    async def _delete(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        return web.Response(status=200), None

    async def _create_conversation(
        self, request: web.Request, record: Sent
    ) -> tuple[web.Response, str]:
        members = record.activity.get("members") or []
        key = ",".join(sorted(str(m.get("id", "")) for m in members if isinstance(m, dict)))
        with self._cond:
            conversation_id = self._created_conversations.get(key)
            if conversation_id is None or not key:
                conversation_id = f"a:new-conversation-{len(self._created_conversations) + 1}"
                self._created_conversations[key or conversation_id] = conversation_id
        activity_id = self._new_activity_id() if record.activity.get("activity") else None
        body = {"id": conversation_id, "activityId": activity_id, "serviceUrl": self.url}
        return web.json_response(body, status=201), conversation_id

    async def _members(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        return web.json_response(self._roster(record.conversation_id)), None

    async def _member(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        wanted = request.match_info["mid"]
        for member in self._roster(record.conversation_id):
            if wanted in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member), None
        message = "The specified member was not found in the conversation."
        return _error("MemberNotFoundInConversation", message, 404), None

    async def _paged_members(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        roster = self._roster(record.conversation_id)
        try:
            offset = int(request.query.get("continuationToken") or 0)
            size = int(request.query.get("pageSize") or 0) or len(roster) or 1
        except ValueError:
            return _error("BadArgument", "Invalid continuationToken or pageSize", 400), None
        page = roster[offset : offset + size]
        token = str(offset + size) if offset + size < len(roster) else None
        return web.json_response({"members": page, "continuationToken": token}), None

    async def _team(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        team_id = record.conversation_id
        details = {"id": team_id, "name": "Align Test Team", "aadGroupId": None}
        details.update(self.teams.get(team_id, {}))
        return web.json_response(details), None

    async def _team_channels(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        team_id = record.conversation_id
        channels = self.team_channels.get(team_id, [{"id": team_id, "name": None}])
        return web.json_response({"conversations": channels}), None

    async def _unknown(self, request: web.Request, record: Sent) -> tuple[web.Response, None]:
        message = f"{request.method} {request.path} is not implemented by the fake"
        return _error("NotFound", message, 404), None
