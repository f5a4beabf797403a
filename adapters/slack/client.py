"""The Slack Web API client, configured once: where it points and how it retries.

slack-sdk retries only connection errors by default. A 429 or a Slack 5xx during a burst of votes
would otherwise drop a poll update, so interactive calls also wait out `Retry-After` and retry
server errors. The outbox sender leaves both to the dispatcher, which owns backoff for its rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import cast

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.settings import Settings


class _LogsAtItsLevel(logging.LoggerAdapter[logging.Logger]):
    """A slack-sdk logger whose `level` is the level it logs at.

    slack-sdk builds the debug lines of every Web API call — the whole request and the answer,
    Block Kit included — whenever `logger.level <= DEBUG`, which holds for a logger with no level
    of its own (0, like slack-sdk's), and then hands them to `logger.debug`, which drops them
    unless debug output is on (`align -v`). Here `level` says WARNING, or DEBUG under -v: the
    same lines are logged, and none is built for nothing — 30 us of CPU per chat.postMessage
    of an empty list (bench_slack's `decisions`), more the longer the message. An adapter, not
    a Logger: slack-sdk only reads `level` and calls the logging methods."""

    @property
    def level(self) -> int:
        return self.logger.getEffectiveLevel()


SDK_LOG = cast(
    logging.Logger, _LogsAtItsLevel(logging.getLogger("slack_sdk.web.async_base_client"))
)
"""The logger of every Web API client Align builds (Bolt's per-request clients take their app's)."""
WEBHOOK_LOG = cast(
    logging.Logger, _LogsAtItsLevel(logging.getLogger("slack_sdk.webhook.async_client"))
)
"""The logger of the response_url clients (the same debug lines, the same way)."""


WEB_API_TIMEOUT = 30.0
"""Seconds a Web API call or response_url answer may take in all: slack-sdk's own default,
which it applies only to the sessions it opens itself — a shared one brings its own timeout."""


def shared_session() -> aiohttp.ClientSession:
    """The connection pool a server's Slack calls share (`web_client(session=…)`, Bolt's
    per-request clients, response_url answers). With aiohttp's default timeout (5 minutes) one
    hung call to Slack would hold its command, its worker thread slot and its reply for that
    long; slack-sdk's 30 s is what its own sessions get."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT))


def retry_handlers(*, interactive: bool = True) -> list[AsyncRetryHandler]:
    handlers: list[AsyncRetryHandler] = [AsyncConnectionErrorRetryHandler(max_retry_count=2)]
    if interactive:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    return handlers


def web_client(
    settings: Settings,
    *,
    token: str | None = None,
    interactive: bool = True,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """An AsyncWebClient on SLACK_API_URL (tests point it at the fake).

    Pass the server's shared `session`: without one, slack-sdk opens a new connection pool, and
    a new TCP (and TLS) connection, for every single call.
    """
    return AsyncWebClient(
        token=token or None,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(interactive=interactive),
        session=session,
        logger=SDK_LOG,
    )


class NoToken(LookupError):
    """Align holds no bot token for that workspace (uninstalled, or never installed)."""


_BATCH: ContextVar[dict[str, asyncio.Future[str | None]] | None] = ContextVar(
    "align_slack_batch_tokens", default=None
)
"""The tokens looked up in the current outbox batch (`WorkspaceClients.batch`), by workspace."""


class WorkspaceClients:
    """A Web API client per workspace, for work that happens outside a request (the outbox,
    live-message updates, rosters): the one bot token, or the workspace's installation."""

    def __init__(
        self,
        settings: Settings,
        *,
        installation_store: AsyncInstallationStore | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self.installation_store = installation_store
        self.session = session
        self._clients: dict[tuple[str, bool], AsyncWebClient] = {}

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block — and in every task started in it — each workspace's installation
        is looked up once: the outbox dispatcher's pass over its due rows (forty digests to one
        workspace were forty reads of its installation). A token revoked meanwhile fails its
        posts (`invalid_auth`), as the missing token would have."""
        reset = _BATCH.set({})
        try:
            yield
        finally:
            _BATCH.reset(reset)

    async def token(self, workspace: str) -> str:
        token: str | None = self.settings.slack_bot_token
        if self.installation_store is not None:
            found = _BATCH.get()
            if found is None:
                token = await self._installed(workspace)
            else:
                if workspace not in found:
                    lookup = asyncio.ensure_future(self._installed(workspace))
                    found[workspace] = lookup
                    # Told to every caller that awaits it; none left unretrieved if nobody does.
                    lookup.add_done_callback(lambda done: done.cancelled() or done.exception())
                token = await asyncio.shield(found[workspace])
        if not token:
            raise NoToken(f"no Slack token for {workspace}")
        return token

    async def _installed(self, workspace: str) -> str | None:
        assert self.installation_store is not None
        ident = workspace.removeprefix("slack:")
        org = ident.startswith("E")
        bot = await self.installation_store.async_find_bot(
            enterprise_id=ident if org else None,
            team_id=None if org else ident,
            is_enterprise_install=org,
        )
        return bot.bot_token if bot is not None else None

    async def client(self, workspace: str, *, interactive: bool) -> AsyncWebClient:
        """`interactive` clients wait out rate limits themselves; the outbox's leave that to
        the dispatcher (see `retry_handlers`)."""
        token = await self.token(workspace)
        key = (token, interactive)
        found = self._clients.get(key)
        if found is None:
            found = web_client(
                self.settings, token=token, interactive=interactive, session=self.session
            )
            self._clients[key] = found
        return found
