"""The outbox's Slack sender: a stored Reply becomes a Block Kit channel message; and the
Slack side of live messages: a poll's message edited in place with `chat.update`.

The dispatcher owns retries, so this client waits out neither rate limits nor outages: a 429
comes back as `DeliveryError(retry_after=…)` at once. Errors no retry can fix (the channel is
gone, the bot was removed or uninstalled) are permanent; anything else (5xx, network) is worth
retrying.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing, retry_after_seconds
from adapters.postings import Posting, PostingGone
from adapters.slack import blocks
from adapters.slack.client import NoToken, WorkspaceClients
from bot.context import Actor
from bot.views import Reply

log = logging.getLogger("align.slack.delivery")

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "restricted_action",
        "team_access_not_granted",
        "ekm_access_denied",
        "invalid_blocks",
        "msg_too_long",
        "no_installation",
    }
)


GONE_ERRORS = frozenset(
    {"message_not_found", "cant_update_message", "channel_not_found", "is_archived"}
)


class SlackSender:
    """Sends outbox messages to Slack channels (implements `adapters.delivery.Sender`) and edits
    live messages in place (the Slack `Updater` of `adapters/postings.py`)."""

    platform = "slack"

    def __init__(self, app: App, clients: WorkspaceClients) -> None:
        self.app = app
        self.clients = clients

    async def send(self, message: Outgoing) -> None:
        try:
            client = await self.clients.client(message.workspace, interactive=False)
        except NoToken as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        reply = message.reply
        try:
            posted = await client.chat_postMessage(
                # A message for one person: posting to their user id is the app's DM with them.
                channel=reply.direct_to or message.channel,
                unfurl_links=False,
                unfurl_media=False,
                **blocks.message(reply),
            )
        except SlackApiError as exc:
            raise _translate(exc) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"network: {type(exc).__name__}: {exc}") from exc
        ts = posted.get("ts")
        where = Actor(message.workspace, message.channel, user="", platform=self.platform)
        landed = str(posted.get("channel") or message.channel)
        await self.app.postings.apply(
            reply.effects, actor=where, posted=(landed, ts) if ts and not reply.direct_to else None
        )

    async def update(self, posting: Posting, view: Reply) -> None:
        client = await self.clients.client(posting.workspace, interactive=True)
        try:
            await client.chat_update(
                channel=posting.conversation, ts=posting.message_id, **blocks.message(view)
            )
        except SlackApiError as exc:
            if exc.response.get("error") in GONE_ERRORS:
                raise PostingGone(str(exc.response.get("error"))) from exc
            raise


def _translate(exc: SlackApiError) -> DeliveryError:
    response: Any = exc.response
    error = str(response.get("error") or "unknown_error")
    if response.status_code == 429 or error == "ratelimited":
        retry_after = retry_after_seconds(response.headers, 1.0)
        return DeliveryError(f"slack: {error}", retry_after=retry_after)
    if error in PERMANENT_ERRORS:
        return DeliveryError(f"slack: {error}", permanent=True)
    return DeliveryError(f"slack: {error} (HTTP {response.status_code})")
