"""Socket Mode's first connection: a refused token stops the server, an outage is waited out.

slack-sdk's Socket Mode client retries *everything* every ten seconds, forever, with a full
traceback each time — an `invalid_auth` included, which no retry can fix. So the first
`apps.connections.open` is made here: a token Slack refuses raises `ConfigError` (`align serve`
exits with that sentence), a network error or a Slack outage is logged as one line and retried
with exponential backoff (the `sleep` is injected, so tests do not wait). Once Slack hands out a
WebSocket URL the client connects to it and its own reconnect logic takes over, logging through
`align.slack.socket` with tracebacks kept for `-v`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.logs import one_line_logger
from adapters.preflight import REFUSED, ConfigError, app_token_refused, describe

log = logging.getLogger("align.slack.socket")

Sleep = Callable[[float], Awaitable[None]]
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


async def connect(
    bolt: AsyncApp,
    app_token: str,
    *,
    api_url: str,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep = asyncio.sleep,
) -> AsyncSocketModeHandler:
    """A connected Socket Mode handler for `bolt`, or ConfigError when Slack refuses the token."""
    # apps.connections.open on a client of its own: no retry handlers, the loop below is the
    # retry policy (the Bolt client would also retry connection errors with real sleeps).
    opener = AsyncWebClient(base_url=api_url, session=session, retry_handlers=[], timeout=10)
    url = await _first_url(opener, app_token, api_url, sleep)
    handler = AsyncSocketModeHandler(
        bolt, app_token, logger=one_line_logger("align.slack.socket"), web_client=opener
    )
    handler.client.wss_uri = url
    await handler.connect_async()
    log.info("Slack Socket Mode connected")
    return handler


async def _first_url(opener: AsyncWebClient, app_token: str, api_url: str, sleep: Sleep) -> str:
    delay = FIRST_DELAY
    while True:
        try:
            opened = await opener.apps_connections_open(app_token=app_token)
            return str(opened["url"])
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            if error in REFUSED:
                raise ConfigError(app_token_refused(error)) from exc
            why = f"apps.connections.open answered {error}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            why = f"cannot reach Slack at {api_url} ({describe(exc)})"
        log.warning("Slack Socket Mode: %s; retrying in %.0f s", why, delay)
        await sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
