"""Bot Framework's signing keys, fetched off the event loop, with a timeout; unreachable is 503.

botframework-connector fetches the OpenID configuration and then the JWKS of the channel (and
the Emulator) with a plain `requests.get`: no timeout, on the event loop — a slow Microsoft
endpoint would freeze every other request of the server, Slack's included — and a failure
surfaces as whatever `requests` raised, indistinguishable at the endpoint from a bad token.

`install()` puts a `ThreadedOpenIdMetadata` in botframework's own metadata cache
(`JwtTokenExtractor.metadataCache`, keyed by URL) for the endpoints validation uses: the same
keys, the same refresh rules (daily; at most hourly for an unknown key id), fetched in a worker
thread with a timeout. When they cannot be fetched it raises `KeysUnavailable`, which
`/api/messages` answers with 503 (our side cannot check tokens right now; Teams retries) and
logs with its cause — never 401, which would blame the caller's token.

The subclassed `_OpenIdMetadata` is private to botframework-connector, which is pinned
(pyproject.toml); tests/teams/test_token_validation.py runs real RS256 tokens through it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import requests
from botframework.connector.auth import AuthenticationConstants, ChannelValidation
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdMetadata

from adapters.preflight import describe

FETCH_TIMEOUT = 10.0


class KeysUnavailable(Exception):
    """The Bot Framework signing keys could not be fetched (network, HTTP error, bad JSON)."""


class ThreadedOpenIdMetadata(_OpenIdMetadata):  # type: ignore[misc]
    # Two requests arriving together while the keys are stale both fetch them: harmless, and
    # simpler than a lock that would belong to one event loop.
    async def _refresh(self) -> None:
        try:
            keys = await asyncio.to_thread(fetch_keys, self.url)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise KeysUnavailable(f"{self.url}: {describe(exc)}") from exc
        self.keys = keys
        self.last_updated = datetime.now()  # naive local, as the base class compares it


def fetch_keys(url: str) -> list[dict[str, Any]]:
    """The OpenID configuration at `url`, then the keys of its `jwks_uri`."""
    config = requests.get(url, timeout=FETCH_TIMEOUT)
    config.raise_for_status()
    jwks_uri = config.json()["jwks_uri"]
    jwks = requests.get(jwks_uri, timeout=FETCH_TIMEOUT)
    jwks.raise_for_status()
    keys = jwks.json()["keys"]
    if not isinstance(keys, list):
        raise TypeError("the JWKS 'keys' is not a list")
    return keys


def metadata_urls() -> tuple[str, ...]:
    """Where channel and Emulator token validation read their keys, as configured now."""
    channel = (
        ChannelValidation.open_id_metadata_endpoint
        or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    )
    return (channel, AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL)


def install() -> None:
    """Make token validation fetch keys through ThreadedOpenIdMetadata (idempotent, cheap)."""
    cache = JwtTokenExtractor.metadataCache
    for url in metadata_urls():
        if not isinstance(cache.get(url), ThreadedOpenIdMetadata):
            cache[url] = ThreadedOpenIdMetadata(url)
