"""The port between the outbox and the platforms: how a stored message is sent.

Each platform adapter provides a `Sender`; the dispatcher picks one by the message's platform.
A sender raises `DeliveryError` to say whether a failure is worth retrying and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
    """One message to deliver: where, what, and the key that makes a resend recognisable."""

    workspace: str
    channel: str
    platform: str
    reply: Reply
    idempotency_key: str


class Sender(Protocol):
    platform: str

    async def send(self, message: Outgoing) -> None:
        """Deliver or raise DeliveryError."""
        ...
