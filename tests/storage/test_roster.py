"""The one roster cache: a channel's members fetched at most once per TTL (by the app's clock)
whichever process asks, concurrent askers sharing one fetch, failures remembered as "unknown"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.roster import ROSTER_TTL, RosterCache
from bot.clock import FakeClock
from storage import upgrade
from storage.db import Database


class Platform:
    """A fetch that counts its calls and can be made to fail or to wait."""

    def __init__(self, members: list[str] | None) -> None:
        self.members = members
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def fetch(self) -> list[str] | None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.members


def caches(url: str, clock: FakeClock, n: int = 2) -> list[RosterCache]:
    upgrade(url)
    return [RosterCache(Database(url), clock) for _ in range(n)]


def test_two_replicas_fetch_once_per_ttl_and_read_the_same_members(
    db_url: str, clock: FakeClock
) -> None:
    a, b = caches(db_url, clock)
    platform = Platform(["U2", "U1"])

    async def main() -> None:
        await a.refresh("slack:T1", "C1", platform.fetch)
        await b.refresh("slack:T1", "C1", platform.fetch)  # fresh in the database: no fetch
        assert platform.calls == 1
        assert a.members("slack:T1", "C1") == b.members("slack:T1", "C1") == ["U1", "U2"]

        clock.advance(ROSTER_TTL - timedelta(seconds=1))
        await b.refresh("slack:T1", "C1", platform.fetch)
        assert platform.calls == 1
        clock.advance(timedelta(seconds=2))
        platform.members = ["U1", "U3"]
        await b.refresh("slack:T1", "C1", platform.fetch)
        assert platform.calls == 2
        assert a.members("slack:T1", "C1") == ["U1", "U3"]  # the other replica sees it at once

    asyncio.run(main())


def test_concurrent_refreshes_share_one_fetch(db_url: str, clock: FakeClock) -> None:
    (cache,) = caches(db_url, clock, 1)
    platform = Platform(["U1"])

    async def main() -> None:
        platform.gate = asyncio.Event()
        waiting = [
            asyncio.ensure_future(cache.refresh("w", "c", platform.fetch)) for _ in range(20)
        ]
        await asyncio.sleep(0)
        platform.gate.set()
        await asyncio.gather(*waiting)
        assert platform.calls == 1
        assert cache.members("w", "c") == ["U1"]

    asyncio.run(main())


def test_a_failed_or_empty_fetch_is_unknown_and_not_retried_within_the_ttl(
    db_url: str, clock: FakeClock
) -> None:
    (cache,) = caches(db_url, clock, 1)
    platform = Platform(None)

    async def main() -> None:
        platform.error = RuntimeError("connector down")
        await cache.refresh("w", "c", platform.fetch)
        assert cache.members("w", "c") is None  # the engine falls back to people seen here
        await cache.refresh("w", "c", platform.fetch)
        assert platform.calls == 1
        clock.advance(ROSTER_TTL)
        platform.error, platform.members = None, []
        await cache.refresh("w", "c", platform.fetch)
        assert platform.calls == 2
        assert cache.members("w", "c") is None  # nobody listed is not "nobody may vote"

    asyncio.run(main())
