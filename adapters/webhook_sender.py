"""Delivers outbox rows of platform "webhook": signed JSON POSTs with httpx.

The body is signed when it is sent (not when it was queued), so a receiver may reject stale
timestamps: `X-Align-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed with
ALIGN_SECRET, `X-Align-Timestamp: <unix seconds>`. `X-Align-Delivery` (also sent as
`Idempotency-Key`) is the outbox row's stable key: a resend after a crash carries the same one,
so a receiver can drop the duplicate.
"""

from __future__ import annotations

import json

import httpx

from adapters.delivery import DeliveryError, Outgoing, retry_after_seconds
from bot.clock import Clock, SystemClock
from bot.webhooks import sign

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class WebhookSender:
    platform = "webhook"

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.secret = secret
        self.clock = clock or SystemClock()
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        return self._client

    async def send(self, message: Outgoing) -> None:
        url = message.reply.data.get("url")
        body_obj = message.reply.data.get("body")
        if not url or body_obj is None:
            raise DeliveryError("webhook message without url or body", permanent=True)
        body = json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Align-Webhooks/1",
            "X-Align-Timestamp": timestamp,
            "X-Align-Signature": "v1=" + sign(self.secret, timestamp, body),
            "X-Align-Delivery": message.idempotency_key,
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code < 300:
            return
        detail = f"webhook {url}: HTTP {response.status_code}"
        if response.status_code == 429:
            raise DeliveryError(detail, retry_after=retry_after_seconds(response.headers, 30.0))
        if response.status_code >= 500 or response.status_code == 408:
            raise DeliveryError(detail)
        raise DeliveryError(detail, permanent=True)

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
