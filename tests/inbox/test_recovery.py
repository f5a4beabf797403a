"""What a dead process left in the inbox is finished by a live one — the engine once, the reply
at least once — on both databases, through the real Slack and Teams servers.

"A process that dies" is a second `Inbox` on the same database with a worker id of its own,
driven by hand up to the moment of death and then never used again; time moves on the injected
clock past its claim, and the live server's `recover()` (what `align serve --role worker|all`
runs every few seconds) picks up after it. The real kill -9 is tests/server/test_kill.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, insert, select

from adapters.bootstrap import App
from adapters.inbox import MAX_ATTEMPTS, Entry, Inbox, Lost
from adapters.recovery import Recovery
from adapters.runtime import RUNTIME_KEY
from adapters.slack.http import request_key
from adapters.slack.listeners import answer_destination
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply
from storage import inbox as store
from storage.models import Decision, InboxEntry, OutboxMessage, ProcessedEvent
from tests.server.process import free_port
from tests.slack.conftest import CHANNEL, USER, SlackServer
from tests.teams.harness import message, teams_server

CLAIM = timedelta(seconds=30)  # ALIGN_INBOX_CLAIM_TIMEOUT's default
PAST_THE_CLAIM = CLAIM + timedelta(seconds=1)


def doomed(app: App, name: str = "doomed-process") -> Inbox:
    """Another process's inbox on the same database: it records and claims under its own
    name, and dies when the test stops calling it."""
    return Inbox(
        app.db,
        app.clock,
        secret=app.engine.deps.secret,
        ack_budget=5.0,
        claim_timeout=CLAIM,
        retention=timedelta(hours=24),
        worker_id=name,
    )


def slack_command(server: SlackServer, text: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    """A slash command as Bolt hands it to the inbox: its key and its parsed body."""
    raw = server.command_body(text, **kw)
    body = dict(parse_qsl(raw, keep_blank_values=True))
    return request_key(body, raw), body


def count(app: App, model: Any, *where: Any) -> int:
    with app.db.uow() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def actor(server: SlackServer) -> Actor:
    return Actor(f"slack:{server.team}", CHANNEL, USER, platform="slack")


def recover(server: SlackServer) -> int:
    found = server.loop.run(server.app.inbox.recover())
    server.settle()
    return found


def test_a_request_acknowledged_but_never_run_is_run_once_by_the_next_process(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    server = slack_server_any_db
    key, body = slack_command(server, "decide Left behind by a dead process")
    entry = server.loop.run(doomed(server.app).record("slack", key, body))
    assert entry is not None  # recorded: Slack would have had its 200 now; then the kill

    assert recover(server) == 0  # its claim still runs: the live process leaves it alone
    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 1
    assert count(server.app, Decision) == 1
    (post,) = server.fake.calls_to("chat.postMessage")
    assert "Left behind by a dead process" in str(post.args["blocks"])
    assert recover(server) == 0  # done: nothing left over, nothing run twice
    assert count(server.app, InboxEntry, InboxEntry.status == "done") == 1


def test_an_event_whose_process_died_is_handled_once_though_slack_retried_meanwhile(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    """Issue 12: the event was claimed, the process crashed, and Slack's retry was skipped as
    already handled — the event was lost. Now the retry is answered (not run: the row is still
    claimed by the dead process) and the event runs once that claim has run out."""
    server = slack_server_any_db
    event = {"type": "app_home_opened", "user": USER, "channel": "D0HOME0001", "tab": "home"}
    raw = server.event_body(event, event_id="Ev0CRASHED1")
    entry = server.loop.run(
        doomed(server.app).record("slack", "slack:Ev0CRASHED1", json.loads(raw))
    )
    assert entry is not None
    retry = server.post_event(event, event_id="Ev0CRASHED1", retry_num=1)
    assert retry.status_code == 200
    server.settle()
    assert server.fake.calls_to("views.publish") == []
    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 1
    assert len(server.fake.calls_to("views.publish")) == 1
    assert recover(server) == 0


def test_a_reply_the_dead_process_never_sent_goes_out_through_the_outbox_and_the_engine_runs_once(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    server, app = slack_server_any_db, slack_server_any_db.app
    dead = doomed(app)
    shown: list[tuple[str, str]] = []
    for text in ("decide Decided, never announced", "decide"):  # a public reply, then an error
        key, body = slack_command(server, text)
        entry = server.loop.run(dead.record("slack", key, body))
        reply = dead.once(
            entry, answer_destination(actor(server)), app.engine.handle, actor(server), text
        )
        shown.append((text, reply.text))
    assert count(app, Decision) == 1  # the engine ran; the process died before replying

    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 2
    answers = count(app, OutboxMessage, OutboxMessage.kind == "answer")
    assert answers == 2
    server.loop.run(server.web_app[RUNTIME_KEY].dispatch())
    posts = {
        call.args["channel"]: call.args["text"] for call in server.fake.calls_to("chat.postMessage")
    }
    # The decision to the channel; the error only to its author (a message to a user id lands
    # in their DM with the app), as `deliver` would have shown them.
    assert posts[CHANNEL] == shown[0][1]
    assert posts[USER] == shown[1][1]
    assert count(app, Decision) == 1  # not run again
    assert count(app, InboxEntry, InboxEntry.status == "done") == 2


def test_a_forwarded_reply_the_engine_addressed_to_someone_keeps_its_address(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    """A reply the engine itself sends somebody privately (`direct_to`, as a sign-off notice
    does) keeps that address when it is forwarded, though it was asked in a channel: only a
    reply for the asker alone takes the asker's DM from its destination."""
    server, app = slack_server_any_db, slack_server_any_db.app
    dead = doomed(app)
    key, body = slack_command(server, "decide Private note")
    entry = server.loop.run(dead.record("slack", key, body))
    noted = Reply(ok=True, kind="notice", text="For U0OTHER only", direct_to="U0OTHER")
    dead.once(entry, answer_destination(actor(server)), lambda: noted)
    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 1
    server.loop.run(server.web_app[RUNTIME_KEY].dispatch())
    posts = [(c.args["channel"], c.args["text"]) for c in server.fake.calls_to("chat.postMessage")]
    assert posts == [("U0OTHER", "For U0OTHER only")]


def test_a_crash_inside_the_engine_transaction_leaves_nothing_done_and_the_rerun_does_it_once(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    """The command's effects and the row's "answered" mark commit together: a process dying
    after the engine's work but before that commit leaves neither, so the re-run is the
    only run."""
    server, app = slack_server_any_db, slack_server_any_db.app
    key, body = slack_command(server, "decide Half done")
    dead = doomed(app)
    entry = server.loop.run(dead.record("slack", key, body))

    def engine_then_death(who: Actor, text: str) -> Reply:
        app.engine.handle(who, text)
        raise KeyboardInterrupt  # the process goes down before the transaction commits

    with pytest.raises(KeyboardInterrupt):
        dead.once(
            entry,
            answer_destination(actor(server)),
            engine_then_death,
            actor(server),
            "decide Half done",
        )
    assert count(app, Decision) == 0

    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 1
    assert count(app, Decision) == 1
    assert len(server.fake.calls_to("chat.postMessage")) == 1


def test_a_slow_process_that_lost_its_claim_does_not_run_the_command_again(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    server, app = slack_server_any_db, slack_server_any_db.app
    key, body = slack_command(server, "decide Taken over")
    slow = doomed(app, "slow-process")
    entry = server.loop.run(slow.record("slack", key, body))
    clock.advance(PAST_THE_CLAIM)
    assert recover(server) == 1  # taken over and done by the live process
    # The slow one wakes up and tries: its claim is gone, so nothing runs.
    with pytest.raises(Lost):
        slow.once(
            entry,
            answer_destination(actor(server)),
            app.engine.handle,
            actor(server),
            "decide Taken over",
        )
    assert count(app, Decision) == 1


def test_a_reply_slack_would_not_take_is_sent_through_the_outbox(
    slack_server: SlackServer,
) -> None:
    """chat.postMessage refused and the response_url unreachable: the command ran, its reply
    is not lost — the outbox (which retries) sends it."""
    server, app = slack_server, slack_server.app
    server.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
    nowhere = f"http://127.0.0.1:{free_port()}/response/gone"
    assert server.post_command("decide Shown late", response_url=nowhere).status_code == 200
    server.settle()
    assert server.fake.calls_to("chat.postMessage") == []
    assert count(app, OutboxMessage, OutboxMessage.kind == "answer") == 1
    server.loop.run(server.web_app[RUNTIME_KEY].dispatch())
    (post,) = server.fake.calls_to("chat.postMessage")
    assert post.args["channel"] == CHANNEL and "Shown late" in post.args["text"]
    assert count(app, Decision) == 1
    assert count(app, InboxEntry, InboxEntry.status == "done") == 1


def test_a_receipt_the_response_url_refused_is_sent_through_the_outbox(
    slack_server: SlackServer,
) -> None:
    """Slack answered the response_url with an error (the URL expired or used up, Slack
    failing), which slack-sdk returns as it returns a success: the vote is counted and its
    receipt is not lost — the outbox sends it to the voter's DM with the app."""
    server, app = slack_server, slack_server.app
    server.post_command('poll "Lunch?" "Tacos" "Pho"')
    server.settle()
    server.fake.fail_next("response_url", status=404, error="expired_url")
    assert server.post_command("vote P-1 1").status_code == 200
    server.settle()
    assert server.fake.responses == [] and server.fake.pending_failures == []
    assert count(app, OutboxMessage, OutboxMessage.kind == "answer") == 1
    server.loop.run(server.web_app[RUNTIME_KEY].dispatch())
    (receipt,) = [c for c in server.fake.calls_to("chat.postMessage") if c.args["channel"] == USER]
    assert "Recorded your vote on P-1" in receipt.args["text"]
    assert count(app, InboxEntry, InboxEntry.status == "done") == 2
    # …and the vote's effect is carried out in the channel it was cast in: the poll's message
    # shows it (not looked for in the DM the receipt went to).
    server.loop.run(app.postings.idle())
    *_, shown = server.fake.calls_to("chat.update")
    assert shown.args["channel"] == CHANNEL and "1 vote" in str(shown.args["blocks"])


def test_a_teams_activity_left_by_a_dead_process_is_answered_in_its_conversation(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            activity = message("decide Teams picks up", service_url=server.service_url)
            key = "teams:left-behind"
            entry = await doomed(server.app).record("teams", key, activity)
            assert entry is not None
            clock.advance(PAST_THE_CLAIM)
            assert await server.app.inbox.recover() == 1
            await server.app.postings.idle()
            (reply,) = server.connector.sent_of("reply")
            assert reply.conversation_id == activity["conversation"]["id"]
            assert count(server.app, Decision) == 1
            assert await server.app.inbox.recover() == 0

    asyncio.run(scenario())


def test_a_request_whose_sender_cannot_be_read_is_given_up_all_the_same(
    migrated_db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The platform's asker fails on a row given up (a Teams activity whose conversation is
    not an object: not one that came in through /api/messages): the row is given up anyway,
    nobody is told, and the failure is logged — not rolled back with the give-up, to be given
    up and fail again at every recovery turn."""

    async def scenario() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            unreadable = {**message("decide Unreadable", service_url=server.service_url)}
            unreadable["conversation"] = "not an object"
            assert await doomed(server.app).record("teams", "teams:unreadable", unreadable)
            for attempt in range(2, MAX_ATTEMPTS + 1):  # each process that takes it dies
                clock.advance(PAST_THE_CLAIM)
                dying = doomed(server.app, f"doomed-{attempt}")
                dying.add_replayer("teams", server.app.inbox._replayers["teams"])
                taken, given_up = dying._take_over()
                assert ([row.attempts for row in taken], given_up) == ([attempt], 0)
            clock.advance(PAST_THE_CLAIM)
            assert server.app.inbox._take_over() == ([], 1)
            assert count(server.app, InboxEntry, InboxEntry.status == "failed") == 1
            assert count(server.app, OutboxMessage) == 0
            assert "cannot be told it was given up" in caplog.text
            assert await server.app.inbox.recover() == 0

    asyncio.run(scenario())


def test_what_is_stored_is_sealed_and_cleared_once_done(
    slack_server_any_db: SlackServer,
) -> None:
    """A click in an anonymous poll names the voter and the choice: the row holds them only
    encrypted, and only until it is done."""
    server, app = slack_server_any_db, slack_server_any_db.app
    click = {"user": {"id": USER}, "actions": [{"value": "vote P-1 2"}], "type": "block_actions"}
    entry = server.loop.run(doomed(app).record("slack", "slack:sealed-1", click))
    assert isinstance(entry, Entry)
    with app.db.uow() as session:
        stored = session.scalar(select(InboxEntry.payload).where(InboxEntry.id == entry.id))
    assert stored is not None
    assert USER not in stored and "vote" not in stored
    assert app.inbox.seal.open(stored) == click  # the live process's key opens it

    server.post_command('poll "Secret?" "Yes" "No" anonymous')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    blocks = server.poll_message(1).args["blocks"]
    button = next(e for b in blocks if b["type"] == "actions" for e in b["elements"])
    assert (
        server.post_action(action_id=button["action_id"], value=button["value"]).status_code == 200
    )
    server.settle()
    with app.db.uow() as session:
        done = session.execute(
            select(InboxEntry.payload, InboxEntry.answer).where(InboxEntry.status == "done")
        ).all()
    assert done and all(tuple(row) == (None, None) for row in done)


def test_a_reader_of_the_sqlite_files_finds_no_click_in_them(slack_server: SlackServer) -> None:
    server = slack_server
    server.post_command('poll "Secret?" "Yes" "No" anonymous')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    blocks = server.poll_message(1).args["blocks"]
    button = next(e for b in blocks if b["type"] == "actions" for e in b["elements"])
    assert button["value"].startswith("vote P-1 ")
    server.post_action(action_id=button["action_id"], value=button["value"], user="U0SECRET01")
    server.settle()
    path = Path(str(server.app.db.engine.url.database))
    wal = path.with_name(path.name + "-wal")
    files = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"U0SECRET01" in files  # the voter is there (participation) ...
    assert button["value"].encode() not in files  # ... their click is not


def test_finished_rows_and_old_processed_events_are_pruned_unfinished_ones_kept(
    slack_server_any_db: SlackServer, clock: FakeClock
) -> None:
    server, app = slack_server_any_db, slack_server_any_db.app
    server.post_command("decide Old enough to prune")
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    key, body = slack_command(server, "decide Never finished")
    server.loop.run(doomed(app).record("slack", key, body))
    with app.db.uow() as session:
        session.execute(
            insert(ProcessedEvent).values(
                event_id="Ev0OLD", platform="slack", received_at=clock.now()
            )
        )
    clock.advance(timedelta(hours=23))
    assert server.loop.run(app.inbox.prune()) == 0  # within the retention (24 h)
    clock.advance(timedelta(hours=2))
    assert server.loop.run(app.inbox.prune()) == 2  # the done row and the old event id
    with app.db.uow() as session:
        left = session.execute(select(InboxEntry.dedupe_key, InboxEntry.status)).all()
    assert [tuple(row) for row in left] == [(key, "received")]
    assert count(app, ProcessedEvent) == 0


def test_a_request_whose_process_keeps_dying_is_given_up(app: App, clock: FakeClock) -> None:
    """Something in it kills whoever works it: after MAX_ATTEMPTS claims it is `failed`, not
    taken over forever."""
    with app.db.uow() as session:
        store.record(
            session, platform="slack", key="slack:poison", payload="x", worker="w0",
            now=clock.now(), until=clock.now() + CLAIM,
        )  # fmt: skip
    for attempt in range(1, MAX_ATTEMPTS + 1):
        clock.advance(PAST_THE_CLAIM)
        with app.db.uow() as session:
            taken, given_up = store.take_over(
                session, worker=f"w{attempt}", now=clock.now(), until=clock.now() + CLAIM,
                platforms=["slack"], max_attempts=MAX_ATTEMPTS, limit=10,
            )  # fmt: skip
        if attempt < MAX_ATTEMPTS:
            assert [row.attempts for row in taken] == [attempt + 1] and given_up == 0
        else:
            assert taken == [] and given_up == 1
    assert count(app, InboxEntry, InboxEntry.status == "failed") == 1


def test_the_worker_prunes_in_its_first_round_and_then_hourly(app: App, clock: FakeClock) -> None:
    """`align serve --role worker|all` runs `Recovery.round` at start and every few seconds;
    pruning (a DELETE over the table) happens in the first round and then once an hour."""
    with app.db.uow() as session:
        entry_id = store.record(
            session, platform="slack", key="slack:old", payload="x", worker="w",
            now=clock.now(), until=clock.now() + CLAIM,
        )  # fmt: skip
        assert entry_id is not None
        store.finish(session, entry_id=entry_id, worker="w", now=clock.now())

    def rows() -> int:
        return count(app, InboxEntry)

    worker = Recovery(app)
    clock.advance(timedelta(hours=23, minutes=30))
    asyncio.run(worker.round())  # the first round prunes; the row is within the 24 h
    assert rows() == 1
    clock.advance(timedelta(minutes=45))
    asyncio.run(worker.round())  # the row is past the retention, the last prune 45 min ago
    assert rows() == 1
    clock.advance(timedelta(minutes=20))
    asyncio.run(worker.round())
    assert rows() == 0
