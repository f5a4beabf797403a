"""Slack's way into `align serve`: Bolt at `POST /slack/events`, OAuth install routes, Socket Mode.

`mount` builds one Bolt `AsyncApp` — with OAuth settings when installs.py offers them
(SLACK_CLIENT_ID/SECRET), else the single-workspace SLACK_BOT_TOKEN — whose Web API client points
at SLACK_API_URL and retries rate limits and server errors. The same app serves HTTP and, with
`align serve --socket`, Socket Mode. It also registers the outbox's Slack sender.

Events API retries are answered once: a middleware claims each `event_id` in `processed_events`
(insert; a conflict means a delivery already handled it) before any listener runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from adapters.bootstrap import App
from adapters.slack import envelope
from adapters.slack.client import WorkspaceClients, web_client
from adapters.slack.delivery import SlackSender
from adapters.slack.listeners import SlackBot
from adapters.slack.people import SlackDirectory
from adapters.slack.workers import Workers
from adapters.web_keys import SENDERS, SOCKET_MODE, SOCKET_STARTERS

log = logging.getLogger("align.slack")

EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE = 5.0
CLAIM_BUDGET = 1.0
"""Seconds the Events API dedupe claim may hold an ack (Slack allows 3 s for the whole ack)."""


def _oauth_settings(app: App) -> AsyncOAuthSettings | None:
    try:
        from adapters.slack.installs import oauth_settings
    except ImportError:  # the installs module is optional: single-workspace only
        return None
    return oauth_settings(app)


def build_bolt(app: App, *, session: aiohttp.ClientSession | None = None) -> AsyncApp:
    """The Bolt app: OAuth installs when configured, else the one bot token."""
    settings = app.settings
    oauth = _oauth_settings(app)
    return AsyncApp(
        signing_secret=settings.slack_signing_secret or "",
        client=web_client(
            settings, token=None if oauth else settings.slack_bot_token, session=session
        ),
        oauth_settings=oauth,
        process_before_response=False,
        # With only an app token (Socket Mode), requests are not signed; Bolt skips the check.
        request_verification_enabled=bool(settings.slack_signing_secret),
        name="align",
    )


class _DedupeEvents(AsyncMiddleware):
    """`SlackRuntime._dedupe_events` as a class middleware. Bolt calls a function middleware
    through `build_async_required_kwargs`, which builds every injectable argument (say, respond,
    client, payload views …) for each request, slash commands included; a class gets
    (req, resp, next) as they are, which keeps that work off every ack."""

    def __init__(self, runtime: SlackRuntime) -> None:
        self.runtime = runtime

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Any
    ) -> BoltResponse | None:
        return await self.runtime._dedupe_events(req.body, req, next)


class SlackRuntime:
    """Everything Slack in one running server: Bolt, its listeners, their threads."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.workers = Workers()
        previous = app.engine.deps.directory
        self.directory = previous if isinstance(previous, SlackDirectory) else None
        if self.directory is None:
            self.directory = SlackDirectory(fallback=previous)
            app.engine.deps.directory = self.directory
        # One connection pool for every Web API call (Bolt's per-request clients share it);
        # created here, inside the server's running loop, and closed with the server.
        self.session = aiohttp.ClientSession()
        self.bolt = build_bolt(app, session=self.session)
        self.bot = SlackBot(app, self.bolt, workers=self.workers, directory=self.directory)
        self.bolt.middleware(_DedupeEvents(self))
        self.bot.register()
        self.clients = WorkspaceClients(
            app.settings, installation_store=self.bolt.installation_store, session=self.session
        )
        self.sender = SlackSender(app, self.clients)
        app.postings.add_updater("slack", self.sender.update)
        self.socket: AsyncSocketModeHandler | None = None

    # -- Events API retries ----------------------------------------------------------------

    async def _dedupe_events(
        self, body: dict[str, Any], request: AsyncBoltRequest, next: Any
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await self._first_delivery(str(event_id)):
            retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
            log.info("event %s already handled (retry %s): skipped", event_id, retry)
            return BoltResponse(status=200, body="")
        await next()
        return None

    async def _first_delivery(self, event_id: str) -> bool:
        """The claim, given at most CLAIM_BUDGET seconds: Slack retries an event not acked in 3 s,
        so a database that hangs must not hold the ack. Past the budget (or on a database error)
        the event is handled without the check — our event listeners (App Home, uninstall) are
        safe to run twice — and the claim, still running in its thread, records it for later
        retries."""
        try:
            return await asyncio.wait_for(
                self.workers.run(self._claim_event, event_id), CLAIM_BUDGET
            )
        except TimeoutError:
            log.warning(
                "event %s: no claim within %.1f s; handled unchecked", event_id, CLAIM_BUDGET
            )
        except SQLAlchemyError as exc:
            log.warning(
                "event %s: claim failed (%s); handled unchecked", event_id, type(exc).__name__
            )
        return True

    def _claim_event(self, event_id: str) -> bool:
        return self.app.db.first_time(event_id, platform="slack", now=self.app.clock.now())

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
            bolt_request = AsyncBoltRequest(
                body=checked.text,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]  # as Bolt's adapter does
            )
            if bolt_request.body != checked.body:  # Bolt misread a form (see envelope.parse)
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
        token = self.app.settings.slack_app_token
        if not token:
            raise RuntimeError("`align serve --socket` needs SLACK_APP_TOKEN (xapp-…)")
        self.socket = AsyncSocketModeHandler(self.bolt, token)
        await self.socket.connect_async()
        log.info("Slack Socket Mode connected")

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close_async()
        try:
            await _wait(self.workers.idle(), SHUTDOWN_GRACE)
        finally:
            self.workers.close()
            await self.session.close()


async def _wait(coro: Any, timeout: float) -> None:
    try:
        await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        log.warning("Slack work still running at shutdown was abandoned")


SLACK_KEY = web.AppKey("slack", SlackRuntime)
"""The mounted Slack runtime (Bolt app, workers, sender), for shutdown and tests."""


def mount(web_app: web.Application, app: App) -> None:
    """Add Slack to the server when it is configured (a signing secret or an app token)."""
    settings = app.settings
    if not (settings.slack_signing_secret or settings.slack_app_token):
        log.info("Slack is not configured (SLACK_SIGNING_SECRET / SLACK_APP_TOKEN): not mounted")
        return
    if not (
        settings.slack_bot_token or (settings.slack_client_id and settings.slack_client_secret)
    ):
        log.error(
            "Slack is not mounted: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (installs) next to SLACK_SIGNING_SECRET / SLACK_APP_TOKEN"
        )
        return
    runtime = SlackRuntime(app)
    web_app[SLACK_KEY] = runtime
    if settings.slack_signing_secret:
        web_app.router.add_post(EVENTS_PATH, runtime.handle_events)
    flow = runtime.bolt.oauth_flow
    if flow is not None:
        known = {r.canonical for r in web_app.router.resources()}
        for path in (flow.install_path, flow.redirect_uri_path):
            if path not in known:
                web_app.router.add_get(path, runtime.handle_oauth)
    web_app.setdefault(SENDERS, {})["slack"] = runtime.sender

    async def start_socket_mode() -> None:
        if web_app.get(SOCKET_MODE):
            await runtime.start_socket_mode()

    web_app.setdefault(SOCKET_STARTERS, []).append(start_socket_mode)

    async def close(_: web.Application) -> None:
        await runtime.close()

    web_app.on_cleanup.append(close)
