"""`POST /api/messages` on the `align serve` server, through botbuilder's CloudAdapter.

Authentication is botbuilder's: `ConfigurationBotFrameworkAuthentication` over the
MICROSOFT_APP_* settings; every request must carry a valid Bot Framework token. Without
MICROSOFT_APP_ID the route is not mounted at all, except under `align serve --teams-emulator`,
which runs it unauthenticated, as the Bot Framework Emulator expects, on loopback only. When the
signing keys cannot be fetched the answer is 503, not 401 (see openid.py).

The request is authenticated here, before `process_activity`, because CloudAdapter.process maps
only a missing token to 401 — a malformed or foreign token raises from the JWT library and would
be a 500. Any authentication failure is a 401 and nothing runs.

Then it is recorded in the inbox (adapters/inbox.py), keyed by conversation and activity id,
and run from that row within the request (Teams waits for the turn) — or, in a web process
that hands off (ALIGN_HAND_OFF), a message is left to the workers, which run it as `replay`
does; an invoke, whose answer is the response, still runs here. An activity delivered
again is answered and not run twice; one the database cannot take in time gets a 503; a message
past ALIGN_MAX_BACKLOG is answered "busy" in its turn and recorded nowhere. A row left
unfinished by a process that died is run again by `replay`, as a proactive turn; a message
given up after the inbox's MAX_ATTEMPTS is told so in its conversation (`asker`).

`mount` also wires the rest of the Teams part into the app: the outbox's `TeamsSender`, which
also edits live cards for the postings service.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext, serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth.authenticate_request_result import AuthenticateRequestResult

from adapters.bootstrap import App
from adapters.inbox import BUSY, KEY, Busy, Destination, Entry, Lost, NotRecorded
from adapters.settings import Settings
from adapters.teams import identity, openid, people, refs
from adapters.teams.bot import (
    AlignTeamsBot,
    conversation_reference,
    on_turn_error,
    text_activity,
)
from adapters.teams.delivery import TeamsSender
from adapters.teams.retry import RetryPolicy
from adapters.web_keys import SENDERS, SERVING, Serving
from storage.db import UnitOfWork

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
        # A web process that hands off (ALIGN_HAND_OFF) queues a message for a worker, which
        # runs it as a proactive turn (`replay`); an invoke's answer is the response: it runs here.
        hand_off = self.app.inbox.hands_off and activity.type == ActivityTypes.message
        try:
            entry = await self.app.inbox.record(
                "teams", activity_key(body), body, hand_off=hand_off
            )
        except NotRecorded:
            return web.Response(status=503, headers={"Retry-After": "1"})
        except Busy:
            return await self._busy(authenticated, activity)
        if entry is None:
            log.info("teams activity %s delivered again: answered, not run again", activity.id)
            return web.Response(status=200)
        if hand_off:
            return web.Response(status=201)
        invoke = await self._run(entry, authenticated, activity)
        if invoke is not None:
            return web.json_response(serializer_helper(invoke.body), status=invoke.status)
        return web.Response(status=201)

    async def _busy(
        self, authenticated: AuthenticateRequestResult, activity: Activity
    ) -> web.Response:
        """The backlog is full (ALIGN_MAX_BACKLOG): a message — a command or a card click — is
        answered in its turn with BUSY, and nothing is recorded or run; any other activity gets
        a 503, to be delivered again."""
        if activity.type != ActivityTypes.message:
            return web.Response(status=503, headers={"Retry-After": "60"})

        async def turn(turn_context: TurnContext) -> None:
            await self.bot.send(turn_context, text_activity(BUSY))

        await self.adapter.process_activity(authenticated, activity, turn)
        return web.Response(status=201)

    async def _run(
        self, entry: Entry, authenticated: AuthenticateRequestResult, activity: Activity
    ) -> InvokeResponse | None:
        invoke = await self.adapter.process_activity(authenticated, activity, self._turn(entry))
        await self.app.inbox.finish(entry)
        return invoke

    def _turn(self, entry: Entry) -> Any:
        """The bot's turn, with the inbox row at hand (`turn_state`). If the turn fails after
        the engine answered, the answer goes through the outbox rather than being lost; before
        that, the adapter's on_turn_error tells the person something went wrong."""

        async def turn(turn_context: TurnContext) -> None:
            turn_context.turn_state[KEY] = entry
            try:
                await self.bot.on_turn(turn_context)
            except Lost:
                log.info("teams: inbox %s was taken over by another process", entry.id)
            except Exception:
                if not await self.app.inbox.forward(entry):
                    raise
                log.exception("teams: the reply for inbox %s goes through the outbox", entry.id)

        return turn

    async def replay(self, entry: Entry) -> None:
        """Run a stored activity again (its process died before finishing it) as a proactive
        turn — botbuilder's way to act without an incoming request, with a connector client
        of the bot's own — whose activity is the stored one, so replies go where they would
        have gone. It was authenticated when it came in, before it was stored."""
        activity = Activity().deserialize(entry.payload)
        claims = self.adapter.create_claims_identity(self.sender.app_id)
        await self.adapter.process_proactive(claims, activity, None, self._turn(entry))
        await self.app.inbox.finish(entry)

    def asker(self, session: UnitOfWork, payload: dict[str, Any]) -> Destination | None:
        """Where the sender of a stored message given up (adapters/inbox.py) is told so: the
        conversation it came from, as a text — how Teams shows an error, and where `_engine`'s
        `where` sends one the turn could not show (a conversation has no private replies; in a
        personal chat that is the person's own). In a channel or a group chat that text is a
        new post everyone there reads: it names its sender (`Destination.person`), whom the
        outbox's sender then mentions. That sender posts through the conversation's stored
        reference and names people from `profiles`; when no turn stored those (every worker
        died before its turn got that far, and no install event was seen), the ones the message
        itself carries are stored, in the transaction that gives the row up. Other activities
        (an install, an invoke) are told nothing, as `on_turn_error` answers only messages."""
        activity = Activity().deserialize(payload)
        if activity.type != ActivityTypes.message or activity.conversation is None:
            return None
        workspace = identity.workspace_of(activity)
        channel = identity.channel_of(activity.conversation.id)
        now = self.app.clock.now()
        refs.keep_reference(
            session,
            workspace=workspace,
            channel=channel,
            reference=conversation_reference(activity, channel),
            now=now,
        )
        to = Destination(workspace, channel, identity.PLATFORM)
        sender = activity.from_property
        if not identity.is_shared(activity) or sender is None:
            return to
        if not (sender.aad_object_id or sender.id):
            return to
        person = identity.user_of(activity)
        named = people.keep_name(
            session, workspace, user=person, name=sender.name, teams_id=sender.id, now=now
        )
        # Without a name the notice would start with a bare id: "your request" alone reads better.
        return replace(to, person=person) if named else to


def activity_key(body: dict[str, Any]) -> str:
    """Teams' own id of a delivery: the activity id within its conversation (redeliveries keep
    both); a hash of the body when it has no id."""
    conversation, activity_id = body["conversation"]["id"], body.get("id")
    if not isinstance(activity_id, str) or not activity_id:
        activity_id = "body:" + json.dumps(body, sort_keys=True)
    digest = hashlib.sha256(f"{conversation}\n{activity_id}".encode()).hexdigest()
    return f"teams:{digest[:48]}"


TEAMS = web.AppKey("teams", Teams)


def build(app: App) -> Teams:
    config = BotConfig.from_settings(app.settings)
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    adapter.on_turn_error = on_turn_error
    retry = RetryPolicy()
    bot = AlignTeamsBot(app, retry=retry)
    sender = TeamsSender(app, adapter, app_id=config.APP_ID, retry=retry)
    app.postings.add_updater("teams", sender.update)
    teams = Teams(app, adapter, bot, retry, sender)
    app.inbox.add_replayer("teams", teams.replay, teams.asker)
    return teams


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
