"""`TeamsSender`: how the outbox dispatcher posts to Teams (digests, nudges, poll results).

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

from aiohttp import ClientError
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing
from adapters.teams import cards, refs
from adapters.teams.bot import card_activity, text_activity
from adapters.teams.retry import retry_after_of, status_of

log = logging.getLogger("align.teams.delivery")

PERMANENT = frozenset({400, 401, 403, 404, 410, 413})


class TeamsSender:
    platform = "teams"

    def __init__(self, app: App, adapter: CloudAdapter, *, app_id: str = "") -> None:
        self.app = app
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, message: Outgoing) -> None:
        stored = await asyncio.to_thread(
            refs.load_reference, self.app.db, workspace=message.workspace, channel=message.channel
        )
        if stored is None:
            raise DeliveryError(
                f"no Teams conversation reference for {message.channel}: the bot has not been "
                "added there, or has not heard from it since",
                permanent=True,
            )
        reference = ConversationReference().deserialize(stored)
        reply = message.reply
        wanted = cards.mentioned_ids(reply)
        names = await asyncio.to_thread(
            refs.load_names, self.app.db, workspace=message.workspace, users=wanted
        )
        if reply.ok:
            activity = card_activity(cards.render(reply, names=names), summary=reply.text)
        else:
            activity = text_activity(cards.as_text(reply, names))
        failure: list[Exception] = []

        async def post(turn_context: TurnContext) -> None:
            # Exceptions inside the turn would go to the adapter's on_turn_error (which answers
            # in the conversation); keep them here and classify them below instead.
            try:
                client = turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]
                activity.from_property = reference.bot
                activity.conversation = reference.conversation
                await client.conversations.send_to_conversation(reference.conversation.id, activity)
            except Exception as exc:
                failure.append(exc)

        try:
            await self.adapter.continue_conversation(reference, post, bot_app_id=self.app_id)
        except Exception as exc:
            failure.append(exc)
        if failure:
            raise self._classify(failure[0], message) from failure[0]

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
