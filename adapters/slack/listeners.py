"""What Align does with each Slack request: ack first, then engine work off the event loop.

Every request reaches a listener already recorded in the inbox (adapters/inbox.py, the
middleware in http.py). Each listener acks at once (an empty 200) and starts the rest from the
inbox row (`_start`), so Slack's three seconds hold however slow the engine is; only a modal
submission runs the engine before its ack, because Slack shows validation errors only in that
response. A slash command that only reads (admitted without a row) is answered in its ack:
Slack shows the ack's body as the command's response, so the reply needs no Web API call after
it — one HTTP exchange instead of two, the most a read cost the server (bench_slack: `help`
from 0.95-1.12 ms of CPU to 0.57-0.81). The ack waits for it at most ALIGN_INBOX_ACK_BUDGET, as it
would for a row; a read slower than that is acked empty and shown after, like any reply.

The engine runs in `Workers`' threads through `Inbox.once` — the command and the row's
"answered" mark commit together, so a request run again after a crash never runs the engine
twice. Replies go out after the ack — channel messages with `chat.postMessage` (so polls have a
ts to update), errors and confirmations ephemerally through `response_url`; a reply that cannot
be shown goes through the outbox (`answer_destination` says where).

Adapters decide nothing: a typed line and a button click both become `engine.handle(actor, text)`
(buttons carry the command text), a modal becomes `engine.submit_form`, and the listeners only
choose where a reply is shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.bootstrap import App
from adapters.inbox import KEY, Destination, Entry, Lost, Pass
from adapters.slack import blocks
from adapters.slack.client import WEBHOOK_LOG
from adapters.slack.people import People, Person, roster_fetch
from adapters.slack.workers import Workers
from bot import home
from bot.context import Actor
from bot.views import OutFile, Reply

log = logging.getLogger("align.slack")

Respond = Callable[..., Awaitable[Any]]
CODE_BLOCK_LIMIT = 2800
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def workspace_of(context: AsyncBoltContext) -> str:
    """`slack:<team>`; an org-wide (Enterprise Grid) install is one workspace: `slack:<org>`."""
    if context.is_enterprise_install and context.enterprise_id:
        return f"slack:{context.enterprise_id}"
    return f"slack:{context.team_id}"


def _upload_refused(error: str) -> str:
    """Why Slack would not take an export, in words a channel member can act on."""
    if error in ("not_in_channel", "channel_not_found"):
        return "Align is not a member of this channel (`/invite @Align`, then export again)"
    if error in ("missing_scope", "not_allowed_token_type", "no_permission"):
        return (
            "this install of Align may not upload files (the files:write scope); a workspace "
            "admin can reinstall the app to grant it"
        )
    return f"Slack answered `{error}`"


def dm_respond(client: AsyncWebClient, channel: str) -> Respond:
    """`respond` for a DM, which has no response_url: every answer, private or not, is a
    message in the DM itself — only the person is there, and an ephemeral message would vanish
    on reload."""

    async def respond(**body: Any) -> Any:
        body.pop("response_type", None)
        body.pop("replace_original", None)
        return await client.chat_postMessage(
            channel=channel, unfurl_links=False, unfurl_media=False, **body
        )

    return respond


def pooled(respond: Respond, session: aiohttp.ClientSession | None) -> Respond:
    """Bolt's `respond`, sent through the server's shared connection pool. Bolt's own opens a
    new HTTP session — a new connection, on Slack a new TLS handshake — for every answer: in a
    1,000-click burst that was a thousand connections, several ms of CPU each, on the process
    that acks. Anything that is not a plain response_url `respond` is returned as it is.

    An answer Slack did not take (an HTTP error: the URL expired or used up, Slack failing)
    raises, where slack-sdk returns it like any other: a reply shown nowhere must not count as
    delivered — the work after the ack then fails and the reply goes through the outbox
    (`Inbox.run`) — a read's too — or a read queued for a worker runs again."""
    url = getattr(respond, "response_url", None)
    if session is None or not isinstance(url, str) or not url:
        return respond
    proxy, ssl = getattr(respond, "proxy", None), getattr(respond, "ssl", None)

    async def send(**body: Any) -> Any:
        client = AsyncWebhookClient(
            url=url, proxy=proxy, ssl=ssl, session=session, logger=WEBHOOK_LOG
        )
        # What Bolt's respond sends: the given fields (blocks are dicts here), text always.
        message = {"text": "", **{k: v for k, v in body.items() if v is not None}}
        answered = await client.send_dict(message)
        if answered.status_code != 200:
            raise SlackClientError(
                f"response_url refused the answer: HTTP {answered.status_code} {answered.body!r}"
            )
        return answered

    return send


def answer_destination(actor: Actor) -> Callable[[Reply], Destination]:
    """Where a reply goes through the outbox when it could not be shown (see `deliver`):
    what only the asker may see goes to their DM with the app (a message to a user id),
    everything else to the channel — the channel either way where its effects are carried out
    (a vote's receipt in a DM, the poll's live message in the channel)."""

    def where(reply: Reply) -> Destination:
        to = actor.user if is_private(reply) else None
        return Destination(actor.workspace, actor.channel, "slack", direct_to=to)

    return where


def is_private(reply: Reply) -> bool:
    """Errors, help and receipts are for the asker only."""
    return not reply.ok or reply.ephemeral or reply.receipt


def rendered(reply: Reply) -> dict[str, Any] | None:
    """The message body `deliver` shows for a reply (None for a file): a receipt is its one line
    of text, anything else Block Kit. Built in a worker thread, never on the event loop."""
    if reply.file is not None:
        return None
    if reply.receipt:
        return {"text": blocks.fallback_text(reply)}
    return blocks.message(reply)


def in_ack(reply: Reply, body: dict[str, Any] | None) -> dict[str, Any] | None:
    """A slash command's reply as its ack's body — Slack shows it as the command's response,
    to the asker alone or to the channel (`is_private`) — or None for one that needs a message
    of its own: a file, or a reply with effects (a live message must have an id to update)."""
    if body is None or reply.file is not None or reply.effects:
        return None
    if is_private(reply):
        return {"response_type": "ephemeral", **body}
    return {"response_type": "in_channel", "unfurl_links": False, "unfurl_media": False, **body}


def _with_rendered(reply: Reply) -> tuple[Reply, dict[str, Any] | None]:
    return reply, rendered(reply)


def unescape(text: str) -> str:
    """Slack escapes &, < and > in command text; the engine reads what the person typed."""
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


_CMD_BUTTON = re.compile(rf"^{blocks.CMD_ACTION_PREFIX}\d+$")


def runs_anywhere(kind: str | None, body: dict[str, Any]) -> bool:
    """Whether the listener of this request does nothing before its work but ack, with an empty
    ack: a slash command (`on_command`), a command button (`on_button`), an event. A web process
    that hands off (ALIGN_HAND_OFF) records such a request queued and acks it as the listener
    would, and a worker runs the listener from the row. The others answer in their ack (a
    modal's errors) or must act within the three seconds a trigger_id lives (opening a modal):
    they run where they came in."""
    if kind in ("command", "event_callback"):
        return True
    if kind != "block_actions":
        return False
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    action_id = first.get("action_id") if isinstance(first, dict) else None
    return isinstance(action_id, str) and _CMD_BUTTON.match(action_id) is not None


class SlackBot:
    """The listeners of one Bolt app, and the services they share."""

    def __init__(
        self,
        app: App,
        bolt: AsyncApp,
        *,
        workers: Workers,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.app = app
        self.session = session  # the server's connection pool, for response_url answers
        self.engine = app.engine
        self.bolt = bolt
        self.workers = workers
        self.people = People(app, workers)
        self.postings = app.postings
        self.inbox = app.inbox
        self._stopping: asyncio.Future[None] | None = None
        """Done once the server stops receiving (`stop_waiting`): a read's ack waits no more."""

    def register(self) -> None:
        bolt = self.bolt
        bolt.command(re.compile(r"^/"))(self.on_command)
        bolt.action(_CMD_BUTTON)(self.on_button)
        bolt.action(blocks.FORM_ACTION)(self.on_form_button)
        bolt.view_submission(blocks.BALLOT_CALLBACK)(self.on_ballot)
        bolt.action(re.compile(rf"^{blocks.ASK_ACTION_PREFIX}\d+$"))(self.on_ask_button)
        bolt.view_submission(blocks.REASON_CALLBACK)(self.on_reason)
        bolt.event("app_home_opened")(self.on_home_opened)
        bolt.event("message")(self.on_direct_message)
        if bolt.installation_store is not None:
            # Forget the workspace's tokens; its decisions, polls and history stay.
            bolt.event("app_uninstalled")(bolt.default_app_uninstalled_event_listener())
            bolt.event("tokens_revoked")(bolt.default_tokens_revoked_event_listener())
        else:
            bolt.event("app_uninstalled")(self.on_uninstalled_single)
            bolt.event("tokens_revoked")(self.on_uninstalled_single)

    # ------------------------------------------------------------------ who is asking

    async def actor(
        self,
        client: AsyncWebClient,
        context: AsyncBoltContext,
        channel: str,
        *,
        profile: bool = True,
    ) -> Actor:
        """Who is asking; without `profile` (the engine says the command reads none:
        `Engine.needs_profile`) no users.info and no profiles row — only ids."""
        workspace = workspace_of(context)
        user = context.user_id or ""
        lookup = profile and bool(user)
        person = await self.people.person(client, workspace, user) if lookup else Person()
        return Actor(
            workspace=workspace,
            channel=channel,
            user=user,
            is_admin=person.is_admin,
            tz=person.tz,
            platform="slack",
        )

    # ------------------------------------------------------------------ the inbox row

    def _start(self, context: AsyncBoltContext, work: Coroutine[Any, Any, Any]) -> None:
        """Run the work after the ack from the request's inbox row: the row is finished when
        the work is over (adapters/inbox.py); a read admitted without a row ends its pass."""
        entry = context.get(KEY)
        if isinstance(entry, Entry | Pass):
            entry.task = self.workers.spawn(self.inbox.run(entry, work))
        else:
            self.workers.spawn(work)

    async def _engine(
        self, context: AsyncBoltContext, actor: Actor, run: Callable[..., Reply], *args: Any
    ) -> Reply:
        """An engine call, once for the request's row (`Inbox.once`), in a worker thread."""
        entry = context.get(KEY)
        return await self.workers.run(
            self.inbox.once,
            entry if isinstance(entry, Entry) else None,
            answer_destination(actor),
            run,
            *args,
        )

    async def _engine_rendered(
        self,
        context: AsyncBoltContext,
        actor: Actor,
        run: Callable[..., Reply],
        *args: Any,
        reads: bool = False,
    ) -> tuple[Reply, dict[str, Any] | None]:
        """`_engine`, and the reply's Block Kit built in the same worker thread (`rendered`):
        nothing of a reply is built on the event loop, where it would hold every other ack.
        A command that only `reads` (the engine says so) runs outside its row's transaction
        even when it has one (a worker running it handed off: adapters/inbox.py)."""
        entry = None if reads else context.get(KEY)
        where = answer_destination(actor)
        if isinstance(entry, Entry):
            # With the other calls waiting, in one transaction (SQLite: `Inbox.once_together`).
            together = self.inbox.once_together(entry, where, run, *args, then=_with_rendered)
            if together is not None:
                return await together

        def work() -> tuple[Reply, dict[str, Any] | None]:
            reply = self.inbox.once(entry if isinstance(entry, Entry) else None, where, run, *args)
            return _with_rendered(reply)

        if not reads:
            return await self.workers.run(work)
        reply, body = await self.workers.read(work)
        admitted = context.get(KEY)
        if isinstance(admitted, Pass):  # where its reply goes if showing it fails (`Pass`)
            admitted.answer = (reply, where(reply))
        return reply, body

    # ------------------------------------------------------------------ listeners

    async def on_command(
        self,
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        respond = pooled(respond, self.session)
        text = unescape(command.get("text") or "")
        channel = command.get("channel_id") or context.channel_id or ""
        entry = context.get(KEY)
        if not isinstance(entry, Pass):
            await ack()
            self._start(context, self._run_command(text, context, client, respond, channel))
            return
        # A read (admitted, no row): its answer is the ack itself when it is ready in time.
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._start(context, self._run_command(text, context, client, respond, channel, answer))
        assert entry.task is not None  # `_start` set it
        await ack(await self._in_time(answer, entry.task))

    async def _in_time(
        self, answer: asyncio.Future[dict[str, Any]], work: asyncio.Task[Any]
    ) -> dict[str, Any] | str:
        """A read's answer as the body of its ack, or an empty ack when it is not ready within
        ALIGN_INBOX_ACK_BUDGET (or its `work` ended without one, or the server stops): then the
        answer is the work's to show after the ack (`_run_command`), as every other reply is."""
        waited: set[asyncio.Future[Any]] = {answer, work, self._stopped()}
        try:
            await asyncio.wait(
                waited, timeout=self.inbox.ack_budget, return_when=asyncio.FIRST_COMPLETED
            )
        finally:  # the budget out, or this request cancelled: the work shows the answer itself
            answer.cancel()
        return answer.result() if not answer.cancelled() else ""

    def _stopped(self) -> asyncio.Future[None]:
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        return self._stopping

    def stop_waiting(self) -> None:
        """The server stops: a read's ack still waiting for its answer is sent empty at once, and
        the work shows the answer within the shutdown grace — an ack that waited out its budget
        held the stop past ALIGN_SHUTDOWN_GRACE (aiohttp waits for the request's handler)."""
        stopping = self._stopped()
        if not stopping.done():
            stopping.set_result(None)

    async def on_button(
        self,
        ack: Callable[..., Awaitable[None]],
        action: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        await ack()
        channel = context.channel_id
        if not channel:  # a button outside a channel (App Home): nowhere to run it
            return
        respond = pooled(respond, self.session)
        container = body.get("container") or {}
        ts = container.get("message_ts") if container.get("type") == "message" else None
        origin = (channel, str(ts)) if ts and not container.get("is_ephemeral") else None
        self._start(
            context,
            self._run_command(
                str(action.get("value") or ""), context, client, respond, channel, origin=origin
            ),
        )

    async def on_form_button(
        self,
        ack: Callable[..., Awaitable[None]],
        action: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        await ack()
        channel = context.channel_id
        if channel:
            self._start(
                context,
                self._open_ballot(
                    str(action.get("value") or ""), body.get("trigger_id", ""), context, client,
                    respond, channel,
                ),
            )  # fmt: skip

    async def on_ballot(
        self,
        ack: Callable[..., Awaitable[None]],
        view: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        """A ranked or dots ballot submitted: checked before the ack, so errors show inline."""
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            poll, mode, channel = str(meta["poll"]), str(meta["mode"]), str(meta["channel"])
        except (ValueError, KeyError, TypeError):
            await ack()
            return
        values = blocks.submitted_values(view)
        # No users.info here: a vote needs neither admin rights nor a time zone, and this ack
        # must not wait on a network call.
        actor = Actor(
            workspace=workspace_of(context),
            channel=channel,
            user=context.user_id or "",
            platform="slack",
        )
        try:
            reply = await self._engine(
                context, actor, self.engine.submit_form, actor, poll, mode, values
            )
        except Lost:  # a stored submission run again, and taken over meanwhile
            await ack()
            return
        if not reply.ok:
            first = next(iter(values), "rank1" if mode == "ranked" else "option1")
            errors = reply.field_errors or {first: reply.error or reply.text}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self._start(context, self._after_ballot(client, actor, reply))

    async def _after_ballot(self, client: AsyncWebClient, actor: Actor, reply: Reply) -> None:
        await self.postings.apply(reply.effects, actor=actor)
        await self._ephemeral(client, actor, reply)

    async def on_ask_button(
        self,
        ack: Callable[..., Awaitable[None]],
        action: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        """A button that asks for text first (Object, Block, Add option): a modal with one
        input, opened at once (the trigger_id expires three seconds after the click); the engine
        sees the command when it is sent."""
        await ack()
        channel = context.channel_id
        try:
            asked = json.loads(str(action.get("value") or "{}"))
            command, ask = str(asked["command"]), str(asked["ask"])
            label = str(asked.get("label") or command.split()[0].capitalize())
            into = str(asked["into"]) if asked.get("into") else None
        except (ValueError, KeyError, TypeError):
            return
        if not channel:
            return
        container = body.get("container") or {}
        ts = container.get("message_ts") if container.get("type") == "message" else None
        view = blocks.reason_modal(
            command,
            ask,
            label,
            channel=channel,
            message_ts=None if ts is None else str(ts),
            into=into,
        )
        try:
            await client.views_open(trigger_id=body.get("trigger_id", ""), view=view)
        except SlackApiError as exc:
            log.warning("views.open for %r: %s", command, exc.response.get("error"))

    async def on_reason(
        self,
        ack: Callable[..., Awaitable[None]],
        view: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        """The reason (or option) submitted: checked before the ack, so a refusal shows under the
        input; accepted, the clicked message follows through the postings service."""
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            command, channel = str(meta["command"]), str(meta["channel"])
            ts = meta.get("ts")
            into = str(meta["into"]) if meta.get("into") else None
        except (ValueError, KeyError, TypeError):
            await ack()
            return
        text = blocks.submitted_values(view).get(blocks.REASON_INPUT)
        actor = Actor(
            workspace=workspace_of(context),
            channel=channel,
            user=context.user_id or "",
            platform="slack",
        )
        submit = partial(self.engine.submit_text, field=blocks.REASON_INPUT, into=into)
        try:
            reply = await self._engine(context, actor, submit, actor, command, text)
        except Lost:  # a stored submission run again, and taken over meanwhile
            await ack()
            return
        if not reply.ok:
            errors = reply.field_errors or {blocks.REASON_INPUT: reply.error or reply.text}
            await ack(response_action="errors", errors=errors)
            return
        # Started before the ack, so the work that follows it is tracked like every other.
        origin = (channel, str(ts)) if ts else None
        self._start(context, self._after_reason(client, actor, reply, origin))
        await ack()

    async def _after_reason(
        self,
        client: AsyncWebClient,
        actor: Actor,
        reply: Reply,
        origin: tuple[str, str] | None,
    ) -> None:
        await self.postings.apply(reply.effects, actor=actor, origin=origin)
        await self._ephemeral(client, actor, reply)

    async def on_home_opened(
        self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        self._start(context, self._publish_home(str(event["user"]), context, client))

    async def on_direct_message(
        self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """A line typed in the bot's DM (its Messages tab) is a command, answered in the DM.
        Only people's new messages count: not edits or other subtypes, not bots (Align's own
        replies arrive here too), not messages in channels (those are not commands)."""
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user, channel = event.get("user"), event.get("channel")
        if not user or not channel or user == context.bot_user_id:
            return
        text = str(event.get("text") or "")
        if context.bot_user_id:  # "@Align help" typed in the DM: the mention is not the command
            text = text.replace(f"<@{context.bot_user_id}>", " ")
        reply_here = dm_respond(client, str(channel))
        self._start(
            context,
            self._run_command(unescape(text.strip()), context, client, reply_here, str(channel)),
        )

    async def on_uninstalled_single(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        log.warning(
            "%s received for %s; single-workspace token in use, nothing to forget",
            event.get("type"),
            workspace_of(context),
        )

    # ------------------------------------------------------------------ the work after the ack

    async def _run_command(
        self,
        text: str,
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Respond,
        channel: str,
        answer: asyncio.Future[dict[str, Any]] | None = None,
        *,
        origin: tuple[str, str] | None = None,
    ) -> None:
        """Run a typed line or a click. A failure before the engine answered is told to the
        person; once it has answered, showing the reply is `deliver`'s job, and if that fails
        the reply goes through the outbox (`Inbox.run`). With an `answer` still awaited (a
        read's ack, `on_command`), the reply or the failure goes there instead: Slack shows
        the ack's body as the command's response."""
        try:
            profile = self.engine.needs_profile(text)
            actor = await self.actor(client, context, channel, profile=profile)
            await self.app.roster.ready(
                actor.workspace,
                channel,
                roster_fetch(client, channel, bot_user=context.bot_user_id),
            )
            reply, body = await self._engine_rendered(
                context, actor, self.engine.handle, actor, text, reads=self.engine.only_reads(text)
            )
        except Lost:
            raise
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("slack command failed [ref %s] %r", ref, text[:80])
            failed = f"Something went wrong on our side (ref {ref}). Please try again."
            if answer is not None and not answer.done():
                answer.set_result({"response_type": "ephemeral", "text": failed})
                return
            await self._respond_safely(
                respond, text=failed, response_type="ephemeral", replace_original=False
            )
            return
        if answer is not None and not answer.done() and (shown := in_ack(reply, body)):
            answer.set_result(shown)
            return
        await self.deliver(reply, actor, client, respond, origin=origin, body=body)

    async def deliver(
        self,
        reply: Reply,
        actor: Actor,
        client: AsyncWebClient,
        respond: Respond | None,
        *,
        origin: tuple[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Show a reply where it belongs — errors, help and receipts to the asker only, exports as
        a file in the channel, everything else to the channel as the bot (so a live message has a
        ts to update) — then hand its effects to the postings service. `body` is the reply's
        `rendered` form when the caller built it already (in a worker thread)."""
        ts: str | None = None
        if reply.file is not None:
            await self._send_file(reply, actor, client, respond)
        else:
            if body is None:
                body = await self.workers.run(rendered, reply)
            if is_private(reply):
                await self._private(body, actor, client, respond)
            else:
                ts = await self._post(body, actor, client, respond)
        posted = (actor.channel, ts) if ts else None
        await self.postings.apply(reply.effects, actor=actor, posted=posted, origin=origin)

    async def _post(
        self, body: dict[str, Any], actor: Actor, client: AsyncWebClient, respond: Respond | None
    ) -> str | None:
        """Post in the channel as the bot; the message's ts, or None when it had to go through
        the command's response_url (the bot is not a member, or a DM between two people), which
        gives a message that cannot be updated later."""
        try:
            posted = await client.chat_postMessage(
                channel=actor.channel, unfurl_links=False, unfurl_media=False, **body
            )
            return str(posted["ts"]) if posted.get("ts") else None
        except SlackApiError as exc:
            log.info("chat.postMessage %s: %s", actor.channel, exc.response.get("error"))
            if respond is None:
                raise
            await respond(response_type="in_channel", replace_original=False, **body)
            return None

    async def _private(
        self,
        body: dict[str, Any],
        actor: Actor,
        client: AsyncWebClient,
        respond: Respond | None,
    ) -> None:
        if respond is not None:
            try:
                await respond(response_type="ephemeral", replace_original=False, **body)
                return
            except ValueError:  # no response_url on this request
                pass
        await client.chat_postEphemeral(channel=actor.channel, user=actor.user, **body)

    async def _ephemeral(self, client: AsyncWebClient, actor: Actor, reply: Reply) -> None:
        try:
            await client.chat_postEphemeral(
                channel=actor.channel, user=actor.user, text=blocks.fallback_text(reply)
            )
        except SlackApiError as exc:
            log.info("chat.postEphemeral %s: %s", actor.channel, exc.response.get("error"))

    async def _send_file(
        self, reply: Reply, actor: Actor, client: AsyncWebClient, respond: Respond | None
    ) -> None:
        """An export, as a real file shared in the channel the command was typed in.

        The records are that channel's own, so everyone there may see them. Where Slack will not
        take the file (the bot is not in the channel, the install predates the files:write
        scope, any API error) the asker still gets it privately, as a code block cut to fit one
        message, with the reason the file could not be attached.
        """
        assert reply.file is not None
        reason = await self._upload(reply, reply.file, actor, client)
        if reason is not None:
            await self._file_as_code_block(reply, reply.file, actor, client, respond, reason)

    async def _upload(
        self, reply: Reply, file: OutFile, actor: Actor, client: AsyncWebClient
    ) -> str | None:
        """files_upload_v2 into the channel; None when shared, else why it was not."""
        if not file.content:
            return "the file is empty"
        kind = file.filename.split("-", 1)[0] or "records"
        fmt = file.filename.rsplit(".", 1)[-1]
        try:
            await client.files_upload_v2(
                channel=actor.channel,
                content=file.content.encode("utf-8"),
                filename=file.filename,
                title=file.filename,
                initial_comment=f"Export of this channel's {kind} for <@{actor.user}> ({fmt})",
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            log.info("files_upload_v2 to %s: %s", actor.channel, error)
            return _upload_refused(error)
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            # the POST to the upload_url, or the network
            log.warning("files_upload_v2 to %s failed: %s", actor.channel, exc)
            return "the upload to Slack did not go through"
        return None

    async def _file_as_code_block(
        self,
        reply: Reply,
        file: OutFile,
        actor: Actor,
        client: AsyncWebClient,
        respond: Respond | None,
        reason: str,
    ) -> None:
        content = blocks.escape(file.content)
        shown = blocks.clip(content, CODE_BLOCK_LIMIT).replace("```", "'''")
        note = f"The file could not be attached to this channel: {reason}."
        if len(content) > len(shown):
            note += (
                f" Showing {len(shown):,} of {len(content):,} characters; for the whole file run "
                f"`align run --workspace {actor.workspace} --channel {actor.channel} "
                f'"export …"` on the server, or narrow the export.'
            )
        body_blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{file.filename}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{shown}```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]},
        ]
        body = {"text": blocks.fallback_text(reply), "blocks": body_blocks}
        if respond is not None:
            try:
                await respond(response_type="ephemeral", replace_original=False, **body)
                return
            except ValueError:
                pass
        await client.chat_postEphemeral(channel=actor.channel, user=actor.user, **body)

    async def _open_ballot(
        self,
        poll: str,
        trigger_id: str,
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: Respond,
        channel: str,
    ) -> None:
        """The Vote button of a ranked or dots poll: the modal, built from the poll as it is now
        (it may have gained options since it was posted). No users.info first: the trigger_id
        expires three seconds after the click."""
        actor = Actor(
            workspace=workspace_of(context),
            channel=channel,
            user=context.user_id or "",
            platform="slack",
        )
        try:
            reply = await self.workers.run(self.engine.live_view, actor, poll)
            form = blocks.find_form(reply)
            if form is None:
                if reply.ok:
                    reply = Reply(
                        ok=False,
                        kind="error",
                        text=f"{poll} is closed.",
                        error=f"{poll} is closed; the result is final.",
                        ephemeral=True,
                    )
                body = await self.workers.run(blocks.message, reply)
                await self._private(body, actor, client, respond)
                return
            await client.views_open(
                trigger_id=trigger_id, view=blocks.ballot_modal(form, channel=channel)
            )
        except SlackApiError as exc:
            log.warning("views.open for %s: %s", poll, exc.response.get("error"))
            await self._respond_safely(
                respond,
                text=f"The ballot could not be opened; type `vote {poll} …` instead "
                f"(`help vote` shows how).",
                response_type="ephemeral",
                replace_original=False,
            )

    async def _publish_home(
        self, user: str, context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        try:
            workspace = workspace_of(context)
            person = await self.people.person(client, workspace, user)
            view = await self.workers.run(self._home_view, workspace, user, person.tz)
            await client.views_publish(user_id=user, view=view)
        except Exception:
            log.exception("publishing App Home for %s failed", user)

    def _home_view(self, workspace: str, user: str, tz: str | None) -> dict[str, Any]:
        reply = home.home(self.app.engine.deps, workspace, user, tz=tz)
        return {"type": "home", "blocks": blocks.render(reply, limit=blocks.VIEW_BLOCKS)}

    @staticmethod
    async def _respond_safely(respond: Respond | None, **body: Any) -> None:
        if respond is None:
            return
        try:
            await respond(**body)
        except Exception:
            log.exception("response_url post failed")
