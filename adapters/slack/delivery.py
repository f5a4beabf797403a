"""The outbox's Slack sender: a stored Reply becomes a Block Kit channel message; and the
Slack side of live messages: a poll's message edited in place with `chat.update`.

The dispatcher owns retries, so this client waits out neither rate limits nor outages: a 429
comes back as `DeliveryError(retry_after=…)` at once. Errors no retry can fix (the channel is
gone, the bot was removed or uninstalled) are permanent; anything else (5xx, network) is worth
retrying.

Slack has no idempotency key for `chat.postMessage`, so every outbox post carries its own as
message metadata (`event_type` "align_outbox", `event_payload.key`). Before posting a row whose
earlier attempt may have reached Slack (its worker died mid-send, or the answer never came), the
sender reads the channel's recent history (`conversations.history` with
`include_all_metadata`, the newest HISTORY_PAGES × 200 messages) for that key: if the message is
there it is not posted again — the earlier post counts, and becomes the live message if it is
one. Without the history scopes (an install from before they were asked for) it cannot look,
and posts: at least once, as before.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

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
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "channel_not_found",
        "is_archived",
        "is_inactive",
    }
)
"""`chat.update` errors that mean this message can never be edited by the app again: it is
deleted, not the app's to edit, past the workspace's edit window, or in a channel that is gone,
archived or frozen. Its live message is forgotten (`PostingGone`). Errors about the installation
rather than the message (`invalid_auth`, `not_authed`, `account_inactive`, `token_revoked`,
`not_in_channel`, ...) are not here: a reinstall or an invitation back cures them, so the message
is kept and tried again, less and less often (adapters/postings.py)."""

MARKER = "align_outbox"
"""The metadata event type of every outbox post; its payload carries the row's key."""
HISTORY_PAGES = 3
CANNOT_LOOK = frozenset({"missing_scope", "not_in_channel", "channel_not_found", "no_permission"})
"""History errors after which looking is pointless: the row is posted (or fails) as usual."""


class SlackSender:
    """Sends outbox messages to Slack channels (implements `adapters.delivery.Sender`) and edits
    live messages in place (the Slack `Updater` of `adapters/postings.py`)."""

    platform = "slack"

    def __init__(self, app: App, clients: WorkspaceClients) -> None:
        self.app = app
        self.clients = clients

    def batch(self) -> AbstractContextManager[None]:
        """The dispatcher's pass over due rows: each workspace's installation is read once."""
        return self.clients.batch()

    async def send(self, message: Outgoing) -> None:
        try:
            client = await self.clients.client(message.workspace, interactive=False)
        except NoToken as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        reply = message.reply
        # A message for one person goes to their user id: the app's DM with them. A DM is not
        # looked for in history first (the row knows no DM channel id to look in), so one
        # retried after a crash between post and mark may arrive twice — the outbox's own
        # at-least-once, with the same key.
        looked = message.tried_before and not reply.direct_to
        ts = await self._earlier_post(client, message) if looked else None
        if ts is not None:
            log.info(
                "outbox %s is already in %s (ts %s): not posted again",
                message.idempotency_key,
                message.channel,
                ts,
            )
        else:
            body = await asyncio.to_thread(blocks.message, reply)
            try:
                posted = await client.chat_postMessage(
                    channel=reply.direct_to or message.channel,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata={
                        "event_type": MARKER,
                        "event_payload": {"key": message.idempotency_key},
                    },
                    **body,
                )
            except SlackApiError as exc:
                raise _translate(exc) from exc
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise DeliveryError(f"network: {type(exc).__name__}: {exc}") from exc
            ts = posted.get("ts")
        where = Actor(message.workspace, message.channel, user="", platform=self.platform)
        await self.app.postings.apply(
            reply.effects,
            actor=where,
            posted=(message.channel, ts) if ts and not reply.direct_to else None,
        )

    async def _earlier_post(self, client: AsyncWebClient, message: Outgoing) -> str | None:
        """The ts of the message an earlier attempt of this row posted, if the channel's recent
        history has it. A failure to look that a retry may cure is a failure of this attempt
        (better late than twice); one no retry cures means posting without looking."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                page = await client.conversations_history(
                    channel=message.channel, limit=200, include_all_metadata=True, cursor=cursor
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                if error in CANNOT_LOOK:
                    log.warning(
                        "cannot look for an earlier post of %s in %s (%s); posting it",
                        message.idempotency_key,
                        message.channel,
                        error,
                    )
                    return None
                raise _translate(exc) from exc
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise DeliveryError(f"network: {type(exc).__name__}: {exc}") from exc
            for found in page.get("messages") or []:
                metadata = found.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == MARKER and payload.get("key") == (
                    message.idempotency_key
                ):
                    return str(found.get("ts"))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or not page.get("has_more"):
                return None
        return None

    async def update(self, posting: Posting, view: Reply) -> None:
        client = await self.clients.client(posting.workspace, interactive=True)
        body = await asyncio.to_thread(blocks.message, view)  # a big poll's Block Kit: off the loop
        try:
            await client.chat_update(channel=posting.conversation, ts=posting.message_id, **body)
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
