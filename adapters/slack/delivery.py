"""The outbox's Slack sender: a stored Reply becomes a Block Kit channel message.

The dispatcher owns retries, so this client waits out neither rate limits nor outages: a 429
comes back as `DeliveryError(retry_after=…)` at once. Errors no retry can fix (the channel is
gone, the bot was removed or uninstalled) are permanent; anything else (5xx, network) is worth
retrying.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.bootstrap import App
from adapters.delivery import DeliveryError, Outgoing, retry_after_seconds
from adapters.slack import blocks
from adapters.slack.client import web_client
from adapters.slack.live_polls import LivePolls
from bot.context import Actor

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


class SlackSender:
    """Sends outbox messages to Slack channels (implements `adapters.delivery.Sender`)."""

    platform = "slack"

    def __init__(
        self,
        app: App,
        *,
        installation_store: AsyncInstallationStore | None = None,
        live: LivePolls | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.app = app
        self.session = session
        self.installation_store = installation_store
        self.live = live
        self._clients: dict[str, AsyncWebClient] = {}

    async def _client(self, workspace: str) -> AsyncWebClient:
        token = self.app.settings.slack_bot_token if self.installation_store is None else None
        if self.installation_store is not None:
            ident = workspace.removeprefix("slack:")
            org = ident.startswith("E")
            bot = await self.installation_store.async_find_bot(
                enterprise_id=ident if org else None,
                team_id=None if org else ident,
                is_enterprise_install=org,
            )
            token = bot.bot_token if bot is not None else None
        if not token:
            raise DeliveryError(f"no Slack token for {workspace}", permanent=True)
        client = self._clients.get(token)
        if client is None:
            client = web_client(
                self.app.settings, token=token, interactive=False, session=self.session
            )
            self._clients[token] = client
        return client

    async def send(self, message: Outgoing) -> None:
        client = await self._client(message.workspace)
        reply = message.reply
        try:
            posted = await client.chat_postMessage(
                channel=message.channel,
                unfurl_links=False,
                unfurl_media=False,
                **blocks.message(reply),
            )
        except SlackApiError as exc:
            raise _translate(exc) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"network: {type(exc).__name__}: {exc}") from exc
        if reply.poll:
            await self._track_poll(client, message, reply.poll, posted.get("ts"))

    async def _track_poll(
        self, client: AsyncWebClient, message: Outgoing, poll: str, ts: str | None
    ) -> None:
        """A poll posted by the scheduler follows its votes too; a closed one (results at
        close) brings its earlier postings up to date, buttons gone."""
        actor = Actor(
            workspace=message.workspace, channel=message.channel, user="", platform="slack"
        )
        try:
            if ts and blocks.has_ballot(message.reply):
                await asyncio.to_thread(
                    self.app.engine.remember_poll_message,
                    actor,
                    poll,
                    conversation=message.channel,
                    message_id=ts,
                )
            elif self.live is not None:
                self.live.changed(client, actor, poll)
        except Exception:  # the message is out; tracking it is a nicety
            log.exception("tracking %s after delivery failed", poll)


def _translate(exc: SlackApiError) -> DeliveryError:
    response: Any = exc.response
    error = str(response.get("error") or "unknown_error")
    if response.status_code == 429 or error == "ratelimited":
        retry_after = retry_after_seconds(response.headers, 1.0)
        return DeliveryError(f"slack: {error}", retry_after=retry_after)
    if error in PERMANENT_ERRORS:
        return DeliveryError(f"slack: {error}", permanent=True)
    return DeliveryError(f"slack: {error} (HTTP {response.status_code})")
