"""ALIGN_HAND_OFF under attack: its promises — no vote lost, nothing run or sent twice, a clear
answer for bad input — where web and worker processes can fail one another: workers racing for
the same queue, Slack's retries and replays of a handed-off request, a worker that dies with
rows taken (before, inside and after the engine's transaction), one that stops, a request that
fails in the worker, and Teams activities that must still be answered where they came in. On
both databases, through the real Slack and Teams servers (tests/inbox/test_hand_off.py has the
fixtures' shape: "the worker" is a second server on the same database, `--role worker`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from adapters import inbox as inbox_module
from adapters import recovery
from adapters.bootstrap import build
from adapters.inbox import GAVE_UP, MAX_ATTEMPTS, Entry, Inbox
from adapters.recovery import QUEUE, Queue
from adapters.runtime import RUNTIME_KEY, Dispatcher
from adapters.server import create_web_app
from adapters.slack.listeners import answer_destination
from adapters.web_keys import SENDERS, Serving
from bot.clock import FakeClock
from bot.context import Actor
from storage.models import Ballot, ConversationRef, Decision, InboxEntry, OutboxMessage
from tests.conftest import count_rows, make_settings
from tests.fakes import FakeSlackApi, Sent
from tests.inbox.test_hand_off import HAND_OFF, web_and_worker, work
from tests.slack.conftest import CHANNEL, USER, SlackServer, running_slack_server
from tests.slack.test_direct_messages import DM, dm
from tests.slack.test_oauth import CLIENT_ID, CLIENT_SECRET, _store_metadata
from tests.slack.test_oauth import SIGNING_SECRET as OAUTH_SIGNING_SECRET
from tests.slack.test_oauth import Server as OAuthServer
from tests.teams.harness import (
    ANA,
    BEN,
    TeamsServer,
    actions_of,
    card_of,
    message,
    teams_server,
    texts_of,
)
from tests.teams.harness import CHANNEL as TEAMS_CHANNEL
from tests.teams.test_personal_chat import PERSONAL, personal

PAST_THE_CLAIM = timedelta(seconds=31)  # ALIGN_INBOX_CLAIM_TIMEOUT's default, and a second
FORM = "application/x-www-form-urlencoded"


def inbox_rows(server: SlackServer) -> list[tuple[int, str, str | None, int]]:
    """Every inbox row: id, status, claimed by, attempts."""
    with server.app.db.uow() as session:
        found = session.execute(
            select(
                InboxEntry.id, InboxEntry.status, InboxEntry.claimed_by, InboxEntry.attempts
            ).order_by(InboxEntry.id)
        )
        return [(i, status, by, attempts) for i, status, by, attempts in found]


def decisions(server: SlackServer) -> list[str]:
    with server.app.db.uow() as session:
        return sorted(session.scalars(select(Decision.title)))


@contextmanager
def another(
    db_url: str, clock: FakeClock, web: SlackServer, role: str, **settings: str
) -> Iterator[SlackServer]:
    """One more process of `role` on the same database and fake Slack."""
    with running_slack_server(
        db_url,
        clock,
        serving=Serving(role=role),
        fake=web.fake,
        **HAND_OFF,
        **settings,
    ) as server:
        yield server


def announced(web: SlackServer) -> list[str]:
    """What the bot posted in the channel, in posting order."""
    return [str(call.args.get("blocks")) for call in web.fake.calls_to("chat.postMessage")]


# ------------------------------------------------------------------ workers racing


def test_two_workers_racing_for_the_queue_run_every_request_exactly_once(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes take from the same queue at the same moments, a few rows a turn
    (IN_FLIGHT 3, so their turns interleave): each request runs once, in one of them, and is
    announced once — on PostgreSQL by SKIP LOCKED, on SQLite by the one write lock."""
    monkeypatch.setattr(recovery, "IN_FLIGHT", 3)
    titles = [f"Raced decision {n:02d}" for n in range(18)]
    with (
        web_and_worker(db_url, clock) as (web, first),
        another(db_url, clock, web, "worker") as second,
    ):
        for title in titles:
            assert web.post_command(f"decide {title}").text == ""
        web.settle()
        taken = {first.app.inbox.worker_id: 0, second.app.inbox.worker_id: 0}
        pool = concurrent.futures.ThreadPoolExecutor(2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # Both turns start together, from two threads, each on its own server's loop.
            rounds = [
                pool.submit(w.loop.run, w.web_app[QUEUE].round(look_first=look))
                for w, look in ((first, True), (second, False))
            ]
            counts = [r.result(10) for r in rounds]
            taken[first.app.inbox.worker_id] += counts[0]
            taken[second.app.inbox.worker_id] += counts[1]
            if not any(counts) and all(status == "done" for _, status, _, _ in inbox_rows(web)):
                break
        pool.shutdown()
        first.settle()
        second.settle()
        assert sum(taken.values()) == len(titles)  # every row taken once, by one of them
        assert decisions(web) == titles
        posts = announced(web)
        assert len(posts) == len(titles)
        assert all(sum(title in post for post in posts) == 1 for title in titles)
        assert {(status, attempts) for _, status, _, attempts in inbox_rows(web)} == {("done", 1)}


# ------------------------------------------------------------------ retries and replays


def test_a_replayed_command_and_a_retried_event_run_once_before_and_after_the_worker(
    db_url: str, clock: FakeClock
) -> None:
    """The same signed command sent again (a replay inside Slack's five minutes) and an event
    Slack delivers again (same event_id) — to the same web process or to another replica,
    before the worker ran them and after: answered 200, recorded once, run once."""
    with (
        web_and_worker(db_url, clock) as (web, worker),
        another(db_url, clock, web, "web") as (replica),
    ):
        command = web.command_body("decide Replayed at the edge")
        event = dm("decide Retried by Slack")
        for server in (web, replica):  # before the worker ran them
            assert server.post(command, FORM).status_code == 200
            assert server.post_event(event, event_id="Ev0HANDOFF1", retry_num=1).status_code == 200
            server.settle()
        assert len(inbox_rows(web)) == 2
        assert work(worker) == 2
        for server in (web, replica):  # and after
            assert server.post(command, FORM).status_code == 200
            assert server.post_event(event, event_id="Ev0HANDOFF1", retry_num=2).status_code == 200
            server.settle()
        assert work(worker) == 0
        assert decisions(web) == ["Replayed at the edge", "Retried by Slack"]
        posts = web.fake.calls_to("chat.postMessage")
        assert sorted(call.args["channel"] for call in posts) == sorted([CHANNEL, DM])
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done", "done"]


def test_the_same_request_at_two_web_replicas_at_once_is_queued_once(
    db_url: str, clock: FakeClock
) -> None:
    """A replayed request reaching two web processes in the same instant: both ack, one row
    is queued (the key's unique index decides), the worker runs it once."""
    titles = [f"Sent to both replicas {n}" for n in range(8)]
    with (
        web_and_worker(db_url, clock) as (web, worker),
        another(db_url, clock, web, "web") as (replica),
    ):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for title in titles:
                body = web.command_body(f"decide {title}")
                acks = [pool.submit(server.post, body, FORM) for server in (web, replica)]
                assert [ack.result(10).status_code for ack in acks] == [200, 200]
        web.settle()
        replica.settle()
        assert len(inbox_rows(web)) == len(titles)
        assert work(worker) == len(titles)
        assert decisions(web) == titles
        assert len(web.fake.calls_to("chat.postMessage")) == len(titles)


# ------------------------------------------------------------------ a worker that dies


def taken_by_a_worker_that_dies(web: SlackServer, worker: SlackServer) -> Entry:
    """The worker takes the one waiting row (its claim now runs) and is never heard of again
    after what the test makes it do."""
    taken, given_up = worker.app.inbox._take_over(5)
    assert (len(taken), given_up) == (1, 0)
    return Entry(taken[0].id, "slack", {})


def a_worker_that_will_die(
    web: SlackServer | TeamsServer,
    worker: SlackServer | TeamsServer,
    name: str,
    *,
    platform: str = "slack",
) -> Inbox:
    """Another worker process's inbox on the same database, able to take rows of `platform`:
    it takes what the test makes it take, and dies there."""
    dying = Inbox(
        web.app.db,
        web.app.clock,
        secret=web.app.engine.deps.secret,
        ack_budget=5.0,
        claim_timeout=timedelta(seconds=30),
        retention=timedelta(hours=24),
        worker_id=name,
    )
    dying.add_replayer(platform, worker.app.inbox._replayers[platform])
    return dying


def actor(web: SlackServer) -> Actor:
    return Actor(f"slack:{web.team}", CHANNEL, USER, platform="slack")


class Died(Exception):
    """The process running the engine died there: its transaction never commits."""


def test_a_worker_dying_inside_the_engine_transaction_leaves_the_rerun_as_the_only_run(
    db_url: str, clock: FakeClock
) -> None:
    text = "decide Half-run by a dying worker"
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command(text)
        web.settle()
        entry = taken_by_a_worker_that_dies(web, worker)

        def run_then_die(*args: Any) -> Any:
            worker.app.engine.handle(*args)  # the decision is written, in the row's transaction
            raise Died

        where = answer_destination(actor(web))
        with pytest.raises(Died):
            worker.app.inbox.once(entry, where, run_then_die, actor(web), text)
        assert decisions(web) == []  # rolled back with the transaction

        with another(db_url, clock, web, "worker") as live:
            assert work(live) == 0  # still the dead worker's
            clock.advance(PAST_THE_CLAIM)
            assert work(live) == 1
            assert work(live) == 0
        assert decisions(web) == ["Half-run by a dying worker"]
        (post,) = web.fake.calls_to("chat.postMessage")
        assert "Half-run by a dying worker" in str(post.args["blocks"])
        assert [(status, attempts) for _, status, _, attempts in inbox_rows(web)] == [("done", 2)]


def test_a_worker_dying_after_the_engine_committed_leaves_only_the_reply_to_send(
    db_url: str, clock: FakeClock
) -> None:
    text = "decide Decided by a worker that died before posting"
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command(text)
        web.settle()
        entry = taken_by_a_worker_that_dies(web, worker)
        where = answer_destination(actor(web))
        worker.app.inbox.once(entry, where, worker.app.engine.handle, actor(web), text)
        assert len(decisions(web)) == 1  # committed with the row's answer; then it died

        with another(db_url, clock, web, "worker") as live:
            assert work(live) == 0
            clock.advance(PAST_THE_CLAIM)
            # Only a reply is owed: not the queue's (it holds requests to run) but recovery's,
            # which hands it to the outbox; the engine stays idle.
            assert work(live) == 0
            assert live.loop.run(live.app.inbox.recover()) == 1
            live.settle()
            assert count_rows(web.app, OutboxMessage) == 1
            live.loop.run(live.web_app[RUNTIME_KEY].dispatch())
            live.settle()
            assert work(live) == 0
        assert len(decisions(web)) == 1
        (post,) = web.fake.calls_to("chat.postMessage")
        assert "Decided by a worker that died before posting" in str(post.args)
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done"]


def test_a_worker_slower_than_its_claim_does_nothing_once_another_has_run_the_row(
    db_url: str, clock: FakeClock
) -> None:
    """Not dead, only slow: its claim runs out, another worker runs the request, and when the
    slow one gets to it at last it finds the row no longer its own — nothing runs or is sent
    twice."""
    with web_and_worker(db_url, clock) as (web, slow):
        web.post_command("decide Raced by a slow worker")
        web.settle()
        taken, _ = slow.app.inbox._take_over(5)
        (row,) = taken
        clock.advance(PAST_THE_CLAIM)
        with another(db_url, clock, web, "worker") as live:
            assert work(live) == 1
        slow.loop.run(slow.app.inbox._work_taken(row))  # at last
        slow.settle()
        assert work(slow) == 0
        assert decisions(web) == ["Raced by a slow worker"]
        assert len(web.fake.calls_to("chat.postMessage")) == 1
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done"]


# ------------------------------------------------------------------ failing in the worker


def test_a_request_that_fails_in_the_worker_is_answered_and_not_run_again(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web process acked it empty; the engine fails in the worker: the person is told, in
    the command's reply, and the row is finished — not looped through the workers."""
    with web_and_worker(db_url, clock) as (web, worker):

        def broken(*_: Any) -> Any:
            raise RuntimeError("a bug in the engine")

        monkeypatch.setattr(worker.app.engine, "handle", broken)
        assert web.post_command("decide Breaks the engine").text == ""
        web.settle()
        assert work(worker) == 1
        (answer,) = web.fake.wait_for_responses_sync(1)
        assert answer.body["response_type"] == "ephemeral"
        assert "Something went wrong" in answer.body["text"]
        clock.advance(PAST_THE_CLAIM)
        assert work(worker) == 0
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done"]
        assert decisions(web) == []


def test_a_handed_off_request_that_kills_every_worker_is_given_up_after_max_attempts(
    db_url: str, clock: FakeClock
) -> None:
    """Each worker that takes it dies: it is taken MAX_ATTEMPTS times — queued is not a crash,
    so as often as a request its own process took once — then given up, and leaves the shared
    queue (the web processes' bound no longer counts it)."""
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command("decide Kills whoever runs it")
        web.settle()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            dying = a_worker_that_will_die(web, worker, f"dies-{attempt}")
            taken, given_up = dying._take_over(5)
            assert (len(taken), given_up) == (1, 0), attempt
            clock.advance(PAST_THE_CLAIM)
        assert work(worker) == 0  # given up instead of taken a ninth time
        ((_, status, by, attempts),) = inbox_rows(web)
        assert (status, by, attempts) == ("failed", None, MAX_ATTEMPTS)
        web.loop.run(web.app.inbox.count_waiting())
        assert web.app.inbox.backlog == 0
        assert decisions(web) == []
        # Its ack was empty: the person is told, once, privately (their DM with the app).
        for _ in range(2):
            worker.loop.run(worker.web_app[RUNTIME_KEY].dispatch())
            worker.settle()
        (told,) = web.fake.calls_to("chat.postMessage")
        assert told.args["channel"] == USER
        assert told.args["text"] == GAVE_UP.format(attempts=MAX_ATTEMPTS)


def test_requests_a_dead_worker_held_are_run_one_at_a_time_so_a_poison_one_takes_none_along(
    db_url: str, clock: FakeClock
) -> None:
    """A worker takes a batch and dies: every row of it has an attempt more. If one of them is
    what kills workers, taking them together again would bring its neighbours to MAX_ATTEMPTS
    with it — acknowledged requests given up. Rows some process died with go one per turn;
    what is new in the queue still goes by the batch."""
    with web_and_worker(db_url, clock) as (web, worker):
        for n in range(3):
            web.post_command(f"decide Held by a dead worker {n}")
        web.settle()
        dying = a_worker_that_will_die(web, worker, "dies-with-three")
        taken, _ = dying._take_over(5)
        assert len(taken) == 3  # and the process dies
        clock.advance(PAST_THE_CLAIM)
        for n in range(3, 5):
            web.post_command(f"decide New in the queue {n}")
        web.settle()

        turns = [work(worker) for _ in range(5)]
        assert turns == [2, 1, 1, 1, 0]  # the two new ones together, then the three alone
        assert decisions(web) == sorted(
            [f"Held by a dead worker {n}" for n in range(3)]
            + [f"New in the queue {n}" for n in range(3, 5)]
        )
        attempts = sorted(a for _, status, _, a in inbox_rows(web) if status == "done")
        assert attempts == [1, 1, 2, 2, 2]


def test_rows_recovery_took_are_not_taken_again_by_the_same_worker_while_they_wait_their_turn(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery takes a dead worker's rows in one batch and runs RECOVER_IN_PARALLEL of them at
    a time; the others wait their turn, claimed by this process. When their claim runs out
    meanwhile (Slack slow to take the replies before them), this same process's queue must not
    take them a second time: both copies would pass the fence (one worker id), and the reply
    stored by the first would be shown again by the second (the kill -9 of
    tests/server/test_kill_hand_off.py found receipts posted twice)."""
    monkeypatch.setattr(inbox_module, "RECOVER_IN_PARALLEL", 1)
    with web_and_worker(db_url, clock) as (web, worker):
        for n in range(2):
            web.post_command(f"decide Waiting its turn {n}")
        web.settle()
        dying = a_worker_that_will_die(web, worker, "dies-with-two")
        assert len(dying._take_over(5)[0]) == 2
        clock.advance(PAST_THE_CLAIM)
        web.fake.hold("chat.postMessage")  # the first one's reply: Slack slow to take it
        recovering = asyncio.run_coroutine_threadsafe(worker.app.inbox.recover(), worker.loop.loop)
        web.fake.wait_held_sync("chat.postMessage")  # the second waits its turn meanwhile
        clock.advance(PAST_THE_CLAIM)  # …longer than its claim
        assert worker.loop.run(worker.web_app[QUEUE].round()) == 0  # it is ours already
        web.fake.release("chat.postMessage")
        assert recovering.result(30) == 2
        worker.settle()
        assert decisions(web) == ["Waiting its turn 0", "Waiting its turn 1"]
        posts = [str(call.args["blocks"]) for call in web.fake.calls_to("chat.postMessage")]
        assert [sum(f"turn {n}" in post for post in posts) for n in range(2)] == [1, 1]
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done", "done"]


# ------------------------------------------------------------------ a worker that stops


def test_a_worker_stopping_with_rows_taken_finishes_them_first(
    db_url: str, clock: FakeClock
) -> None:
    titles = [f"Taken before the stop {n}" for n in range(5)]
    with web_and_worker(db_url, clock) as (web, _worker):
        with another(db_url, clock, web, "worker") as stopping:
            for title in titles:
                web.post_command(f"decide {title}")
            web.settle()
            assert stopping.loop.run(stopping.web_app[QUEUE].round()) == len(titles)
            # …and the process is told to stop at once, its work in flight.
        assert decisions(web) == titles
        assert len(web.fake.calls_to("chat.postMessage")) == len(titles)
        assert {status for _, status, _, _ in inbox_rows(web)} == {"done"}


def test_a_worker_stopped_past_its_grace_leaves_the_request_to_another_which_runs_it_once(
    db_url: str, clock: FakeClock
) -> None:
    """The request it took is stuck (Slack does not answer) when the grace period ends: the
    worker stops without it — nothing marks it done or half-done — and once the claim runs
    out a live worker runs it, once."""
    with web_and_worker(db_url, clock) as (web, worker):
        with another(db_url, clock, web, "worker", ALIGN_SHUTDOWN_GRACE="0.2") as stopping:
            web.post_command("decide Stuck at the stop")
            web.settle()
            for method in ("users.info", "conversations.members"):
                web.fake.hold(method)
            assert stopping.loop.run(stopping.web_app[QUEUE].round()) == 1
        ((_, status, by, _),) = inbox_rows(web)
        assert (status, by) == ("received", stopping.app.inbox.worker_id)
        for method in ("users.info", "conversations.members"):
            web.fake.release(method)
        assert work(worker) == 0
        clock.advance(PAST_THE_CLAIM)
        assert work(worker) == 1
        assert decisions(web) == ["Stuck at the stop"]
        assert len(web.fake.calls_to("chat.postMessage")) == 1
        assert [status for _, status, _, _ in inbox_rows(web)] == ["done"]


# ------------------------------------------------------------------ Teams


def test_a_teams_message_delivered_again_runs_once_and_other_activities_run_in_the_web(
    db_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A message Teams delivers again, before and after the worker ran it, is answered and
    not run twice; an activity whose answer is the response (an invoke) is still answered by
    the web process, and queues nothing for the workers."""

    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):
            said = message("decide Teams delivers twice", service_url=web.service_url)
            assert await web.post(said) == 201
            assert await web.post(said) == 200  # before the worker ran it
            queue = Queue(worker.app)
            assert await queue.round() == 1
            await worker.app.inbox.idle()
            await worker.app.postings.idle()
            assert await web.post(said) == 200  # and after
            assert await queue.round() == 0
            assert count_rows(web.app, Decision) == 1
            assert len(web.connector.sent_of("reply")) == 1

            invoke = {**message("", service_url=web.service_url), "type": "invoke"}
            invoke.update(name="adaptiveCard/action", value={"action": {"type": "Action.Execute"}})
            answered_inline = await web.post(invoke)
            async with teams_server(f"sqlite:///{tmp_path / 'alone.db'}", clock) as alone:
                alike = {**invoke, "serviceUrl": alone.service_url}
                assert answered_inline == await alone.post(alike)  # as one process answers it
            assert await queue.round() == 0
            with web.app.db.uow() as session:
                statuses = list(session.scalars(select(InboxEntry.status)))
            assert statuses == ["done", "done"]

    asyncio.run(scenario())


def test_teams_votes_handed_off_are_counted_once_each_and_update_the_card(
    db_url: str, clock: FakeClock
) -> None:
    """A card click is a message: the web process acks it and queues it; the worker counts
    each vote once (a click Teams delivers twice included) and updates the card in place."""

    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):
            queue = Queue(worker.app)

            async def work_teams() -> int:
                taken = await queue.round()
                await worker.app.inbox.idle()
                await worker.app.postings.idle()
                return taken

            await web.say("poll “Handed off?” “Yes” “No”")
            assert await work_teams() == 1
            (posted,) = web.connector.sent_of("reply")
            assert posted.result_id
            yes, no = (a["data"] for a in actions_of(card_of(posted.activity)))
            clicks = [
                await web.click(yes, card_id=posted.result_id, by=ANA),
                await web.click(no, card_id=posted.result_id, by=BEN),
            ]
            assert await web.post(clicks[0]) == 200  # delivered again before the worker ran it
            assert count_rows(web.app, Ballot) == 0
            assert await work_teams() == 2
            assert await web.post(clicks[1]) == 200  # and after
            assert await work_teams() == 0
            tally = web.app.engine.handle(web.actor(ANA), "results P-1").data
            assert (tally["ballots"], tally["counts"]) == (2, {"Yes": 1, "No": 1})
            updates = web.connector.sent_of("update")
            assert updates and {u.activity_id for u in updates} == {posted.result_id}
            assert "2 of 4 voted" in " ".join(texts_of(card_of(updates[-1].activity)))
            assert len(web.connector.sent_of("reply")) == 1  # clicks answer quietly

    asyncio.run(scenario())


def test_a_teams_message_that_fails_in_the_worker_is_answered_and_not_run_again(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):

            def broken(*_: Any) -> Any:
                raise RuntimeError("a bug in the engine")

            monkeypatch.setattr(worker.app.engine, "handle", broken)
            await web.say("decide Breaks the engine in Teams")
            queue = Queue(worker.app)
            assert await queue.round() == 1
            await worker.app.inbox.idle()
            (told,) = web.connector.sent_of("reply")
            assert "Something went wrong" in str(told.text)
            clock.advance(PAST_THE_CLAIM)
            assert await queue.round() == 0
            assert count_rows(web.app, Decision) == 0
            with web.app.db.uow() as session:
                assert list(session.scalars(select(InboxEntry.status))) == ["done"]

    asyncio.run(scenario())


def bot_added_to(channel: str, *, service_url: str) -> dict[str, Any]:
    """The conversationUpdate Teams sends when the bot is added to a team's channel."""
    added = message("", service_url=service_url, mention_bot=False)
    del added["text"]
    conversation = {**added["conversation"], "id": channel}
    added.update(
        type="conversationUpdate",
        membersAdded=[{"id": added["recipient"]["id"]}],
        conversation=conversation,
    )
    return added


def stored_references(server: TeamsServer) -> list[tuple[str, dict[str, Any], Any]]:
    with server.app.db.uow() as session:
        return [
            (ref.channel, dict(ref.reference), ref.updated_at)
            for ref in session.scalars(select(ConversationRef))
        ]


async def given_up_in_teams(
    web: TeamsServer, worker: TeamsServer, clock: FakeClock, said: dict[str, Any]
) -> list[Sent]:
    """Post `said` to the web process (acked empty, 201), let every worker that takes it die
    until it is given up after MAX_ATTEMPTS, then run the outbox and the queue twice: what the
    bot posted since (`send`)."""
    before = len(web.connector.sent_of("send"))
    assert await web.post(said) == 201
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dying = a_worker_that_will_die(web, worker, f"dies-{attempt}", platform="teams")
        taken, given_up = dying._take_over(5)
        assert (len(taken), given_up) == (1, 0), attempt
        clock.advance(PAST_THE_CLAIM)
    queue = Queue(worker.app)
    assert await queue.round() == 0  # given up instead of taken a ninth time
    with web.app.db.uow() as session:
        statuses = list(session.scalars(select(InboxEntry.status).order_by(InboxEntry.id)))
    assert statuses[-1] == "failed"
    dispatcher = Dispatcher(worker.app, worker.web_app[SENDERS])
    for _ in range(2):
        await dispatcher.run_once()
        assert await queue.round() == 0
    return web.connector.sent_of("send")[before:]


@pytest.mark.parametrize(
    ("said_in", "told_in"),
    [
        ("a channel", TEAMS_CHANNEL),
        ("a channel it was added to", TEAMS_CHANNEL),
        ("a personal chat", PERSONAL),
    ],
)
def test_a_teams_message_that_kills_every_worker_is_given_up_and_told_where_it_was_said(
    db_url: str, clock: FakeClock, said_in: str, told_in: str
) -> None:
    """The web process acked it empty (201, nothing shown), and every worker that takes it
    dies: given up after MAX_ATTEMPTS, its sender is told so once, through the outbox, where
    they said it — as a Teams error is shown: a text in that conversation (a channel's is a new
    post in the channel, addressed to them), however often the outbox and the queue run after.
    When no turn ever ran there, no conversation reference was stored: the one in the stored
    message is; one stored when the bot was added stays as it was."""

    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):
            url = web.service_url
            added = said_in == "a channel it was added to"
            if added:
                assert await web.post(bot_added_to(TEAMS_CHANNEL, service_url=url)) == 201
            welcomed = len(web.connector.sent_of("send"))  # run by the web process: an install
            stored_before = stored_references(web)
            assert (welcomed, len(stored_before)) == ((1, 1) if added else (0, 0))
            text = "decide Kills whoever runs it in Teams"
            in_private = said_in == "a personal chat"
            said = personal(text, service_url=url) if in_private else message(text, service_url=url)
            told = await given_up_in_teams(web, worker, clock, said)
            gave_up = GAVE_UP.format(attempts=MAX_ATTEMPTS)
            addressed = "" if in_private else "<at>Ana</at>, "
            assert [(t.conversation_id, t.text) for t in told] == [(told_in, addressed + gave_up)]
            assert web.connector.sent_of("reply") == []
            assert web.connector.sent_of("create_conversation") == []
            with web.app.db.uow() as session:
                assert list(session.scalars(select(OutboxMessage.status))) == ["sent"]
            stored_after = stored_references(web)
            if added:
                assert stored_after == stored_before  # kept, not replaced
            else:
                ((channel, reference, _),) = stored_after
                assert channel == told_in
                assert reference["serviceUrl"] == url
                assert reference["conversation"]["id"] == told_in  # not the message's thread
            assert count_rows(web.app, Decision) == 0

    asyncio.run(scenario())


def mentions_in(sent: Sent) -> list[dict[str, Any]]:
    return [e for e in sent.activity.get("entities") or [] if e.get("type") == "mention"]


@pytest.mark.parametrize("said_in", ["a channel", "a personal chat"])
def test_a_given_up_teams_message_is_told_in_a_channel_by_name_with_a_mention_of_its_sender(
    db_url: str, clock: FakeClock, said_in: str
) -> None:
    """Told in a channel, "your request" alone is a new post that concerns nobody in
    particular: the notice names its sender and mentions them (a mention entity with their
    `29:` id, so Teams notifies them) — learnt from the stored message itself, as no turn ran
    to store who they are. In a personal chat only they read it: no mention, the text as is."""

    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):
            text = "decide Kills whoever runs it in Teams"
            url = web.service_url
            if said_in == "a channel":
                said = message(text, by=BEN, service_url=url)
            else:
                said = personal(text, service_url=url)
            (told,) = await given_up_in_teams(web, worker, clock, said)
            gave_up = GAVE_UP.format(attempts=MAX_ATTEMPTS)
            if said_in == "a channel":
                assert told.text == f"<at>Ben</at>, {gave_up}"
                assert mentions_in(told) == [
                    {
                        "type": "mention",
                        "text": "<at>Ben</at>",
                        "mentioned": {"id": BEN.teams_id, "name": "Ben"},
                    }
                ]
            else:
                assert told.text == gave_up
                assert mentions_in(told) == []

    asyncio.run(scenario())


# ------------------------------------------------------------------ installs (OAuth)


@asynccontextmanager
async def oauth_server(
    db_url: str, clock: FakeClock, slack: FakeSlackApi, role: str
) -> AsyncIterator[OAuthServer]:
    """A process of `role` with OAuth installs (tests/slack/test_oauth.py), handing off."""
    app = build(
        make_settings(
            db_url,
            SLACK_SIGNING_SECRET=OAUTH_SIGNING_SECRET,
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET=CLIENT_SECRET,
            SLACK_API_URL=slack.url,
            **HAND_OFF,
        ),
        clock=clock,
    )
    web_app = await create_web_app(app, serving=Serving(role=role))
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield OAuthServer(app, url, slack, http, web_app)
    finally:
        await runner.cleanup()
        app.db.dispose()


def test_a_workspace_without_an_install_is_told_so_by_the_web_or_by_the_worker(
    db_url: str, clock: FakeClock
) -> None:
    """A command from a workspace Align is not installed in is answered by the web process
    (Bolt's authorization runs before the inbox) and queues nothing; one whose workspace
    uninstalled after the ack is answered the same by the worker, and finished there."""

    async def scenario() -> None:
        async with (
            FakeSlackApi() as slack,
            oauth_server(db_url, clock, slack, "web") as web_process,
            oauth_server(db_url, clock, slack, "worker") as worker,
        ):
            _, state = await web_process.install()
            status, page = await web_process.redirect({"code": "c0de", "state": state}, state)
            assert status == 200, page

            assert await web_process.command("decide From abroad", team="T0FOREIGN") == (200, "")
            (told,) = await slack.wait_for_responses(1)
            assert "install" in told.body["text"]
            assert count_rows(web_process.app, InboxEntry) == 0  # nothing for the workers

            assert await web_process.command("decide Too late", team=slack.team_id) == (200, "")
            tables = _store_metadata().tables
            with worker.app.db.engine.begin() as conn:  # uninstalled meanwhile
                for name in ("slack_installations", "slack_bots"):
                    conn.execute(delete(tables[name]))
            queue = Queue(worker.app)
            assert await queue.round() == 1
            await worker.app.inbox.idle()
            told_later = (await slack.wait_for_responses(2))[1]
            assert "install" in told_later.body["text"]
            assert len(slack.responses) == 2
            clock.advance(PAST_THE_CLAIM)
            assert await queue.round() == 0
            with web_process.app.db.uow() as session:
                assert list(session.scalars(select(InboxEntry.status))) == ["done"]
            assert count_rows(web_process.app, Decision) == 0

    asyncio.run(scenario())


# ------------------------------------------------------------------ the worker's loop


def test_the_workers_loop_survives_a_failed_turn_and_stops_without_dropping_work(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Queue.loop` as `align serve --role worker` runs it (real time, tens of ms a turn): a
    turn that fails (the database away) is logged and the next one takes the rows; once it is
    stopped it takes nothing more, and what comes then waits for a live worker."""
    with web_and_worker(db_url, clock) as (web, worker):
        inbox = worker.app.inbox
        real = inbox.take_waiting
        failures = [OperationalError("SELECT", {}, Exception("database away"))]

        async def flaky(limit: int, *, look_first: bool = True) -> list[asyncio.Task[None]]:
            if failures:
                raise failures.pop()
            return await real(limit, look_first=look_first)

        monkeypatch.setattr(inbox, "take_waiting", flaky)
        queue = worker.web_app[QUEUE]

        async def start() -> None:
            queue.start()

        web.post_command("decide Taken by the loop")
        worker.loop.run(start())
        web.fake.wait_for_sync("chat.postMessage", 1, timeout=5)
        assert failures == []  # the first turn failed; a later one took the row
        worker.loop.run(queue.stop(), timeout=2)
        web.post_command("decide Queued after the stop")
        web.settle()
        worker.settle()
        assert decisions(web) == ["Taken by the loop"]
        statuses = [status for _, status, _, _ in inbox_rows(web)]
        assert statuses == ["done", "received"]
        assert work(worker) == 1
        assert sorted(decisions(web)) == ["Queued after the stop", "Taken by the loop"]


# ------------------------------------------------------------------ the same, either way


SCRIPT: list[tuple[str, Callable[[SlackServer], Any]]] = [
    ("a decision", lambda s: s.post_command("decide Same either way")),
    ("help", lambda s: s.post_command("help")),
    ("an error", lambda s: s.post_command("vote P-9 1")),
    ("a poll", lambda s: s.post_command('poll "Lunch?" "Tacos" "Pho"')),
    ("a list", lambda s: s.post_command("decisions")),
    ("org-wide", lambda s: s.post_command("decide Org-wide rule", enterprise="E0ORG00001")),
    ("not a member", lambda s: s.post_command("decide In a DM", channel="D0NOTMEMBER")),
    ("an export", lambda s: s.post_command("export decisions csv")),
    ("a DM", lambda s: s.post_event(dm("decide Typed in the DM"))),
    ("App Home", lambda s: s.post_event({"type": "app_home_opened", "user": USER, "tab": "home"})),
]
_VARYING = re.compile(r"cmd-[0-9a-f]{8}|\b1\d{9}\.\d+\b|ref [0-9a-f]{8}")


READS = ("help", "a list")
"""The script's read commands: answered in their ack (tests/slack/test_reads.py), by one
process and by a web process that hands off alike — nothing queued for a worker."""


def _seen(call: Any) -> str:
    return _VARYING.sub("…", f"{call.method} {json.dumps(call.args, sort_keys=True, default=str)}")


def _answered(body: Any) -> str:
    return _VARYING.sub("…", f"response {json.dumps(body, sort_keys=True)}")


def what_slack_saw(server: SlackServer) -> list[str]:
    """Every Web API call and response_url post, with what differs between two runs (random
    response URLs, message timestamps, error references) blanked; `auth.test` left out: each
    process checks its token once."""
    seen = [_seen(call) for call in server.fake.calls if call.method != "auth.test"]
    seen += [_answered(r.body) for r in server.fake.responses]
    return sorted(seen)


def test_a_worker_runs_each_request_exactly_as_the_process_it_came_to_would_have(
    db_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """README: the worker runs a handed-off request "exactly as it would have run in the web
    process — the same listener, the same once-only inbox row, the same reply". The same
    script of commands and events, to one `all` process and to a web process that hands off
    to a worker: Slack sees the very same calls and replies, and the reads the very same acks —
    the web process answers a read in its ack as one process does, and queues nothing."""
    in_acks: dict[str, Any] = {}
    with running_slack_server(f"sqlite:///{tmp_path / 'alone.db'}", clock) as alone:
        for what, step in SCRIPT:
            acked = step(alone)
            if what in READS:
                in_acks[what] = acked.json()
            alone.settle()
        expected = what_slack_saw(alone)
    with web_and_worker(db_url, clock) as (web, worker):
        for what, step in SCRIPT:
            acked = step(web)
            assert acked.status_code == 200, what
            web.settle()
            if what in READS:
                assert acked.json() == in_acks[what], what
                assert work(worker) == 0, what  # nothing queued
            else:
                assert work(worker) == 1, what
        assert what_slack_saw(web) == expected
