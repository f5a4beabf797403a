"""A poll's live message, kept current by three replicas at once (issue 12: 149 `chat.update` on
one message with three replicas, 57 with one, peak 28 a second — coalescing lived in each
process's memory).

Three apps on one database stand for three replicas: each has its own engine, connection pool
and `Postings` service; they share only the database, a fake clock and the platform (a recording
updater). Votes arrive at all three at once. The edits of the message must come one at a time,
at least a second apart (on the clock the replicas share), and the last one must show every
vote.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from adapters.bootstrap import App, build
from adapters.postings import Posting, Postings
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply
from tests.conftest import make_settings

WORKSPACE, CHANNEL = "slack:T1", "C1"


@dataclass
class Platform:
    """The messages as the platform shows them: every edit, when (shared clock), and how many
    edits of one message were in flight at once."""

    clock: FakeClock
    edits: list[tuple[datetime, str, int]] = field(default_factory=list)  # at, message, ballots
    in_flight: int = 0
    most_in_flight: int = 0

    async def update(self, posting: Posting, view: Reply) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # the platform takes a moment; others may try meanwhile
            self.edits.append((self.clock.now(), posting.message_id, view.data["ballots"]))
        finally:
            self.in_flight -= 1


def voter(n: int) -> Actor:
    return Actor(WORKSPACE, CHANNEL, user=f"U{n:03d}", platform="slack")


@pytest.fixture
def replicas(migrated_db_url: str, clock: FakeClock) -> Iterator[list[App]]:
    apps = [build(make_settings(migrated_db_url), clock=clock, migrate=n == 0) for n in range(3)]
    yield apps
    for app in apps:
        app.db.dispose()


def serve(apps: list[App], platform: Platform, clock: FakeClock) -> list[Postings]:
    """Each replica's postings service, editing through the shared platform; waiting for the
    next slot moves the shared clock (no test sleeps for a schedule)."""

    async def wait(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    services = []
    for n, app in enumerate(apps):
        service = Postings(app.engine, sleep=wait, worker=f"replica-{n}")
        service.add_updater("slack", platform.update)
        services.append(service)
    return services


def open_poll(app: App) -> None:
    opened = app.engine.handle(voter(0), 'poll "Ship?" "Date" "Scope" "Both"')
    assert opened.ok, opened.error
    app.engine.remember_posting(voter(0), "P-1", conversation=CHANNEL, message_id="1.0001")


def test_a_burst_of_votes_on_three_replicas_edits_the_message_once_a_second_and_ends_current(
    replicas: list[App], clock: FakeClock
) -> None:
    open_poll(replicas[0])
    platform = Platform(clock)
    services = serve(replicas, platform, clock)

    async def burst() -> None:
        for n in range(60):
            app, service = replicas[n % 3], services[n % 3]
            reply = await asyncio.to_thread(app.engine.handle, voter(n), f"vote P-1 {n % 3 + 1}")
            assert reply.ok, reply.error
            service.changed(voter(n), "P-1")  # what each replica's adapter does after a vote
            if n % 7 == 0:
                await asyncio.sleep(0.02)  # let edits run between the votes
        for service in services:
            await service.idle()

    asyncio.run(burst())
    assert platform.edits, "nothing was edited"
    assert platform.edits[-1][2] == 60  # the last edit shows the last state: every vote
    assert platform.most_in_flight == 1  # one replica at a time edits the message
    times = [at for at, _, _ in platform.edits]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    # Coalesced: fewer edits than votes. (How few depends on how long the burst lasts on the
    # clock, which every wait for a slot moves here; the three-process test measures it.)
    assert len(platform.edits) < 60, len(platform.edits)


def test_a_message_left_behind_by_a_dead_replica_is_caught_up(
    replicas: list[App], clock: FakeClock
) -> None:
    """Replica 0 counts a change and takes the turn to edit, then dies. Once its turn runs out,
    the worker's periodic catch-up on another replica edits the message."""
    app, other = replicas[0], replicas[1]
    open_poll(app)
    assert app.engine.handle(voter(1), "vote P-1 2").ok
    assert app.engine.posting_changed(voter(0), "P-1") == 1
    assert app.engine.claim_posting_update(
        voter(0), "P-1", worker="dead", lease=timedelta(seconds=30)
    )
    platform = Platform(clock)
    (service,) = serve([other], platform, clock)

    async def catch_up() -> int:
        found = await service.catch_up()
        await service.idle()
        return found

    assert asyncio.run(catch_up()) == 0  # the dead replica's turn still holds
    assert platform.edits == []
    clock.advance(timedelta(seconds=30))
    assert asyncio.run(catch_up()) == 1
    assert [ballots for _, _, ballots in platform.edits] == [1]
    assert asyncio.run(catch_up()) == 0  # up to date now


def test_a_change_of_an_object_not_found_where_it_is_counted_counts_nothing_and_ends(
    replicas: list[App], clock: FakeClock
) -> None:
    """A change counted from another conversation than the object's (once: a vote's receipt
    sent through the outbox to the voter's DM) finds no live message to move: nothing is
    counted and the refresh ends — not a failure retried, with a growing wait, until the
    process stops."""
    app = replicas[0]
    open_poll(app)
    elsewhere = Actor(WORKSPACE, "D0VOTER001", user="U001", platform="slack")
    assert app.engine.posting_changed(elsewhere, "P-1") == 0
    assert app.engine.posting_changed(elsewhere, "P-99") == 0
    platform = Platform(clock)
    (service,) = serve([app], platform, clock)

    async def refresh() -> None:
        service.changed(elsewhere, "P-1")
        await asyncio.wait_for(service.idle(), 10)

    asyncio.run(refresh())
    assert platform.edits == []
    assert app.engine.posting_changed(voter(0), "P-1") == 1  # where the poll is, it counts
