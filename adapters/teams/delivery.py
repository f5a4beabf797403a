"""`TeamsSender`: how the outbox dispatcher posts to Teams (digests, nudges, poll results), and
how live cards are edited in place.

A proactive message needs a conversation reference stored from an earlier turn (refs.py). It is
sent through `CloudAdapter.continue_conversation`, which authenticates a connector client for the
reference's service URL, and posted with `send_to_conversation` — a new post in the channel.
(`turn_context.send_activity` inside a continuation would address it as a reply to the
continuation's made-up activity id.)

Failures are classified for the dispatcher, which owns retries and backoff: 429 → retry after the
connector's Retry-After; 5xx and network errors → retry with backoff; 401/403/404 (the bot was
removed, the conversation is gone) and a missing reference → permanent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)
from botframework.connector.aio import ConnectorClient
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing
from adapters.postings import Posting, PostingGone
from adapters.teams import cards, refs
from adapters.teams.bot import card_activity, text_activity
from adapters.teams.retry import RetryPolicy, retry_after_of, status_of
from bot.context import Actor
from bot.views import Reply

log = logging.getLogger("align.teams.delivery")

PERMANENT = frozenset({400, 401, 403, 404, 410, 413})


class TeamsSender:
    """Posts outbox messages into Teams conversations (implements `adapters.delivery.Sender`)
    and edits live cards in place (the Teams `Updater` of `adapters/postings.py`) — both through
    the conversation reference, so neither needs an incoming turn."""

    platform = "teams"

    def __init__(
        self, app: App, adapter: CloudAdapter, *, app_id: str = "", retry: RetryPolicy
    ) -> None:
        self.app = app
        self.adapter = adapter
        self.app_id = app_id
        self.retry = retry

    async def _reference(self, workspace: str, channel: str) -> ConversationReference | None:
        stored = await asyncio.to_thread(
            refs.load_reference, self.app.db, workspace=workspace, channel=channel
        )
        return None if stored is None else ConversationReference().deserialize(stored)

    async def _card(self, workspace: str, reply: Reply) -> Activity:
        """The activity for a reply, built in a worker thread, never on the event loop."""
        return await asyncio.to_thread(self._card_now, workspace, reply)

    def _card_now(self, workspace: str, reply: Reply) -> Activity:
        wanted = cards.mentioned_ids(reply)
        names = refs.load_names(self.app.db, workspace, wanted) if wanted else {}
        if reply.ok:
            return card_activity(cards.render(reply, names=names), summary=reply.text)
        ids = refs.load_teams_ids(self.app.db, workspace, reply.notify)
        return text_activity(cards.as_text(reply, names, ids))

    async def _continue(
        self, reference: ConversationReference, call: Callable[[ConnectorClient], Awaitable[Any]]
    ) -> Any:
        """Run `call` with a connector client authenticated for the reference's service URL.
        Exceptions inside the turn would go to the adapter's on_turn_error (which answers in
        the conversation); they are carried out and raised here instead."""
        outcome: list[Any] = []
        failure: list[Exception] = []

        async def turn(turn_context: TurnContext) -> None:
            try:
                client = turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]
                outcome.append(await call(client))
            except Exception as exc:
                failure.append(exc)

        await self.adapter.continue_conversation(reference, turn, bot_app_id=self.app_id)
        if failure:
            raise failure[0]
        return outcome[0] if outcome else None

    async def send(self, message: Outgoing) -> None:
        reference = await self._reference(message.workspace, message.channel)
        if reference is None:
            raise DeliveryError(
                f"no Teams conversation reference for {message.channel}: the bot has not been "
                "added there, or has not heard from it since",
                permanent=True,
            )
        activity = await self._card(message.workspace, message.reply)
        activity.from_property = reference.bot
        if message.reply.direct_to:
            await self._send_direct(message, reference, activity, message.reply.direct_to)
            return
        activity.conversation = reference.conversation
        conversation = reference.conversation.id
        try:
            sent = await self._continue(
                reference,
                lambda client: client.conversations.send_to_conversation(conversation, activity),
            )
        except Exception as exc:
            raise self._classify(exc, message) from exc
        where = Actor(message.workspace, message.channel, user="", platform=self.platform)
        message_id = getattr(sent, "id", None)
        await self.app.postings.apply(
            message.reply.effects,
            actor=where,
            posted=(conversation, str(message_id)) if message_id else None,
        )

    async def _send_direct(
        self,
        message: Outgoing,
        reference: ConversationReference,
        activity: Activity,
        user: str,
    ) -> None:
        """A message for one person: the bot's personal chat with them, created (or found — a
        1:1 chat with a bot is one conversation, so a retry lands in the same one) through the
        connector of the proposal's channel, in its tenant."""
        member = await asyncio.to_thread(refs.teams_id, self.app.db, message.workspace, user)
        tenant = reference.conversation.tenant_id or message.workspace.removeprefix("teams:")
        parameters = ConversationParameters(
            is_group=False,
            bot=reference.bot,
            members=[ChannelAccount(id=member)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}},
        )

        async def call(client: ConnectorClient) -> Any:
            created = await client.conversations.create_conversation(parameters)
            activity.conversation = ConversationAccount(id=created.id, tenant_id=tenant)
            return await client.conversations.send_to_conversation(created.id, activity)

        try:
            await self._continue(reference, call)
        except Exception as exc:
            raise self._classify(exc, message) from exc

    async def update(self, posting: Posting, view: Reply) -> None:
        reference = await self._reference(posting.workspace, posting.channel)
        if reference is None:
            raise PostingGone(f"no conversation reference for {posting.channel}")
        activity = await self._card(posting.workspace, view)
        activity.id = posting.message_id
        activity.conversation = ConversationAccount(id=posting.conversation)
        try:
            await self.retry.run(
                lambda: self._continue(
                    reference,
                    lambda client: client.conversations.update_activity(
                        posting.conversation, posting.message_id, activity
                    ),
                ),
                what="update",
            )
        except HttpOperationError as exc:
            if status_of(exc) in (404, 410):
                raise PostingGone(f"HTTP {status_of(exc)}") from exc
            raise

    @staticmethod
    def _classify(exc: Exception, message: Outgoing) -> DeliveryError:
        where = f"Teams {message.channel}"
        if isinstance(exc, HttpOperationError):
            status = status_of(exc)
            if status == 429:
                return DeliveryError(
                    f"{where}: rate limited (429)", retry_after=retry_after_of(exc, default=1.0)
                )
            if status in PERMANENT:
                return DeliveryError(f"{where}: HTTP {status} {exc}", permanent=True)
            return DeliveryError(f"{where}: HTTP {status} {exc}")
        if isinstance(exc, ClientRequestError | ClientError | TimeoutError | OSError):
            return DeliveryError(f"{where}: {type(exc).__name__}: {exc}")
        log.error("teams delivery to %s failed unexpectedly", message.channel, exc_info=exc)
        return DeliveryError(f"{where}: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        """Nothing pooled to close: each continuation makes its own connector client."""
        return None


__all__ = ["TeamsSender"]
