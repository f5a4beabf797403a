"""Rate limits on the way out: the connector answers 429 with Retry-After, and botbuilder's
msrest pipeline does not retry it (it has no retry policy for POST/PUT), so a busy channel would
lose replies. Replies inside a turn are retried here, honouring Retry-After (capped), with an
injectable sleep so tests do not wait. Proactive sends do not retry here: `TeamsSender` turns a 429
into `DeliveryError(retry_after=…)` and the outbox dispatcher reschedules the row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from msrest.exceptions import HttpOperationError

from adapters.delivery import retry_after_seconds

log = logging.getLogger("align.teams")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

RETRYABLE = frozenset({429, 502, 503, 504})


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed connector call (msrest wraps the aiohttp response)."""
    response = getattr(exc, "response", None)
    for attr in ("status", "status_code"):
        value = getattr(response, attr, None)
        if isinstance(value, int):
            return value
    return None


def retry_after_of(exc: BaseException, default: float | None = None) -> float | None:
    """Seconds from the Retry-After header (delta-seconds form), else `default`."""
    response = getattr(exc, "response", None)
    return retry_after_seconds(getattr(response, "headers", None), default)


@dataclass
class RetryPolicy:
    """How replies inside a turn survive 429 and transient 5xx answers."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 10.0  # a turn should answer within Teams' ~15 s; the rest is logged
    sleep: Sleep = field(default=asyncio.sleep)

    def delay(self, attempt: int, exc: BaseException) -> float:
        hinted = retry_after_of(exc)
        wait = hinted if hinted is not None else self.base_delay * 2**attempt
        return min(wait, self.max_delay)

    async def run(self, call: Callable[[], Awaitable[T]], *, what: str) -> T:
        """Run `call`, retrying rate limits and gateway errors; other failures propagate."""
        for attempt in range(self.attempts):
            try:
                return await call()
            except HttpOperationError as exc:
                status = status_of(exc)
                if status not in RETRYABLE or attempt == self.attempts - 1:
                    raise
                wait = self.delay(attempt, exc)
                log.warning("teams %s: HTTP %s, retrying in %.1fs", what, status, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
