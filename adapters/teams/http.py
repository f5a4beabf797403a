"""`POST /api/messages` on the `align serve` server, through botbuilder's CloudAdapter.

Authentication is botbuilder's: `ConfigurationBotFrameworkAuthentication` over the
MICROSOFT_APP_* settings; every request must carry a valid Bot Framework token. Without
MICROSOFT_APP_ID the route is not mounted at all, except under `align serve --teams-emulator`,
which runs it unauthenticated, as the Bot Framework Emulator expects, on loopback only. When the
signing keys cannot be fetched the answer is 503, not 401 (see openid.py).

The request is authenticated here, before `process_activity`, because CloudAdapter.process maps
only a missing token to 401 — a malformed or foreign token raises from the JWT library and would
be a 500. Any authentication failure is a 401 and nothing runs.

`mount` also wires the rest of the Teams part into the app: the outbox's `TeamsSender`, which
also edits live cards for the postings service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity

from adapters.bootstrap import App
from adapters.settings import Settings
from adapters.teams import openid
from adapters.teams.bot import AlignTeamsBot, on_turn_error
from adapters.teams.delivery import TeamsSender
from adapters.teams.retry import RetryPolicy
from adapters.web_keys import SENDERS, SERVING, Serving

log = logging.getLogger("align.teams.http")


@dataclass(frozen=True)
class BotConfig:
    """The configuration object botbuilder's authentication reads (its attribute names)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str

    @classmethod
    def from_settings(cls, settings: Settings) -> BotConfig:
        return cls(
            APP_ID=settings.microsoft_app_id,
            APP_PASSWORD=settings.microsoft_app_password,
            APP_TYPE=settings.microsoft_app_type or "MultiTenant",
            APP_TENANTID=settings.microsoft_app_tenant_id,
        )


@dataclass
class Teams:
    """The Teams part of one server, reachable as `web_app[TEAMS]` (tests swap `retry.sleep`)."""

    app: App
    adapter: CloudAdapter
    bot: AlignTeamsBot
    retry: RetryPolicy
    sender: TeamsSender

    async def messages(self, request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        try:
            body = await request.json()
        except ValueError:  # not JSON, or not UTF-8
            return web.Response(status=400)
        # Every activity names its conversation and sender; botbuilder assumes both (and would
        # store or answer under None), and its deserializer raises on wrongly typed fields —
        # 400 here, before the token is even looked at, rather than a 500 after it.
        if not isinstance(body, dict) or not all(
            isinstance(part := body.get(key), dict)
            and isinstance(part.get("id"), str)
            and part["id"]
            for key in ("conversation", "from")
        ):
            return web.Response(status=400)
        try:
            activity = Activity().deserialize(body)
        except ValueError:  # msrest's DeserializationError
            return web.Response(status=400)
        if not activity.type:
            return web.Response(status=400)
        auth_header = request.headers.get("Authorization", "")
        openid.install()
        try:
            authenticated = await self.adapter.bot_framework_authentication.authenticate_request(
                activity, auth_header
            )
        except openid.KeysUnavailable as exc:
            # Our side cannot check tokens right now: a server fault, not the caller's bad token.
            log.warning("teams: Bot Framework signing keys unavailable (%s): answered 503", exc)
            return web.Response(status=503, headers={"Retry-After": "30"})
        except Exception as exc:
            log.warning(
                "teams: rejected an unauthenticated request (%s: %s)", type(exc).__name__, exc
            )
            return web.Response(status=401)
        invoke = await self.adapter.process_activity(authenticated, activity, self.bot.on_turn)
        if invoke is not None:
            return web.json_response(serializer_helper(invoke.body), status=invoke.status)
        return web.Response(status=201)


TEAMS = web.AppKey("teams", Teams)


def build(app: App) -> Teams:
    config = BotConfig.from_settings(app.settings)
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    adapter.on_turn_error = on_turn_error
    retry = RetryPolicy()
    bot = AlignTeamsBot(app, retry=retry)
    sender = TeamsSender(app, adapter, app_id=config.APP_ID, retry=retry)
    app.postings.add_updater("teams", sender.update)
    return Teams(app, adapter, bot, retry, sender)


def mount(web_app: web.Application, app: App) -> None:
    """Teams, only when it is configured: MICROSOFT_APP_ID (every request then needs a valid
    Bot Framework token), or `align serve --teams-emulator` (no authentication, and the server
    listens on loopback only). Otherwise /api/messages does not exist: a Slack-only server must
    not accept anonymous activities that would store data and call the `serviceUrl` they name."""
    serving = web_app.get(SERVING) or Serving()
    if not (app.settings.microsoft_app_id or serving.teams_emulator):
        log.debug("Teams is off (MICROSOFT_APP_ID not set): /api/messages is not mounted")
        return
    teams = build(app)
    web_app[TEAMS] = teams
    if serving.inbound:
        web_app.router.add_post("/api/messages", teams.messages)
    if serving.outbound:
        web_app.setdefault(SENDERS, {})["teams"] = teams.sender
    if serving.teams_emulator:
        log.warning(
            "Teams in Bot Framework Emulator mode: /api/messages accepts unauthenticated "
            "requests (loopback only). Set MICROSOFT_APP_ID for Teams."
        )
