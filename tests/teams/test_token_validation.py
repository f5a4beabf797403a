"""Real Bot Framework token validation on `/api/messages`: RS256 channel tokens minted with our
own keys, published on 127.0.0.1 as Microsoft publishes its own (OpenID configuration → JWKS
with endorsements), and botframework-connector's channel validation pointed there.

A valid token is accepted and answered; every way a token can be wrong is a 401 that stores
nothing and calls nobody; signing keys that cannot be fetched are a 503 (our fault, Teams
retries), never a 401. The one thing not run for real is the bot's own outgoing token (Azure
AD's client-credentials grant at login.microsoftonline.com): that boundary answers a fixed
token, which the fake connector then sees on the reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
from botframework.connector.auth import ChannelValidation, MicrosoftAppCredentials
from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import ConversationRef, Decision, InboxEntry
from tests.fakes.bf_openid import FakeBotFrameworkKeys, new_key
from tests.teams.harness import TeamsServer, message, teams_server

APP_ID = "0b6fe6d1-0000-4000-8000-00000000b0b1"
APP = {"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "not-a-real-secret"}
AAD_TOKEN = "aad-token-for-the-connector"


@pytest.fixture
def keys() -> Iterator[FakeBotFrameworkKeys]:
    with FakeBotFrameworkKeys.running() as fake:
        yield fake


@pytest.fixture(autouse=True)
def channel_keys_at(keys: FakeBotFrameworkKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    """botframework's own switch for where channel validation reads its keys."""
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", keys.metadata_url)
    # The bot's outgoing token comes from Azure AD; that boundary answers a fixed token.
    monkeypatch.setattr(
        MicrosoftAppCredentials, "get_access_token", lambda self, force_refresh=False: AAD_TOKEN
    )


def stored(server: TeamsServer) -> dict[str, int]:
    with server.app.db.uow() as session:
        return {
            model.__name__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Decision, ConversationRef, InboxEntry)
        }


NOTHING = {"Decision": 0, "ConversationRef": 0, "InboxEntry": 0}


def test_a_valid_channel_token_is_accepted_and_answered(
    migrated_sqlite_url: str, clock: FakeClock, keys: FakeBotFrameworkKeys
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **APP) as server:
            activity = message("decide Ship it", service_url=server.service_url)
            token = keys.mint(audience=APP_ID, service_url=server.service_url)
            assert await server.post(activity, token=token) == 201
            [reply] = server.connector.sent_of("reply")
            assert reply.authorization == f"Bearer {AAD_TOKEN}"
            assert "Ship it" in str(reply.activity)
            assert stored(server)["Decision"] == 1
            assert keys.fetches == ["openid", "keys"]

    asyncio.run(main())


def test_every_kind_of_bad_token_is_401_and_changes_nothing(
    migrated_sqlite_url: str,
    clock: FakeClock,
    keys: FakeBotFrameworkKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = time.time()

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **APP) as server:
            url = server.service_url
            good = {"audience": APP_ID, "service_url": url}
            # name: (token, why botframework refuses it — checked, so each 401 is for its reason)
            bad_tokens = {
                "wrong key": (keys.mint(**good, key=new_key()), "InvalidSignatureError"),
                "unknown kid": (
                    keys.mint(**good, kid="not-published", key=new_key()),
                    "IndexError",  # botframework's lookup of a kid it does not have
                ),
                "expired": (
                    keys.mint(**good, not_before=now - 7200, expires=now - 3600),
                    "ExpiredSignatureError",
                ),
                "not yet valid": (
                    keys.mint(**good, not_before=now + 3600, expires=now + 7200),
                    "ImmatureSignatureError",
                ),
                "wrong audience": (
                    keys.mint(audience="another-bots-app-id", service_url=url),
                    "Invalid AppId",
                ),
                "wrong issuer": (
                    keys.mint(**good, issuer="https://sts.windows.net/attacker/"),
                    "No valid identity",  # an issuer not allowed is not even checked further
                ),
                "serviceUrl mismatch": (
                    keys.mint(audience=APP_ID, service_url="https://smba.example/elsewhere/"),
                    "service_url claim do not match",
                ),
                "HS256": (
                    keys.mint(**good, algorithm="HS256", secret="s" * 32),
                    "algorithm not in allowed list",
                ),
            }
            for name, (token, reason) in bad_tokens.items():
                caplog.clear()
                activity = message("decide Ship it", service_url=url)
                with caplog.at_level(logging.WARNING, logger="align.teams.http"):
                    assert await server.post(activity, token=token) == 401, name
                assert reason in caplog.text, (name, caplog.text)
            # A good token, for a channel the signing key is not endorsed for.
            other_channel = message("decide Ship it", service_url=url)
            other_channel["channelId"] = "webchat"
            token = keys.mint(**good)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="align.teams.http"):
                assert await server.post(other_channel, token=token) == 401
            assert "Could not validate endorsement key" in caplog.text

            assert server.connector.requests == []
            assert stored(server) == NOTHING
            # …and the same good token on a Teams activity goes through: the 401s were the
            # tokens', not a broken set-up.
            assert await server.post(message("decide Ship it", service_url=url), token=token) == 201

    asyncio.run(main())


@pytest.mark.parametrize("broken", ["openid", "keys"])
def test_signing_keys_out_of_reach_is_503_logged_and_stores_nothing(
    migrated_sqlite_url: str,
    clock: FakeClock,
    keys: FakeBotFrameworkKeys,
    broken: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **APP) as server:
            keys.fail_next(broken, status=503, times=1)
            activity = message("decide Ship it", service_url=server.service_url)
            token = keys.mint(audience=APP_ID, service_url=server.service_url)
            with caplog.at_level(logging.WARNING, logger="align.teams.http"):
                assert await server.post(activity, token=token) == 503
            assert "signing keys unavailable" in caplog.text
            assert "503" in caplog.text
            assert server.connector.requests == []
            assert stored(server) == NOTHING
            # Once the keys can be fetched again, Teams' redelivery goes through.
            assert await server.post(activity, token=token) == 201

    asyncio.run(main())


def test_an_unreachable_key_endpoint_is_503_not_401(
    migrated_sqlite_url: str, clock: FakeClock, keys: FakeBotFrameworkKeys
) -> None:
    keys.jwks_url_override = "http://127.0.0.1:9/v1/keys"  # the discard port: nothing listens

    async def main() -> None:
        async with teams_server(migrated_sqlite_url, clock, **APP) as server:
            activity = message("decide Ship it", service_url=server.service_url)
            token = keys.mint(audience=APP_ID, service_url=server.service_url)
            assert await server.post(activity, token=token) == 503
            assert server.connector.requests == []
            assert stored(server) == NOTHING

    asyncio.run(main())
