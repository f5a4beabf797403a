"""Delivers outbox rows of platform "webhook": signed JSON POSTs with httpx, to public hosts only.

Signing: the body is signed when it is sent (not when it was queued), so a receiver may reject
stale timestamps: `X-Align-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed with
the webhook's own secret (bot/webhooks.signing_secret), `X-Align-Timestamp: <unix seconds>`.
`X-Align-Delivery` (also sent as `Idempotency-Key`) is the outbox row's stable key: a resend after
a crash carries the same one, so a receiver can drop the duplicate.

Reaching only what was checked (bot/webhook_targets.py says what may be reached):

- the host is resolved here, before every delivery, every answer is checked, and the connection
  goes to the checked address — the URL's host is replaced by that address, the name travels in
  the Host header and as the TLS server name (SNI), so the certificate is still verified for the
  name. A second lookup that could answer differently (DNS rebinding) never happens;
- no redirects (a 3xx fails for good), no connection reuse (a pooled connection could carry
  one name's request over another name's TLS session to a shared address);
- one deadline for the whole delivery (lookup, connect, TLS, upload, response), so a receiver
  that drip-feeds its answer is cut off, and at most RESPONSE_CAP bytes of the response are read,
  raw (not decompressed) — the status is what matters;
- an internal address, found now or at `webhook add`, is a permanent failure, not retried.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Sequence

import httpx

from adapters.delivery import DeliveryError, Outgoing, retry_after_seconds
from bot.clock import Clock, SystemClock
from bot.webhook_targets import (
    TargetPolicy,
    TargetRefused,
    Unresolved,
    parse_target,
    resolve_checked,
)
from bot.webhooks import sign, signing_secret

DEADLINE_SECONDS = 10.0
"""The whole delivery, start to end. Receivers are told to answer fast (and work later)."""
RESPONSE_CAP = 4096
"""Bytes of a response read at most (for the error message); the rest is never received."""
TIMEOUT = httpx.Timeout(DEADLINE_SECONDS, connect=5.0)


def system_resolve(host: str, port: int) -> Sequence[str]:
    """The operating system's answer for `host` (A and AAAA), as address strings."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise Unresolved(host) from exc
    return [str(info[4][0]) for info in infos]


class WebhookSender:
    platform = "webhook"

    def __init__(
        self,
        secret: bytes,
        *,
        targets: TargetPolicy | None = None,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        verify: ssl.SSLContext | bool = True,
        deadline: float = DEADLINE_SECONDS,
        response_cap: int = RESPONSE_CAP,
    ) -> None:
        self.secret = secret
        self.targets = targets or TargetPolicy(resolve=system_resolve)
        self.clock = clock or SystemClock()
        self.deadline = deadline
        self.response_cap = response_cap
        self._verify = verify
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=TIMEOUT,
                follow_redirects=False,
                verify=self._verify,
                trust_env=False,  # no proxy from the environment between us and the check
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    async def send(self, message: Outgoing) -> None:
        url = message.reply.data.get("url")
        body_obj = message.reply.data.get("body")
        if not url or body_obj is None:
            raise DeliveryError("webhook message without url or body", permanent=True)
        body = json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
        key = signing_secret(self.secret, message.reply.data.get("key_salt"))
        try:
            async with asyncio.timeout(self.deadline):
                status, headers, head = await self._post(str(url), body, key, message)
        except TargetRefused as exc:
            raise DeliveryError(f"webhook {url}: {exc}", permanent=True) from exc
        except Unresolved as exc:
            raise DeliveryError(f"webhook {url}: {exc} does not resolve") from exc
        except TimeoutError as exc:
            raise DeliveryError(f"webhook {url}: no answer within {self.deadline:g} s") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {url}: {type(exc).__name__}: {exc}") from exc
        if status < 300:
            return
        detail = f"webhook {url}: HTTP {status} {head[:200]!r}"
        if 300 <= status < 400:
            raise DeliveryError(detail + " (redirects are not followed)", permanent=True)
        if status == 429:
            raise DeliveryError(detail, retry_after=retry_after_seconds(headers, 30.0))
        if status >= 500 or status == 408:
            raise DeliveryError(detail)
        raise DeliveryError(detail, permanent=True)

    async def _post(
        self, url: str, body: bytes, key: bytes, message: Outgoing
    ) -> tuple[int, httpx.Headers, bytes]:
        target = parse_target(url, self.targets)
        addresses = await asyncio.to_thread(resolve_checked, target, self.targets)
        address = addresses[0]
        request_url = httpx.URL(url).copy_with(host=str(address))
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "Align-Webhooks/1",
            "X-Align-Timestamp": timestamp,
            "X-Align-Signature": "v1=" + sign(key, timestamp, body),
            "X-Align-Delivery": message.idempotency_key,
            "Idempotency-Key": message.idempotency_key,
        }
        extensions = {"sni_hostname": target.host} if target.address is None else {}
        request = self.client.build_request(
            "POST", request_url, content=body, headers=headers, extensions=extensions
        )
        response = await self.client.send(request, stream=True)
        try:
            head = bytearray()
            async for chunk in response.aiter_raw():
                head += chunk[: self.response_cap - len(head)]
                if len(head) >= self.response_cap:
                    break
        finally:
            await response.aclose()
        return response.status_code, response.headers, bytes(head)

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
