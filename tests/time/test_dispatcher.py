"""The outbox dispatcher: pacing per channel, Retry-After, backoff, permanent failures, a crash
between send and mark, and two dispatchers on one database delivering each row once."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import timedelta

import pytest

from adapters.bootstrap import App, build
from adapters.delivery import DeliveryError, Outgoing
from adapters.runtime import Dispatcher
from bot import outbox
from bot.clock import FakeClock
from bot.views import Reply, Section
from tests.conftest import Chat, make_settings
from tests.time.helpers import Recorder, deliver, outbox_rows, rate_limited


def put(
    app: App, n: int, *, channel: str = "C1", platform: str = "slack", prefix: str = "m"
) -> None:
    with app.db.uow() as session:
        for i in range(n):
            outbox.enqueue(
                session,
                workspace="slack:T1",
                channel=channel,
                platform=platform,
                kind="digest",
                reply=Reply(ok=True, kind="digest", text=f"{prefix}{i}", blocks=[Section("x")]),
                key=f"{prefix}:{channel}:{i}",
                now=app.clock.now(),
            )


def test_enqueue_is_idempotent_on_its_key(app: App) -> None:
    reply = Reply(ok=True, kind="nudge", text="hi")
    with app.db.uow() as session:
        args = dict(workspace="w", channel="c", platform="slack", kind="nudge", reply=reply)
        assert outbox.enqueue(session, **args, key="k", now=app.clock.now()) is True
        assert outbox.enqueue(session, **args, key="k", now=app.clock.now()) is False
    assert len(outbox_rows(app)) == 1


def test_a_rollback_leaves_no_outbox_row(app: App) -> None:
    with pytest.raises(RuntimeError), app.db.uow() as session:
        outbox.enqueue(
            session,
            workspace="w",
            channel="c",
            platform="slack",
            kind="nudge",
            reply=Reply(ok=True, kind="nudge", text="hi"),
            key="k",
            now=app.clock.now(),
        )
        raise RuntimeError("the cause failed")
    assert outbox_rows(app) == []


def test_slack_is_paced_per_channel_and_teams_faster(app: App, clock: FakeClock) -> None:
    put(app, 3, channel="C1")
    put(app, 1, channel="C2")
    put(app, 3, channel="19:conv", platform="teams", prefix="t")
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 3))
        clock.advance(timedelta(seconds=seconds))

    slack, teams = Recorder("slack", clock), Recorder("teams", clock)
    sent = asyncio.run(
        Dispatcher(app, {"slack": slack, "teams": teams}, sleep=fake_sleep).run_once()
    )
    assert sent == 7
    c1 = [at for at, m in slack.sent if m.channel == "C1"]
    assert all(b - a >= timedelta(seconds=1) for a, b in itertools.pairwise(c1))
    t = [at for at, _ in teams.sent]
    assert all(b - a >= timedelta(seconds=1 / 7) for a, b in itertools.pairwise(t))
    assert max(sleeps) <= 1.0
    assert [m.reply.text for _, m in slack.sent if m.channel == "C1"] == ["m0", "m1", "m2"]


def test_a_message_for_one_person_spends_none_of_its_channels_pace(
    app: App, clock: FakeClock
) -> None:
    """Private messages queued in a channel's lane (`direct_to`: each to a person's DM) go out
    one after another without waiting for the channel's slot, and leave it to the channel's
    own messages, which keep their pace: a worker that died owing 60 receipts had them sent
    one a second, a minute for the last (tests/server/test_kill_hand_off.py)."""
    with app.db.uow() as session:
        # Four receipts, each to its voter's DM, then two messages for the channel itself.
        for i, person in enumerate(("U1", "U2", "U3", "U4", None, None)):
            outbox.enqueue(
                session,
                workspace="slack:T1",
                channel="C1",
                platform="slack",
                kind="answer",
                reply=Reply(ok=True, kind="vote", text=f"m{i}", direct_to=person),
                key=f"m:{i}",
                now=clock.now(),
            )
    start = clock.now()

    async def fake_sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    slack = Recorder("slack", clock)
    assert asyncio.run(Dispatcher(app, {"slack": slack}, sleep=fake_sleep).run_once()) == 6
    assert slack.texts == ["m0", "m1", "m2", "m3", "m4", "m5"]  # in order, one lane
    at = {m.reply.text: sent - start for sent, m in slack.sent}
    assert [at[f"m{i}"] for i in range(5)] == [timedelta(0)] * 5  # none waited for a slot
    assert at["m5"] == timedelta(seconds=1)  # the channel's second message, a second after m4


def test_429_waits_for_retry_after_then_delivers(app: App, clock: FakeClock) -> None:
    put(app, 2)

    def first_call_limited(message: Outgoing, call: int) -> None:
        if call == 1:
            raise rate_limited(30)

    slack = Recorder("slack", clock, fail=first_call_limited)
    senders = {"slack": slack}
    assert deliver(app, senders) == 0
    # The platform asked the whole channel to wait 30 s: neither message is tried before then.
    clock.advance(timedelta(seconds=29))
    assert deliver(app, senders) == 0
    assert slack.calls == 1
    clock.advance(timedelta(seconds=1))
    assert deliver(app, senders) == 2
    assert slack.texts == ["m0", "m1"]
    rows = outbox_rows(app)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert [r.attempts for r in rows] == [2, 1]  # the released one was not counted as tried


def test_transient_failures_back_off_exponentially_with_jitter(app: App, clock: FakeClock) -> None:
    put(app, 1)

    def always_down(message: Outgoing, call: int) -> None:
        raise DeliveryError("HTTP 503")

    slack = Recorder("slack", clock, fail=always_down)
    delays = []
    for attempt in range(1, 6):
        assert deliver(app, {"slack": slack}, rng=random.Random(attempt)) == 0
        (row,) = outbox_rows(app)
        delay = (row.next_attempt_at - clock.now()).total_seconds()
        assert 1.0 <= delay <= 2.0 * 2 ** (attempt - 1)
        delays.append(delay)
        clock.set(row.next_attempt_at)
    assert row.attempts == 5 and row.status == "pending"
    assert row.last_error == "HTTP 503"


def test_a_permanent_failure_is_recorded_and_shown_in_digest_status(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("digest weekly thu 09:00")
    clock.set(clock.now() + timedelta(days=1))  # Thursday 09:00

    from tests.time.helpers import tick

    assert tick(app).digests == 1

    def gone(message: Outgoing, call: int) -> None:
        raise DeliveryError("channel_not_found", permanent=True)

    console = Recorder("console", clock, fail=gone)
    assert deliver(app, {"console": console}) == 0
    assert deliver(app, {"console": console}) == 0
    assert console.calls == 1  # failed rows are never tried again
    (row,) = outbox_rows(app)
    assert (row.status, row.last_error) == ("failed", "channel_not_found")
    status = chat.ok("digest status")
    assert status.data["failures"][0]["error"] == "channel_not_found"
    assert status.data["failures"][0]["kind"] == "digest"


def test_attempts_run_out_into_failed(app: App, clock: FakeClock) -> None:
    put(app, 1)

    def down(message: Outgoing, call: int) -> None:
        raise DeliveryError("timeout")

    slack = Recorder("slack", clock, fail=down)
    for _ in range(3):
        deliver(app, {"slack": slack}, max_attempts=3)
        clock.advance(timedelta(hours=1))
    (row,) = outbox_rows(app)
    assert row.status == "failed"
    assert row.last_error == "gave up after 3 attempts: timeout"
    assert slack.calls == 3


class Crash(BaseException):
    """The process dies: not an error the dispatcher may catch."""


def test_a_crash_between_send_and_mark_resends_once_with_the_same_key(
    app: App, clock: FakeClock
) -> None:
    put(app, 1)
    delivered: list[str] = []

    def sent_then_crash(message: Outgoing, call: int) -> None:
        delivered.append(message.idempotency_key)  # the platform got it…
        if len(delivered) == 1:
            raise Crash()  # …and the process died before marking it sent

    crashing = Recorder("slack", clock, fail=sent_then_crash)
    lease = timedelta(minutes=2)
    with pytest.raises(Crash):
        deliver(app, {"slack": crashing}, worker_id="first", lease=lease)
    (row,) = outbox_rows(app)
    assert (row.status, row.claimed_by) == ("pending", "first")

    # A restarted process: nothing while the dead worker's lease holds…
    restarted = Recorder("slack", clock, fail=sent_then_crash)
    assert deliver(app, {"slack": restarted}, worker_id="second", lease=lease) == 0
    clock.advance(lease)
    # …then exactly one resend, with the same key, and it is marked sent.
    assert deliver(app, {"slack": restarted}, worker_id="second", lease=lease) == 1
    clock.advance(timedelta(hours=1))
    assert deliver(app, {"slack": restarted}, worker_id="third", lease=lease) == 0
    assert delivered == ["m:C1:0", "m:C1:0"]
    (row,) = outbox_rows(app)
    assert (row.status, row.attempts) == ("sent", 2)


def test_two_dispatchers_on_one_database_deliver_each_row_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    """Two processes (two apps, two connection pools) race over the same rows."""
    first = build(make_settings(migrated_db_url), clock=clock)
    second = build(make_settings(migrated_db_url), clock=clock, migrate=False)
    try:
        for channel in ("C1", "C2", "C3", "C4", "C5"):
            put(first, 12, channel=channel)
        recorder = Recorder("slack", clock)
        no_pacing = {"slack": 0.0}

        async def race() -> list[int]:
            return list(
                await asyncio.gather(
                    Dispatcher(
                        first, {"slack": recorder}, worker_id="a", batch=7, pacing=no_pacing
                    ).run_once(),
                    Dispatcher(
                        second, {"slack": recorder}, worker_id="b", batch=7, pacing=no_pacing
                    ).run_once(),
                )
            )

        counts = asyncio.run(race())
        assert sum(counts) == 60
        assert len(recorder.keys) == 60
        assert len(set(recorder.keys)) == 60
        for channel in ("C1", "C2", "C3", "C4", "C5"):  # each channel in order, whoever sent it
            sent = [m.reply.text for _, m in recorder.sent if m.channel == channel]
            assert sent == [f"m{i}" for i in range(12)], (channel, sent)
        rows = outbox_rows(first)
        assert {r.status for r in rows} == {"sent"}
        assert {r.attempts for r in rows} == {1}
        assert asyncio.run(Dispatcher(second, {"slack": recorder}).run_once()) == 0
    finally:
        first.db.dispose()
        second.db.dispose()


def test_rows_of_platforms_without_a_sender_are_left_alone(app: App, clock: FakeClock) -> None:
    put(app, 1, platform="teams", prefix="t")
    put(app, 1, platform="slack")
    slack = Recorder("slack", clock)
    assert deliver(app, {"slack": slack}) == 1
    teams_row = outbox_rows(app, platform="teams")[0]
    assert (teams_row.status, teams_row.claimed_by, teams_row.attempts) == ("pending", None, 0)


def test_the_stored_payload_round_trips_through_json(chat: Chat) -> None:
    import json as _json

    from bot.views import reply_from_payload, reply_to_payload

    chat.ok('poll "Ship?" "yes" "no" mode:ranked')
    chat.ok("item SSO lane:now reach:10 impact:1 confidence:50% effort:1")
    for line in ("digest", "results P-1", "show P-1"):
        reply = chat.ok(line)
        stored = _json.loads(_json.dumps(reply_to_payload(reply)))
        assert reply_from_payload(stored) == reply


class SlowPlatform:
    """A Sender whose every send waits until the test lets it finish — a platform slower than
    any lease. Records what arrived (the platform has it from then on) and what was answered."""

    platform = "slack"

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.answered: list[str] = []
        self.go = asyncio.Event()

    async def send(self, message: Outgoing) -> None:
        self.arrived.append(message.idempotency_key)
        await self.go.wait()
        self.answered.append(message.idempotency_key)


@pytest.mark.parametrize("renewing", [True, False], ids=["renewing", "not-renewing"])
def test_a_send_that_outlives_its_lease_is_never_claimed_twice(
    migrated_db_url: str, clock: FakeClock, renewing: bool
) -> None:
    """Issue 12: a slow Slack made a claimed batch outlive its lease, and a second replica sent
    10 of 40 messages again. Now the sending worker renews its leases while it sends: with the
    clock moved three leases on mid-send, another replica claims nothing. The control case
    (renewal switched off) shows what the renewal prevents: the lane and its row change hands."""
    first = build(make_settings(migrated_db_url), clock=clock)
    second = build(make_settings(migrated_db_url), clock=clock, migrate=False)
    lease = timedelta(seconds=60)
    try:
        put(first, 3)
        slow = SlowPlatform()
        other = Recorder("slack", clock)

        async def scenario() -> tuple[int, int]:
            a = Dispatcher(
                first,
                {"slack": slow},
                worker_id="a",
                lease=lease,
                heartbeat=0.01 if renewing else 3600,
                pacing={"slack": 0.0},
            )
            running = asyncio.create_task(a.run_once())
            async with asyncio.timeout(10):
                while not slow.arrived:
                    await asyncio.sleep(0.005)
            taken = 0
            for _ in range(3):
                beats = a.heartbeats
                clock.advance(lease * 0.9)
                async with asyncio.timeout(10):
                    while renewing and a.heartbeats < beats + 2:  # renewed at the new time
                        await asyncio.sleep(0.005)
                # No channel pace for b either (as for a): it is not the subject, and in the
                # control case b's sends waited it out in real seconds (2 s a test).
                b = Dispatcher(
                    second, {"slack": other}, worker_id="b", lease=lease, pacing={"slack": 0.0}
                )
                taken += await b.run_once()
            slow.go.set()
            return await running, taken

        sent_by_a, sent_by_b = asyncio.run(scenario())
        if renewing:
            assert (sent_by_a, sent_by_b) == (3, 0)
            assert slow.arrived == ["m:C1:0", "m:C1:1", "m:C1:2"] and other.keys == []
            assert {(r.status, r.attempts) for r in outbox_rows(first)} == {("sent", 1)}
        else:
            assert other.keys[0] == "m:C1:0"  # the row still on its way went out again
            assert sent_by_b >= 1
    finally:
        first.db.dispose()
        second.db.dispose()


def test_the_channel_pace_is_kept_across_workers(migrated_db_url: str, clock: FakeClock) -> None:
    """The next slot of a channel is stored with it: a message queued just after another worker
    sent one waits for the slot, whoever sends it."""
    first = build(make_settings(migrated_db_url), clock=clock)
    second = build(make_settings(migrated_db_url), clock=clock, migrate=False)
    try:
        put(first, 1, prefix="a")
        a, b = Recorder("slack", clock), Recorder("slack", clock)
        assert deliver(first, {"slack": a}, worker_id="a") == 1
        put(second, 1, prefix="b")
        clock.advance(timedelta(milliseconds=300))
        assert deliver(second, {"slack": b}, worker_id="b") == 0  # the slot is 0.7 s away
        clock.advance(timedelta(milliseconds=700))
        assert deliver(second, {"slack": b}, worker_id="b") == 1
        assert b.sent[0][0] - a.sent[0][0] >= timedelta(seconds=1)
        # …and a rate limit holds the channel back for every worker.
        put(first, 1, prefix="c")
        clock.advance(timedelta(seconds=1))

        def limited(message: Outgoing, call: int) -> None:
            raise rate_limited(20)

        assert deliver(first, {"slack": Recorder("slack", clock, fail=limited)}) == 0
        clock.advance(timedelta(seconds=19))
        assert deliver(second, {"slack": b}, worker_id="b") == 0
        clock.advance(timedelta(seconds=1))
        assert deliver(second, {"slack": b}, worker_id="b") == 1
        assert b.texts == ["b0", "c0"]
    finally:
        first.db.dispose()
        second.db.dispose()
