"""Bot Framework's token signing side, on 127.0.0.1: an OpenID configuration, a JWKS, and the
RS256 channel tokens signed with its keys.

Microsoft's channel signs each request to a bot with a key published at
`https://login.botframework.com/v1/.well-known/openidconfiguration` → `jwks_uri`, each key
carrying the channels it is endorsed for. This fake publishes keys of its own the same way, so
botframework-connector's real validation (signature, kid, expiry, issuer, audience, serviceUrl,
endorsements) runs against tokens the test mints: point `ChannelValidation.open_id_metadata_
endpoint` at `FakeBotFrameworkKeys.metadata_url`.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .slack_api import FakeHttpServer

__all__ = ["CHANNEL_ISSUER", "FakeBotFrameworkKeys"]

CHANNEL_ISSUER = "https://api.botframework.com"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeBotFrameworkKeys(FakeHttpServer):
    """Serves `/v1/.well-known/openidconfiguration` and `/v1/keys`; mints tokens.

    `keys` maps a kid to (private key, endorsements); only the public halves are published.
    `fail_next("openid" | "keys", status=…)` answers one of the two with an error.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.keys: dict[str, tuple[rsa.RSAPrivateKey, list[str]]] = {
            "channel-key-1": (new_key(), ["msteams", "emulator"]),
        }
        self.jwks_url_override: str | None = None
        self.fetches: list[str] = []

    @property
    def metadata_url(self) -> str:
        return self.root_url + "v1/.well-known/openidconfiguration"

    @property
    def jwks_url(self) -> str:
        return self.jwks_url_override or self.root_url + "v1/keys"

    def fail_next(self, target: str, status: int = 503, times: int = 1) -> None:
        """Answer the next `times` fetches of "openid" or "keys" with HTTP `status`."""
        self._add_failure(target, status, None, times, None)

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/keys", self._jwks)
        return app

    async def _openid(self, request: web.Request) -> web.Response:
        self._record(lambda: self.fetches.append("openid"))
        failure = self._take_failure("openid")
        if failure is not None:
            return web.Response(status=failure.status, text="unavailable")
        return web.json_response(
            {
                "issuer": CHANNEL_ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": self.jwks_url,
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self._record(lambda: self.fetches.append("keys"))
        failure = self._take_failure("keys")
        if failure is not None:
            return web.Response(status=failure.status, text="unavailable")
        published = []
        for kid, (private, endorsements) in self.keys.items():
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
            published.append({**jwk, "kid": kid, "use": "sig", "endorsements": endorsements})
        return web.json_response({"keys": published})

    def mint(
        self,
        *,
        audience: str,
        service_url: str,
        kid: str = "channel-key-1",
        key: rsa.RSAPrivateKey | None = None,
        issuer: str = CHANNEL_ISSUER,
        not_before: float | None = None,
        expires: float | None = None,
        algorithm: str = "RS256",
        secret: str = "",
    ) -> str:
        """A channel token as the Bot Framework signs it (RS256 with the kid's key); each
        argument bends one part of it for the negative cases."""
        now = time.time()
        claims = {
            "serviceurl": service_url,
            "nbf": int(now - 60 if not_before is None else not_before),
            "exp": int(now + 3600 if expires is None else expires),
            "iss": issuer,
            "aud": audience,
        }
        headers = {"kid": kid, "typ": "JWT"}
        if algorithm == "HS256":
            return jwt.encode(claims, secret, algorithm="HS256", headers=headers)
        signer = key or self.keys[kid][0]
        return jwt.encode(claims, signer, algorithm=algorithm, headers=headers)
