"""The Teams bot: an ActivityHandler that translates, and decides nothing.

A message (typed `@Align …`, or an Adaptive Card submit) becomes `engine.handle(actor, text)` or
`engine.submit_form(…)`, run in a worker thread so the event loop never blocks on the database;
the Reply comes back as a card replying to the incoming activity. Around that, the Teams-only
chores: remember how to reach the conversation later, refresh its roster, and after a vote update
every posted card of that poll in place (a PUT to the connector) rather than posting a new one.

Votes answer quietly: a card click only updates the card (Teams has no ephemeral messages; three
people voting should not add three posts to a channel), a typed vote gets a one-line
confirmation. Errors are a short text reply with the usage line.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from copy import copy
from functools import partial
from typing import Any

from botbuilder.core import ActivityHandler, BotAdapter, CardFactory, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    Entity,
    Mention,
)
from botframework.connector.aio import ConnectorClient

from adapters.bootstrap import App
from adapters.inbox import KEY, Destination, Entry
from adapters.teams import cards, identity, people, refs
from adapters.teams.retry import RetryPolicy
from bot.context import Actor
from bot.views import Form, Reply

log = logging.getLogger("align.teams")

WELCOME = (
    "Hi, I'm Align. Mention me with a command — `@Align help` lists them, "
    '`@Align poll "Ship date or scope?" "Date" "Scope"` opens a poll.'
)


REMEMBERED = 10_000
"""Conversations whose last stored reference a process keeps in memory (then it starts over)."""


def conversation_reference(activity: Activity, channel: str) -> dict[str, Any]:
    """How to post into this conversation later: its channel itself, not the thread or the
    message that happened to reach us (see refs.py)."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    conversation = copy(reference.conversation) or ConversationAccount()
    conversation.id = channel
    reference.conversation = conversation
    return reference.serialize()


def card_activity(card: dict[str, Any], *, summary: str = "") -> Activity:
    return Activity(
        type=ActivityTypes.message,
        attachments=[CardFactory.adaptive_card(card)],
        summary=summary[:200] or None,
    )


def text_activity(text: str | cards.Text) -> Activity:
    """A plain message, with the mention entities of its `<at>` tags (`cards.as_text`)."""
    if isinstance(text, str):
        text = cards.Text(text)
    entities: list[Entity] = [
        Mention(
            mentioned=ChannelAccount(**mention["mentioned"]),
            text=mention["text"],
            type="mention",
        )
        for mention in text.mentions
    ]
    return Activity(
        type=ActivityTypes.message,
        text=text.text,
        text_format="markdown",
        entities=entities or None,
    )


class AlignTeamsBot(ActivityHandler):
    def __init__(self, app: App, *, retry: RetryPolicy) -> None:
        self.app = app
        self.engine = app.engine
        self.retry = retry
        # What this process last stored per conversation (its reference, and the sender's
        # ids and name), so the same again is not written again.
        self._remembered: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {}

    # -- activities ---------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        workspace = identity.workspace_of(activity)
        channel = identity.channel_of(activity.conversation.id)
        now = self.app.clock.now()
        await self._remember_if_new(activity, workspace, channel)
        client = self._client(turn_context)
        await self.app.roster.ready(
            workspace,
            channel,
            people.roster_fetch(
                client, self.app.db, workspace=workspace, conversation=channel, now=now
            ),
        )
        actor = Actor(
            workspace=workspace,
            channel=channel,
            user=identity.user_of(activity),
            tz=identity.timezone_of(activity),
            platform=identity.PLATFORM,
            mentions=await self._mentions(client, activity),
        )
        value = activity.value if isinstance(activity.value, dict) else {}
        clicked = any(key in value for key in ("align_form", "align_ask", "align"))
        if "align_form" in value:
            values = {
                str(k): (None if v is None else str(v))
                for k, v in value.items()
                if k not in ("align_form", "mode")
            }
            reply = await self._engine(
                turn_context,
                actor,
                clicked,
                self.engine.submit_form,
                actor,
                str(value["align_form"]),
                str(value.get("mode") or ""),
                values,
            )
        elif "align_ask" in value:
            # Text typed into a button's ShowCard (Object, Block, Add option): the input named in
            # the data holds it.
            field = str(value.get("align_input") or "reason")
            text = value.get(field)
            into = value.get("align_into")
            reply = await self._engine(
                turn_context,
                actor,
                clicked,
                partial(
                    self.engine.submit_text,
                    field=field,
                    into=None if into is None else str(into),
                ),
                actor,
                str(value["align_ask"]),
                None if text is None else str(text),
            )
        elif "align" in value:
            reply = await self._engine(
                turn_context, actor, clicked, self.engine.handle, actor, str(value["align"])
            )
        else:
            text = identity.command_text(activity)
            reply = await self._engine(
                turn_context, actor, clicked, self.engine.handle, actor, text
            )
        await self._answer(turn_context, actor, reply, clicked=clicked)

    async def _engine(
        self,
        turn_context: TurnContext,
        actor: Actor,
        clicked: bool,
        run: Callable[..., Reply],
        *args: Any,
    ) -> Reply:
        """An engine call, once for the activity's inbox row (`Inbox.once`), in a thread. A
        reply that cannot be shown goes to the conversation through the outbox, as `_answer`
        would have shown it (a clicked receipt shows nowhere: the card itself changes)."""
        entry = turn_context.turn_state.get(KEY)

        def where(reply: Reply) -> Destination | None:
            if reply.receipt and clicked:
                return None
            return Destination(actor.workspace, actor.channel, identity.PLATFORM)

        return await asyncio.to_thread(
            self.app.inbox.once, entry if isinstance(entry, Entry) else None, where, run, *args
        )

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        """The bot was added to a team, a group chat or a personal chat: remember the way in."""
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(member.id == bot_id for member in activity.members_added or []):
            channel = identity.channel_of(activity.conversation.id)
            await asyncio.to_thread(
                self._remember, activity, identity.workspace_of(activity), channel
            )
            await self.send(turn_context, text_activity(WELCOME))

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        channel = identity.channel_of(activity.conversation.id)
        await asyncio.to_thread(self._remember, activity, identity.workspace_of(activity), channel)

    # -- replies ------------------------------------------------------------------------------

    async def _answer(
        self, turn_context: TurnContext, actor: Actor, reply: Reply, *, clicked: bool
    ) -> None:
        """Show the reply in the conversation, then hand its effects to the postings service.

        Teams has no private replies: a receipt (a vote) is a one-line text when typed and
        nothing at all when a card was clicked — the card itself shows the new tally. An error is
        a text, unless it hands back a form to correct (a refused ballot, its messages next to
        the inputs), which is a card."""
        activity = turn_context.activity
        sent: Any = None
        shown = await asyncio.to_thread(self._shown, actor.workspace, reply, clicked)
        if shown is not None:
            answer = await self.send(turn_context, shown)
            is_card = bool(shown.attachments)
            sent = answer if is_card else None
        posted = (activity.conversation.id, sent.id) if sent is not None and sent.id else None
        origin = (activity.conversation.id, activity.reply_to_id) if clicked else None
        await self.app.postings.apply(reply.effects, actor=actor, posted=posted, origin=origin)

    async def send(self, turn_context: TurnContext, activity: Activity) -> Any:
        return await self.retry.run(lambda: turn_context.send_activity(activity), what="reply")

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _client(turn_context: TurnContext) -> ConnectorClient:
        return turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]

    async def _remember_if_new(self, activity: Activity, workspace: str, channel: str) -> None:
        """`_remember`, skipped when this process stored the same thing already: a message in
        a known conversation, from a known sender, writes nothing (and takes no thread)."""
        reference = conversation_reference(activity, channel)
        sender = activity.from_property
        who = (sender.aad_object_id, sender.name, sender.id) if sender is not None else None
        known = self._remembered.get((workspace, channel))
        if known is not None and known[1] == who and refs.same_way_in(known[0], reference):
            return
        await asyncio.to_thread(self._remember, activity, workspace, channel, reference)
        if len(self._remembered) >= REMEMBERED:
            self._remembered.clear()
        self._remembered[(workspace, channel)] = (reference, who)

    def _remember(
        self,
        activity: Activity,
        workspace: str,
        channel: str,
        reference: dict[str, Any] | None = None,
    ) -> None:
        now = self.app.clock.now()
        refs.save_reference(
            self.app.db,
            workspace=workspace,
            channel=channel,
            reference=reference or conversation_reference(activity, channel),
            now=now,
        )
        sender = activity.from_property
        if sender is not None and sender.aad_object_id:
            people.remember(
                self.app.db,
                workspace,
                names={sender.aad_object_id: sender.name} if sender.name else {},
                aliases={sender.id: sender.aad_object_id} if sender.id else {},
                now=now,
            )

    def _shown(self, workspace: str, reply: Reply, clicked: bool) -> Activity | None:
        """What `_answer` sends for a reply, built in a worker thread (the names of the people
        it mentions are read from the database; a card is built): None for a clicked receipt."""
        wanted = cards.mentioned_ids(reply)
        names = refs.load_names(self.app.db, workspace, wanted) if wanted else {}
        if not reply.ok and not any(isinstance(b, Form) for b in reply.blocks):
            return text_activity(cards.as_text(reply, names))
        if reply.receipt:
            return None if clicked else text_activity(cards.as_text(reply, names))
        return card_activity(cards.render(reply, names=names), summary=reply.text)

    async def _mentions(
        self, client: ConnectorClient, activity: Activity
    ) -> tuple[tuple[str, str], ...]:
        """Mentioned people as (name, AAD id). Mention entities carry `29:` ids; those known from
        rosters come from the database, any other is asked of the connector once."""
        mentioned = identity.mentioned_people(activity)
        if not mentioned:
            return ()
        workspace = identity.workspace_of(activity)
        unknown = [teams_id for _, teams_id, aad in mentioned if not aad]
        known = await asyncio.to_thread(people.aad_ids, self.app.db, workspace, unknown)
        learned: dict[str, str] = {}
        for teams_id in unknown:
            if teams_id in known:
                continue
            try:
                member = await client.conversations.get_conversation_member(
                    activity.conversation.id, teams_id
                )
            except Exception as exc:
                log.info("teams: no AAD id for mention %s: %s", teams_id, exc)
                continue
            if member.aad_object_id:
                learned[teams_id] = member.aad_object_id
        if learned:
            await asyncio.to_thread(
                people.remember,
                self.app.db,
                workspace,
                names={},
                aliases=learned,
                now=self.app.clock.now(),
            )
        return identity.mentions_of(activity, (known | learned).get)


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """A bug in the adapter, or the database away (the engine raises nothing else: a lost
    connection or a conflict, `storage.db.transient`): log it with a reference to quote."""
    ref = secrets.token_hex(4)
    log.error("teams turn failed [ref %s]", ref, exc_info=error)
    if turn_context.activity.type != ActivityTypes.message:
        return
    try:
        await turn_context.send_activity(
            text_activity(f"Something went wrong on our side (ref {ref}). Please try again.")
        )
    except Exception:
        log.exception("teams: could not report error ref %s", ref)
