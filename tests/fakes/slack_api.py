"""A fake Slack Web API served over real HTTP on 127.0.0.1.

Tests point the bot's real slack_sdk ``AsyncWebClient`` at ``FakeSlackApi.url`` (its
``base_url``), so request encoding, auth headers and retry handling are exercised for real
while nothing ever reaches slack.com.

This module also holds ``FakeHttpServer``, the small base shared with the Bot Framework
connector fake: it runs an aiohttp app either in the caller's event loop (``await start()``)
or in a private background thread (``with Fake.running() as fake:``) and provides
thread-safe recording plus condition-based waiting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fnmatch
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = [
    "Call",
    "FakeHttpServer",
    "FakeSlackApi",
    "InjectedFailure",
    "ResponseUrlPost",
    "Upload",
    "sign_slack_request",
]

T = TypeVar("T")

_START_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------
# Shared server base
# --------------------------------------------------------------------------------------------


@dataclass
class InjectedFailure:
    """A scripted failure: the next ``remaining`` requests matching ``target`` get ``status``.

    ``target`` is matched with shell-style wildcards (``fnmatch``) against the keys the concrete
    fake offers (the Slack method name; the connector's kind or decoded path).
    """

    target: str
    status: int
    retry_after: int | None
    remaining: int
    error: str | None = None

    def matches(self, keys: tuple[str, ...]) -> bool:
        """Whether any of the request's keys matches this failure's target pattern."""
        return any(fnmatch.fnmatchcase(key, self.target) for key in keys)

    def headers(self) -> dict[str, str]:
        """``Retry-After`` only where real services send it (429 and 503)."""
        if self.retry_after is not None and self.status in (429, 503):
            return {"Retry-After": str(self.retry_after)}
        return {}


class FakeHttpServer:
    """Runs an aiohttp app on 127.0.0.1 with a free port, async or in a background thread.

    Subclasses implement ``_build_app`` and record under ``self._cond`` via ``_record``;
    waiting works from sync code (condition variable) and from async code (per-waiter
    ``asyncio.Event`` woken thread-safely), whichever loop the server runs on.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self._cond = threading.Condition(threading.RLock())
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._failures: list[InjectedFailure] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._answering: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>/`` of the running server."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return f"http://{self.host}:{self.port}/"

    @property
    def is_running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._runner is not None

    async def start(self) -> Self:
        """Bind a free port on the current event loop and start serving."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        app = self._build_app()
        app.middlewares.append(self._track_answers())
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self._loop = asyncio.get_running_loop()
        self.port = int(runner.addresses[0][1])
        return self

    def _track_answers(self) -> Middleware:
        """A middleware that keeps the tasks answering requests (the handler's, and its
        connection's) while they answer, for `stop()` to end what the runner leaves running."""

        @web.middleware
        async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
            tasks: set[asyncio.Task[Any]] = {request.task}
            if (current := asyncio.current_task()) is not None:
                tasks.add(current)
            self._answering |= tasks
            try:
                return await handler(request)
            finally:
                self._answering -= tasks

        return track

    async def stop(self) -> None:
        """Close the listening socket and open connections, and end the answers still running;
        safe to call twice.

        aiohttp's shutdown forgets a request whose client went away (the caller cancelled, as
        a worker that dies mid-send does) and lets its handler run on (`handler_cancellation`
        is off), so a `slow()` answer outlives the runner: the loop is then closed under it,
        and asyncio logs "Task was destroyed but it is pending!" whenever it is collected, in
        some later test. And the handlers the runner does cancel only finish on the loop's
        next turns. So what still answers is cancelled here and awaited."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        answering = [task for task in self._answering if not task.done()]
        for task in answering:
            task.cancel()
        if answering:
            await asyncio.wait(answering)
        self._answering.clear()
        self._loop = None
        self.port = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> Self:
        """Serve from a private thread with its own event loop (for sync tests)."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running in a thread")
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_forever()
            finally:
                loop.close()

        thread = threading.Thread(target=serve, name=f"{type(self).__name__}-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(_START_TIMEOUT)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_START_TIMEOUT)
            raise
        self._thread = thread
        return self

    def stop_thread(self) -> None:
        """Stop a server started with ``start_in_thread`` and join its thread."""
        thread, self._thread = self._thread, None
        loop = self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(_START_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_START_TIMEOUT)

    @classmethod
    @contextmanager
    def running(cls, **kwargs: Any) -> Iterator[Self]:
        """``with Fake.running(**ctor_kwargs) as fake:`` serve in a background thread."""
        server = cls(**kwargs)
        server.start_in_thread()
        try:
            yield server
        finally:
            server.stop_thread()

    # -- failure injection -----------------------------------------------------------------

    def _add_failure(
        self, target: str, status: int, retry_after: int | None, times: int, error: str | None
    ) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._cond:
            self._failures.append(InjectedFailure(target, status, retry_after, times, error))

    def _take_failure(self, *keys: str) -> InjectedFailure | None:
        """Consume one pending failure matching any of ``keys`` (first scripted wins)."""
        with self._cond:
            for failure in self._failures:
                if failure.matches(keys):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return replace(failure)
        return None

    @property
    def pending_failures(self) -> list[InjectedFailure]:
        """Failures scripted with ``fail_next`` that have not fired yet."""
        with self._cond:
            return [replace(f) for f in self._failures]

    # -- recording & waiting ---------------------------------------------------------------

    def _record(self, mutate: Callable[[], None]) -> None:
        """Apply ``mutate`` under the lock, then wake sync and async waiters."""
        with self._cond:
            mutate()
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the waiter's loop is already closed
                loop.call_soon_threadsafe(event.set)

    def _wait_sync(
        self, probe: Callable[[], T | None], timeout: float, describe: Callable[[], str]
    ) -> T:
        """Block until ``probe()`` returns non-None; TimeoutError with ``describe()`` if not."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not None and current is self._loop:
            raise RuntimeError(
                "the fake is served by this thread's event loop; use `await ...wait_for(...)`"
            )
        found: list[T] = []

        def ready() -> bool:
            result = probe()
            if result is None:
                return False
            found.append(result)
            return True

        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError(describe())
        return found[-1]

    async def _wait_async(
        self, probe: Callable[[], T | None], timeout: float, describe: Callable[[], str]
    ) -> T:
        """Await until ``probe()`` returns non-None without blocking the running loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = asyncio.Event()
            waiter = (loop, event)
            with self._cond:
                result = probe()
                if result is not None:
                    return result
                self._async_waiters.append(waiter)
            try:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(describe())
                # On timeout, probe once more; the next turn raises if still unmet.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                with self._cond:
                    self._async_waiters.remove(waiter)


# --------------------------------------------------------------------------------------------
# Slack
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Web API request as Slack would see it (query, form and JSON args merged)."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    status: int = 200
    http_verb: str = "POST"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    result: dict[str, Any] = field(default_factory=dict, repr=False)
    """What the fake answered (e.g. the `ts` chat.postMessage gave the message)."""

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """(client_id, client_secret) when sent as HTTP Basic auth, as ``oauth.v2.access`` is."""
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST the bot made to a ``response_url`` handed out by ``FakeSlackApi.response_url``."""

    name: str
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Upload:
    """One file shared with ``files_upload_v2``: the bytes POSTed to the ``upload_url`` that
    ``files.getUploadURLExternal`` handed out, and what ``files.completeUploadExternal`` said."""

    file_id: str
    filename: str
    content: bytes
    title: str | None
    channel_id: str | None
    initial_comment: str | None
    thread_ts: str | None = None

    @property
    def text(self) -> str:
        """The content as UTF-8 text (exports are text files)."""
        return self.content.decode("utf-8")


SlackResponder = Mapping[str, Any] | Callable[[Call], Mapping[str, Any]]

# Fields Slack accepts as JSON-encoded strings inside form/query bodies.
_JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "options"}
)
# Methods that authenticate with client credentials instead of a token.
_NO_TOKEN_METHODS = frozenset({"oauth.v2.access", "oauth.access", "oauth.v2.exchange", "api.test"})
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def _tz_offset(tz_name: str) -> int:
    """Current UTC offset in seconds, as Slack reports ``tz_offset`` for a user's zone."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    offset = datetime.now(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeSlackApi(FakeHttpServer):
    """Fake Slack Web API: records every call and answers like Slack for common methods.

    Configure per-test data through ``users``, ``channel_members``, ``channels`` and
    ``respond_with``; script failures with ``fail_next``.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0TEST0001",
        team_name: str = "Align Test",
        team_domain: str = "align-test",
        bot_user_id: str = "U0BOT00001",
        bot_id: str = "B0BOT00001",
        app_id: str = "A0APP00001",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.users: dict[str, dict[str, Any]] = {}
        self.channel_members: dict[str, list[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.responders: dict[str, SlackResponder] = {}
        self._calls: list[Call] = []
        self._failed_calls: list[Call] = []
        self._responses: list[ResponseUrlPost] = []
        # file_id -> (filename, length, bytes once POSTed to its upload_url)
        self._pending_files: dict[str, tuple[str, int, bytes | None]] = {}
        self._uploads: dict[str, Upload] = {}
        self._ts_micros = 1_700_000_000_000_000
        self._id_counter = 0
        self._holds: dict[str, threading.Event] = {}
        self._held: list[Call] = []
        self._delays: dict[str, float] = {}
        # channel -> messages posted there, oldest first (what conversations.history reads)
        self._history: dict[str, list[dict[str, Any]]] = {}

    # -- public API ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for slack_sdk's ``base_url``, e.g. ``http://127.0.0.1:54321/api/``."""
        return self.root_url + "api/"

    def response_url(self, name: str = "default") -> str:
        """A ``response_url`` on this fake to put into interaction/command payloads."""
        return f"{self.root_url}response/{name}"

    @property
    def calls(self) -> list[Call]:
        """Snapshot of answered calls in arrival order (injected failures excluded)."""
        with self._cond:
            return list(self._calls)

    @property
    def failed_calls(self) -> list[Call]:
        """Snapshot of attempts answered with an injected failure (``fail_next``)."""
        with self._cond:
            return list(self._failed_calls)

    @property
    def responses(self) -> list[ResponseUrlPost]:
        """Snapshot of POSTs to ``response_url``s."""
        with self._cond:
            return list(self._responses)

    @property
    def uploads(self) -> dict[str, Upload]:
        """Files completed with ``files.completeUploadExternal``, by file id, in arrival order."""
        with self._cond:
            return dict(self._uploads)

    def calls_to(self, method: str) -> list[Call]:
        """Answered calls of one Web API method, e.g. ``"chat.postMessage"``."""
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def respond_with(self, method: str, response: SlackResponder) -> None:
        """Override (or add) a method's answer: a body dict or ``fn(call) -> body``."""
        self.responders[method] = response

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (glob ok) with HTTP ``status``.

        429 sends ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``; 5xx sends
        ``internal_error``; ``status=200, error="channel_not_found"`` scripts an API error.
        """
        self._add_failure(method, status, retry_after, times, error)

    def hold(self, method: str) -> None:
        """Keep every call of ``method`` waiting, unanswered, until ``release(method)`` — a
        platform slow to answer, so a test can act while the bot's request is in flight."""
        with self._cond:
            self._holds.setdefault(method, threading.Event())

    def release(self, method: str) -> None:
        """Answer the held calls of ``method`` (and any later ones at once)."""
        with self._cond:
            event = self._holds.pop(method, None)
        if event is not None:
            event.set()

    def slow(self, method: str, seconds: float) -> None:
        """Answer every call of ``method`` only ``seconds`` after it arrived — a slow platform.
        The call takes effect on arrival (a posted message is in the channel's history at once,
        as on Slack, where the post exists before its answer reaches the client) and is
        recorded in ``calls`` when answered, with ``at`` its arrival. ``seconds=0`` ends it."""
        with self._cond:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def history(self, channel: str) -> list[dict[str, Any]]:
        """The messages posted to ``channel`` (chat.postMessage), oldest first, as Slack keeps
        them — including those whose answer never reached the poster."""
        with self._cond:
            return [dict(m) for m in self._history.get(channel, [])]

    def wait_posted_sync(
        self, channel: str, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Block until ``count`` messages are in ``channel``'s history; return them."""

        def probe() -> list[dict[str, Any]] | None:
            found = self._history.get(channel, [])
            return [dict(m) for m in found] if len(found) >= count else None

        return self._wait_sync(
            probe, timeout, self._describe(f"posts in {channel}", count, timeout)
        )

    def held_count(self, *methods: str) -> int:
        """How many calls of these methods were held so far (``response_url`` included)."""
        with self._cond:
            return sum(c.method in methods for c in self._held)

    def wait_held_sync(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` calls of ``method`` arrived and are being held."""

        def probe() -> list[Call] | None:
            found = [c for c in self._held if c.method == method]
            return found if len(found) >= count else None

        return self._wait_sync(probe, timeout, self._describe(f"held {method}", count, timeout))

    async def stop(self) -> None:
        """Answer anything still held, then stop serving."""
        for method in list(self._holds):
            self.release(method)
        await super().stop()

    def calls_summary(self) -> str:
        """Human-readable list of recorded methods, for assertion messages."""
        with self._cond:
            ok = [c.method for c in self._calls]
            failed = [f"{c.method}({c.status})" for c in self._failed_calls]
        return f"calls={ok} failed={failed}"

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Await until ``count`` calls of ``method`` were answered; return all of them."""
        return await self._wait_async(
            self._probe_calls(method, count), timeout, self._describe(method, count, timeout)
        )

    def wait_for_sync(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Blocking ``wait_for`` for sync tests (server running via ``running()``)."""
        return self._wait_sync(
            self._probe_calls(method, count), timeout, self._describe(method, count, timeout)
        )

    async def wait_for_responses(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[ResponseUrlPost]:
        """Await until ``count`` ``response_url`` POSTs arrived; return all of them."""
        return await self._wait_async(
            self._probe_responses(count), timeout, self._describe("response_url", count, timeout)
        )

    def wait_for_responses_sync(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[ResponseUrlPost]:
        """Blocking ``wait_for_responses``."""
        return self._wait_sync(
            self._probe_responses(count), timeout, self._describe("response_url", count, timeout)
        )

    def reset(self) -> None:
        """Forget recordings, pending failures and per-test config; keep serving."""
        with self._cond:
            self._calls.clear()
            self._failed_calls.clear()
            self._responses.clear()
            self._pending_files.clear()
            self._uploads.clear()
            self._failures.clear()
            self._history.clear()
            self._delays.clear()
            self.users.clear()
            self.channel_members.clear()
            self.channels.clear()
            self.responders.clear()

    # -- waiting helpers -------------------------------------------------------------------

    def _probe_calls(self, method: str, count: int) -> Callable[[], list[Call] | None]:
        def probe() -> list[Call] | None:
            found = [c for c in self._calls if c.method == method]
            return found if len(found) >= count else None

        return probe

    def _probe_responses(self, count: int) -> Callable[[], list[ResponseUrlPost] | None]:
        def probe() -> list[ResponseUrlPost] | None:
            return list(self._responses) if len(self._responses) >= count else None

        return probe

    def _describe(self, what: str, count: int, timeout: float) -> Callable[[], str]:
        def describe() -> str:
            return (
                f"timed out after {timeout}s waiting for {count} x {what}; "
                f"{self.calls_summary()} responses={len(self.responses)}"
            )

        return describe

    # -- HTTP ------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024**2)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{name:.*}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        return app

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        """Merge query, form/multipart and JSON bodies; returns (args, parse_error)."""
        args: dict[str, Any] = {}
        for key in request.query:
            values = request.query.getall(key)
            args[key] = values[0] if len(values) == 1 else values
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    return args, "invalid_json"
                if not isinstance(body, dict):
                    return args, "invalid_json"
                args.update(body)
                return args, None
            if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key in set(form.keys()):
                    values = [v if isinstance(v, str) else v.file.read() for v in form.getall(key)]
                    args[key] = values[0] if len(values) == 1 else values
        for key in _JSON_FIELDS & args.keys():
            args[key] = _maybe_json(args[key])
        return args, None

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, parse_error = await self._read_args(request)
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip() or None
        body_token = args.pop("token", None)
        if token is None and isinstance(body_token, str):
            token = body_token
        call = Call(
            method=method,
            args=args,
            token=token,
            at=time.time(),
            http_verb=request.method,
            headers=dict(request.headers),
        )

        with self._cond:
            held = self._holds.get(method)
        if held is not None:
            self._record(lambda: self._held.append(call))
            await asyncio.get_running_loop().run_in_executor(None, held.wait)

        failure = self._take_failure(method)
        if failure is not None:
            failed = replace(call, status=failure.status)
            self._record(lambda: self._failed_calls.append(failed))
            default_error = "ratelimited" if failure.status == 429 else "internal_error"
            if failure.status < 400:
                default_error = "fatal_error"
            return web.json_response(
                {"ok": False, "error": failure.error or default_error},
                status=failure.status,
                headers=failure.headers(),
            )

        if parse_error is not None:
            body: dict[str, Any] = {"ok": False, "error": parse_error}
        elif token is None and method not in _NO_TOKEN_METHODS:
            body = {"ok": False, "error": "not_authed"}
        else:
            body = self._answer(call)
        with self._cond:
            delay = self._delays.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)
        call.result.update(body)
        self._record(lambda: self._calls.append(call))
        return web.json_response(body)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with self._cond:  # hold("response_url"): Slack slow to take an answer
            held = self._holds.get("response_url")
        if held is not None:
            call = Call(
                method="response_url",
                args={"name": request.match_info["name"]},
                token=None,
                at=time.time(),
                headers=dict(request.headers),
            )
            self._record(lambda: self._held.append(call))
            await asyncio.get_running_loop().run_in_executor(None, held.wait)
        # fail_next("response_url"): Slack did not take the answer (it is not recorded).
        failure = self._take_failure("response_url")
        if failure is not None:
            return web.json_response(
                {"ok": False, "error": failure.error or "internal_error"},
                status=failure.status,
                headers=failure.headers(),
            )
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        post = ResponseUrlPost(
            name=request.match_info["name"],
            body=payload,
            at=time.time(),
            headers=dict(request.headers),
        )
        self._record(lambda: self._responses.append(post))
        return web.json_response({"ok": True})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """Step 2 of files_upload_v2: the raw bytes POSTed to the upload_url (no token; the URL
        is the credential). ``fail_next("upload", status=500)`` scripts a failed upload."""
        file_id = request.match_info["file_id"]
        raw = await request.read()
        failure = self._take_failure("upload")
        if failure is not None:
            failed = Call(
                method="upload",
                args={"file_id": file_id, "length": len(raw)},
                token=None,
                at=time.time(),
                status=failure.status,
                headers=dict(request.headers),
            )
            self._record(lambda: self._failed_calls.append(failed))
            return web.Response(status=failure.status, text=failure.error or "upload failed")
        with self._cond:
            pending = self._pending_files.get(file_id)
        if pending is None:
            return web.Response(status=404, text="unknown upload url")
        filename, length, _ = pending
        self._record(lambda: self._pending_files.__setitem__(file_id, (filename, length, raw)))
        return web.Response(text=f"OK - {len(raw)}")

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, call: Call) -> dict[str, Any]:
        responder = self.responders.get(call.method)
        if responder is not None:
            answer = responder(call) if callable(responder) else responder
            return {"ok": True, **dict(answer)}
        handler = self._handlers().get(call.method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": call.method}
        return handler(call.args)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "oauth.v2.access": self._oauth_v2_access,
            "team.info": self._team_info,
            "apps.uninstall": lambda args: {"ok": True},
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    def _next_ts(self) -> str:
        """Slack's ts: when the message was posted (epoch seconds, microseconds), unique."""
        with self._cond:
            self._ts_micros = max(self._ts_micros + 100, time.time_ns() // 1000)
            value = self._ts_micros
        return f"{value // 1_000_000}.{value % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        with self._cond:
            self._id_counter += 1
            return f"{prefix}0FAKE{self._id_counter:05d}"

    @staticmethod
    def _dm_channel(user_id: str) -> str:
        return "D" + user_id[1:]

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "align",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text", ""),
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(key) is not None:
                message[key] = args[key]
        return message

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(args.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        channel = str(channel)
        if _USER_ID.match(channel):  # posting to a user id lands in the bot's DM with them
            channel = self._dm_channel(channel)
        ts = self._next_ts()
        message = self._message(args, ts)
        self._record(lambda: self._history.setdefault(channel, []).append(message))
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, ``limit`` a page with a cursor; metadata only when asked for
        (``include_all_metadata``), as Slack does."""
        channel = str(args.get("channel", ""))
        if not _CHANNEL_ID.match(channel):
            return {"ok": False, "error": "channel_not_found"}
        with self._cond:
            messages = list(reversed(self._history.get(channel, [])))
        limit = int(args.get("limit") or 100) or 100
        offset = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                offset = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
            except (ValueError, binascii.Error):
                return {"ok": False, "error": "invalid_cursor"}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        page = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in messages[offset : offset + limit]
        ]
        more = offset + limit < len(messages)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": args.get("text", ""),
            "message": self._message(args, str(ts)),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _view(self, view: dict[str, Any], view_id: str, root_id: str | None) -> dict[str, Any]:
        return {
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{hashlib.sha1(view_id.encode()).hexdigest()[:8]}",
            "root_view_id": root_id or view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": self._view(view, self._next_id("V"), None)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("user_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": self._view({"type": "home", **view}, self._next_id("V"), None)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict) or not (args.get("view_id") or args.get("external_id")):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = str(args.get("view_id") or self._next_id("V"))
        if args.get("external_id"):
            view = {**view, "external_id": args["external_id"]}
        return {"ok": True, "view": self._view(view, view_id, None)}

    def _user(self, user_id: str) -> dict[str, Any]:
        """Default profile for any well-formed id, overlaid with ``self.users[user_id]``."""
        configured = dict(self.users.get(user_id, {}))
        name = str(configured.get("name", user_id.lower()))
        real_name = str(configured.get("real_name", f"User {user_id}"))
        tz = str(configured.get("tz", "Europe/Berlin"))
        profile = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "email": f"{name}@example.com",
            "team": self.team_id,
            **dict(configured.pop("profile", {})),
        }
        is_bot = user_id == self.bot_user_id
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": _tz_offset(tz),
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            **configured,
            "profile": profile,
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user", ""))
        if user_id not in self.users and not _USER_ID.match(user_id):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user(user_id)}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self.channel_members and not _CHANNEL_ID.match(channel):
            return {"ok": False, "error": "channel_not_found"}
        members = list(self.channel_members.get(channel, []))
        limit = int(args.get("limit") or 100) or 100
        offset = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                offset = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
            except (ValueError, binascii.Error):
                return {"ok": False, "error": "invalid_cursor"}
        page = members[offset : offset + limit]
        more = offset + limit < len(members)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _channel(self, channel_id: str) -> dict[str, Any]:
        configured = self.channels.get(channel_id, {})
        is_im = channel_id.startswith("D")
        channel: dict[str, Any] = {
            "id": channel_id,
            "created": 1_700_000_000,
            "is_channel": channel_id.startswith("C"),
            "is_group": False,
            "is_im": is_im,
            "is_mpim": False,
            "is_private": channel_id.startswith("G") or is_im,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "context_team_id": self.team_id,
        }
        if is_im:
            channel["user"] = "U" + channel_id[1:]
        else:
            channel["name"] = f"channel-{channel_id.lower()}"
            channel["name_normalized"] = channel["name"]
            if channel_id in self.channel_members:
                channel["num_members"] = len(self.channel_members[channel_id])
        channel.update(configured)
        return channel

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        if channel_id not in self.channels and not _CHANNEL_ID.match(channel_id):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._channel(channel_id)}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            return {"ok": True, "channel": {"id": self._dm_channel(users[0])}}
        digest = hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:9].upper()
        return {"ok": True, "channel": {"id": "G" + digest}}

    def _oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("code") and not args.get("refresh_token"):
            return {"ok": False, "error": "invalid_code"}
        return {
            "ok": True,
            "app_id": self.app_id,
            "authed_user": {"id": "U0INSTALL1"},
            "scope": "chat:write,commands,users:read,channels:read,groups:read,files:write",
            "token_type": "bot",
            "access_token": f"xoxb-{self.team_id}-{self.bot_user_id}-fakeaccesstoken",
            "bot_user_id": self.bot_user_id,
            "team": {"id": self.team_id, "name": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not filename or length < 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        with self._cond:
            self._pending_files[file_id] = (filename, length, None)
        return {"ok": True, "upload_url": f"{self.root_url}upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(args.get("files") or "")
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        done: list[Upload] = []
        with self._cond:
            for entry in files:
                file_id = str(entry.get("id", "")) if isinstance(entry, dict) else ""
                filename, _, content = self._pending_files.get(file_id, ("", 0, None))
                if content is None:  # never issued, or never uploaded
                    return {"ok": False, "error": "file_not_found"}
                done.append(
                    Upload(
                        file_id=file_id,
                        filename=filename,
                        content=content,
                        title=entry.get("title") or filename,
                        channel_id=args.get("channel_id"),
                        initial_comment=args.get("initial_comment"),
                        thread_ts=args.get("thread_ts"),
                    )
                )

        def complete() -> None:
            for upload in done:
                del self._pending_files[upload.file_id]
                self._uploads[upload.file_id] = upload

        self._record(complete)
        return {
            "ok": True,
            "files": [
                {"id": u.file_id, "title": u.title, "name": u.filename, "size": len(u.content)}
                for u in done
            ],
        }

    def _team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "",
                "url": f"https://{self.team_domain}.slack.com/",
                "is_verified": False,
                "icon": {"image_default": True},
            },
        }


def sign_slack_request(
    signing_secret: str, body: bytes | str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers Slack adds to requests it sends to the bot (Events API, interactivity, commands).

    Returns ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` (``v0=`` + hex
    HMAC-SHA256 of ``v0:{timestamp}:{body}``); the caller sets ``Content-Type``.
    """
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode() + b":" + raw
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}
