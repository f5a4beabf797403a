"""The port between the outbox and the platforms: how a stored message is sent.

Each platform adapter provides a `Sender`; the dispatcher picks one by the message's platform.
A sender raises `DeliveryError` to say whether a failure is worth retrying and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.views import Reply


class DeliveryError(Exception):
    """Sending failed. `permanent` failures are recorded and not retried; `retry_after` (seconds)
    is the platform's own word on when to try again (HTTP 429 Retry-After)."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver: where, what, and the key that makes a resend recognisable.

    `tried_before`: an earlier attempt may have reached the platform (its worker died mid-send,
    or the answer never came); a sender that can look for it (Slack: the key is in the posted
    message's metadata) does so before sending again. `queued_at` bounds that search."""

    workspace: str
    channel: str
    platform: str
    reply: Reply
    idempotency_key: str
    tried_before: bool = False
    queued_at: datetime | None = None


def retry_after_seconds(headers: Any, default: float | None) -> float | None:
    """Seconds from a response's Retry-After header (the delta-seconds form), else `default`.
    Header maps differ by client (some case-sensitive), so both spellings are asked."""
    get = getattr(headers, "get", None)
    raw = (get("Retry-After") or get("retry-after")) if get else None
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except (TypeError, ValueError):
        return default


class Sender(Protocol):
    """Sends one message. A sender may also offer `batch()`, a context manager the dispatcher
    holds around each pass over due rows (adapters/runtime.py), for what the rows of one pass
    can share (the Slack sender looks each workspace's installation up once per pass)."""

    platform: str

    async def send(self, message: Outgoing) -> None:
        """Deliver or raise DeliveryError."""
        ...
