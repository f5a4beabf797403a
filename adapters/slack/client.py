"""The Slack Web API client, configured once: where it points and how it retries.

slack-sdk retries only connection errors by default. A 429 or a Slack 5xx during a burst of votes
would otherwise drop a poll update, so interactive calls also wait out `Retry-After` and retry
server errors. The outbox sender leaves both to the dispatcher, which owns backoff for its rows.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.settings import Settings


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
    )
