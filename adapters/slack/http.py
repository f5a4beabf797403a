"""Slack's way into `align serve`: Bolt at `POST /slack/events`, OAuth install routes, Socket Mode.

`mount` builds one Bolt `AsyncApp` — with OAuth settings when installs.py offers them
(SLACK_CLIENT_ID/SECRET), else the single-workspace SLACK_BOT_TOKEN — whose Web API client points
at SLACK_API_URL and retries rate limits and server errors. The same app serves HTTP and, with
`align serve --socket`, Socket Mode. It also registers the outbox's Slack sender.

Record, then acknowledge (adapters/inbox.py): a middleware writes each command, click, form
and event to the inbox — keyed by its `event_id` or `trigger_id` — before any listener runs, and
the listeners work from that row. A request recorded before (an Events API retry, or the same
signed request replayed inside Slack's five minutes) is answered 200 and not run again; one the
database cannot take within ALIGN_INBOX_ACK_BUDGET gets a 503 instead of an ack; one past
ALIGN_MAX_BACKLOG is answered "busy" at once and recorded nowhere (busy.py). A slash command
the engine says only reads is admitted without a row (`Inbox.admit`), in every role. Bolt runs each
listener to its end before answering (`process_before_response`): listeners ack, start their
work and return at once, so the request knows whether work began from its row; a request that
started none (an event Align ignores) is finished on the spot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.bootstrap import App
from adapters.inbox import KEY, Busy, Destination, Entry, NotRecorded, Pass
from adapters.preflight import ConfigError
from adapters.slack import busy, envelope
from adapters.slack import socket as socket_mode
from adapters.slack.client import WorkspaceClients, shared_session, web_client
from adapters.slack.delivery import SlackSender
from adapters.slack.listeners import SlackBot, runs_anywhere, unescape, workspace_of
from adapters.slack.workers import Workers, read_threads_for, threads_for
from adapters.web_keys import SENDERS, SERVING, SHUTDOWN, SOCKET_MODE, SOCKET_STARTERS, Serving
from storage.db import UnitOfWork

log = logging.getLogger("align.slack")

EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE = 5.0


def _oauth_settings(app: App) -> AsyncOAuthSettings | None:
    try:
        from adapters.slack.installs import oauth_settings
    except ImportError:  # the installs module is optional: single-workspace only
        return None
    return oauth_settings(app)


class _ClientCarriesTheToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and, given our client (which
    carries that token), warns at every start that the token "will be unused". It is used —
    through the client — so that one message is dropped; every other Bolt warning stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOGGER = logging.getLogger("slack_bolt.AsyncApp")
if not any(isinstance(f, _ClientCarriesTheToken) for f in _BOLT_LOGGER.filters):
    _BOLT_LOGGER.addFilter(_ClientCarriesTheToken())


class InboxBolt(AsyncApp):
    """Bolt, plus one step after a recorded request's listener returned: if it started no work
    from the row (an event Align ignores), the row is finished now. A listener that crashed
    (status 500) leaves its row to be run again."""

    settle: Any = None
    """Called with the request's Entry and whether its listener crashed, when no work was
    started from it (SlackRuntime sets it)."""

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        response = await super().async_dispatch(req)
        entry = req.context.get(KEY)
        if isinstance(entry, Entry | Pass) and entry.task is None and self.settle is not None:
            self.settle(entry, response.status >= 500)
        return response


def build_bolt(app: App, *, session: aiohttp.ClientSession | None = None) -> InboxBolt:
    """The Bolt app: OAuth installs when configured, else the one bot token."""
    settings = app.settings
    oauth = _oauth_settings(app)
    return InboxBolt(
        signing_secret=settings.slack_signing_secret or "",
        client=web_client(
            settings, token=None if oauth else settings.slack_bot_token, session=session
        ),
        oauth_settings=oauth,
        process_before_response=True,
        # Bolt does not check signatures again: every request over HTTP reaches Bolt through
        # `handle_events`, which checked it on the raw bytes before anything was parsed
        # (envelope.py); Socket Mode requests are not signed, and a stored request run again
        # was checked before it was stored. Checking twice cost every ack a second HMAC and a
        # middleware.
        request_verification_enabled=False,
        # Bolt names loggers after the app and sets some of them to the root logger's level
        # as it goes; named "align", it silenced every `align` INFO line at random moments.
        name="align-bolt",
    )


def request_key(body: dict[str, Any], raw: str) -> str:
    """Slack's own id of a request: an event's `event_id` (the same on every retry), else the
    interaction's `trigger_id` (commands, clicks, forms); a hash of the body as a last resort.
    A replayed signed request carries the same body, so the same key."""
    for name in ("event_id", "trigger_id"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return f"slack:{value}"
    text = raw or json.dumps(body, sort_keys=True)
    return "slack:body:" + hashlib.sha256(text.encode()).hexdigest()


class _Record(AsyncMiddleware):
    """Record each request in the inbox before its listener runs (the module docstring).

    A class middleware: Bolt calls a function middleware through `build_async_required_kwargs`,
    which builds every injectable argument (say, respond, client, payload views …) for each
    request; a class gets (req, resp, next) as they are, which keeps that work off every ack."""

    def __init__(self, runtime: SlackRuntime) -> None:
        self.runtime = runtime

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Any
    ) -> BoltResponse | None:
        if isinstance(req.context.get(KEY), Entry):  # a stored request, run again
            await next()
            return None
        kind = envelope.kind_of(req.body)
        if kind not in envelope.KINDS:
            await next()
            return None
        inbox = self.runtime.app.inbox
        # A read is admitted without a row and answered in its ack (listeners.py), in a web
        # process that hands off too: it stores nothing a worker must run once, and queued for
        # one it cost three times the CPU, across two processes, and a queue's wait more.
        if kind == "command" and self.runtime.app.engine.only_reads(
            unescape(str(req.body.get("text") or ""))
        ):
            try:
                req.context[KEY] = inbox.admit("slack")
            except Busy:
                return busy.answer(req, self.runtime.workers)
            await next()
            return None
        key = request_key(req.body, req.raw_body)
        hand_off = inbox.hands_off and runs_anywhere(kind, req.body)
        try:
            entry = await inbox.record("slack", key, req.body, hand_off=hand_off)
        except NotRecorded:
            return BoltResponse(status=503, body="busy; please retry")
        except Busy:
            return busy.answer(req, self.runtime.workers)
        if entry is None:
            retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
            log.info("slack request %s seen before (retry %s): answered, not run again", key, retry)
            return BoltResponse(status=200, body="")
        if hand_off:  # queued for a worker, which runs its listener: acked as that one acks
            return BoltResponse(status=200, body="")
        req.context[KEY] = entry
        await next()
        return None


def asker(_session: UnitOfWork, payload: dict[str, Any]) -> Destination | None:
    """Who sent a stored Slack request, to be told privately (a message to a user id lands in
    their DM with the app): read as Bolt reads it, org-wide installs included. Nothing to
    store: the outbox's Slack sender reaches a user id as it is."""
    context = build_async_context(AsyncBoltContext({}), payload)
    if not context.user_id or not (context.team_id or context.enterprise_id):
        return None
    return Destination(workspace_of(context), context.user_id, "slack")


class SlackRuntime:
    """Everything Slack in one running server: Bolt, its listeners, their threads."""

    def __init__(self, app: App) -> None:
        self.app = app
        dialect = app.db.dialect
        self.workers = Workers(threads_for(dialect), read_threads_for(dialect))
        # One connection pool for every Web API call (Bolt's per-request clients share it);
        # created here, inside the server's running loop, and closed with the server.
        self.session = shared_session()
        self.bolt = build_bolt(app, session=self.session)
        self.bot = SlackBot(app, self.bolt, workers=self.workers, session=self.session)
        self.bolt.middleware(_Record(self))
        self.bolt.settle = self._settle
        self.bot.register()
        app.inbox.add_replayer("slack", self.replay, asker)
        self.clients = WorkspaceClients(
            app.settings, installation_store=self.bolt.installation_store, session=self.session
        )
        self.sender = SlackSender(app, self.clients)
        app.postings.add_updater("slack", self.sender.update)
        self.socket: AsyncSocketModeHandler | None = None
        self.socket_sleep: socket_mode.Sleep = asyncio.sleep  # tests inject one that records

    # -- the inbox -------------------------------------------------------------------------

    def _settle(self, entry: Entry | Pass, crashed: bool) -> None:
        if crashed or isinstance(entry, Pass):  # a row left claimed runs again later
            self.app.inbox.release(entry)
        else:
            entry.task = self.workers.spawn(self.app.inbox.finish(entry))

    async def replay(self, entry: Entry) -> None:
        """Run a stored request again (its process died before finishing it): through Bolt as
        it came, with its signature check skipped — it was checked before it was stored — and
        the row's Entry in the context, so nothing is recorded twice."""
        request = AsyncBoltRequest(body=entry.payload, mode="socket_mode", context={KEY: entry})
        await self.bolt.async_dispatch(request)
        if entry.task is not None:
            await entry.task

    # -- HTTP ------------------------------------------------------------------------------

    async def handle_events(self, request: web.Request) -> web.Response:
        # Signature on the raw bytes, then the body, then its shape — before Bolt parses anything
        # (envelope.py says why). What fails is answered here, cheaply, and nothing runs.
        checked = envelope.check(
            await request.read(),
            request.headers,
            request.content_type,
            self.app.settings.slack_signing_secret,
            now=time.time(),
        )
        if isinstance(checked, envelope.Refusal):
            return web.Response(status=checked.status, text=checked.reason)
        try:
            # The body as envelope.parse read it, not parsed again by Bolt: a second parse
            # (parse_qsl, then the payload's JSON) was a third of what Bolt cost an ack, and
            # Bolt's own parser misreads a slash command whose text says "payload".
            bolt_request = AsyncBoltRequest(
                body="",
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]  # as Bolt's adapter does
            )
            bolt_request.raw_body = checked.text
            bolt_request.body = checked.body
            bolt_request.context = build_async_context(AsyncBoltContext({}), checked.body)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            # Signed, yet a shape Bolt cannot read that envelope.missing did not foresee.
            log.warning("slack: a signed request Bolt could not read was refused", exc_info=True)
            return web.Response(status=400, text="malformed body")
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def handle_oauth(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        if flow is None:
            raise web.HTTPNotFound()
        bolt_request = await to_bolt_request(request)
        if request.path == flow.install_path:
            response = await flow.handle_installation(bolt_request)
        else:
            response = await flow.handle_callback(bolt_request)
        return await to_aiohttp_response(response)

    # -- Socket Mode -----------------------------------------------------------------------

    async def start_socket_mode(self) -> None:
        """Connect over Socket Mode (see socket.py: a refused token is a ConfigError)."""
        settings = self.app.settings
        if not settings.slack_app_token:
            raise ConfigError(
                "`align serve --socket` needs SLACK_APP_TOKEN: an app-level token (xapp-…) "
                "with the connections:write scope."
            )
        self.socket = await socket_mode.connect(
            self.bolt,
            settings.slack_app_token,
            api_url=settings.slack_api_url,
            session=self.session,
            sleep=self.socket_sleep,
        )

    async def stop_receiving(self) -> None:
        """Close the Socket Mode connection: no new envelopes while in-flight work finishes; and
        no read's ack waits any longer for its answer (`SlackBot.stop_waiting`)."""
        self.bot.stop_waiting()
        socket, self.socket = self.socket, None
        if socket is not None:
            await socket.close_async()

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        await self.stop_receiving()
        try:
            await _wait(self.workers.idle(), grace)
        finally:
            self.workers.close()
            await self.session.close()


async def _wait(coro: Any, timeout: float) -> None:
    try:
        await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        log.warning("Slack work still running at shutdown was abandoned after %.0f s", timeout)


SLACK_KEY = web.AppKey("slack", SlackRuntime)
"""The mounted Slack runtime (Bolt app, workers, sender), for shutdown and tests."""


def mount(web_app: web.Application, app: App) -> None:
    """Add Slack to the server when it is configured. `align serve` checks the configuration
    first (adapters/preflight.py) and refuses a half-done one; here an incomplete one is only
    logged and left out."""
    settings = app.settings
    tokens = settings.slack_bot_token or (settings.slack_client_id and settings.slack_client_secret)
    if not (tokens or settings.slack_signing_secret or settings.slack_app_token):
        log.debug("Slack is not configured (SLACK_* variables): not mounted")
        return
    if not tokens:
        log.error(
            "Slack is not mounted: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (installs) next to SLACK_SIGNING_SECRET / SLACK_APP_TOKEN"
        )
        return
    serving = web_app.get(SERVING) or Serving()
    runtime = SlackRuntime(app)
    web_app[SLACK_KEY] = runtime
    if serving.inbound:
        _mount_inbound(web_app, runtime)
    if serving.outbound:
        web_app.setdefault(SENDERS, {})["slack"] = runtime.sender

    async def stop_receiving(_: web.Application) -> None:
        await runtime.stop_receiving()

    async def close(web_app: web.Application) -> None:
        grace = web_app[SHUTDOWN].remaining() if SHUTDOWN in web_app else SHUTDOWN_GRACE
        await runtime.close(grace)

    web_app.on_shutdown.append(stop_receiving)
    web_app.on_cleanup.append(close)


def _mount_inbound(web_app: web.Application, runtime: SlackRuntime) -> None:
    """The ways Slack reaches us: /slack/events, the install routes, Socket Mode."""
    settings = runtime.app.settings
    if settings.slack_signing_secret:
        web_app.router.add_post(EVENTS_PATH, runtime.handle_events)
    flow = runtime.bolt.oauth_flow
    if flow is not None:
        known = {r.canonical for r in web_app.router.resources()}
        for path in (flow.install_path, flow.redirect_uri_path):
            if path not in known:
                web_app.router.add_get(path, runtime.handle_oauth)

    async def start_socket_mode() -> None:
        if web_app.get(SOCKET_MODE):
            await runtime.start_socket_mode()

    web_app.setdefault(SOCKET_STARTERS, []).append(start_socket_mode)
