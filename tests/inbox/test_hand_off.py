"""ALIGN_HAND_OFF: a `--role web` process only records and acknowledges (a read it answers in its
ack); a worker process runs the request from its row — once, with the same reply — on both
databases, through the real Slack and Teams servers. "The worker" is a second server on the same
database with `--role worker`, driven by `Queue.round()` (what its loop runs every few tens of
ms)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import create_engine, event, select, text

from adapters import inbox as inbox_module
from adapters.inbox import BUSY
from adapters.recovery import QUEUE, Queue
from adapters.slack import blocks
from adapters.slack.http import request_key
from adapters.web_keys import Serving
from bot.clock import FakeClock
from storage import inbox as store
from storage.models import Ballot, Decision, InboxEntry, Question
from tests.conftest import count_rows
from tests.slack.conftest import CHANNEL, SlackServer, running_slack_server
from tests.teams.harness import teams_server

HAND_OFF = {"ALIGN_HAND_OFF": "true"}


@contextmanager
def web_and_worker(
    db_url: str, clock: FakeClock, **settings: str
) -> Iterator[tuple[SlackServer, SlackServer]]:
    """A web process that hands off and a worker, on one database and one fake Slack."""
    with (
        running_slack_server(
            db_url, clock, serving=Serving(role="web"), **HAND_OFF, **settings
        ) as web,
        running_slack_server(
            db_url, clock, serving=Serving(role="worker"), fake=web.fake, **HAND_OFF
        ) as worker,
    ):
        yield web, worker


def work(worker: SlackServer) -> int:
    """One turn of the worker's loop, and the work it started, to the end."""
    taken = worker.loop.run(worker.web_app[QUEUE].round())
    worker.settle()
    return taken


def rows(server: SlackServer) -> list[tuple[str, str | None]]:
    with server.app.db.uow() as session:
        found = session.execute(select(InboxEntry.status, InboxEntry.claimed_by))
        return [(status, by) for status, by in found]


def test_the_web_process_acks_and_records_and_the_worker_runs_the_command_once(
    db_url: str, clock: FakeClock
) -> None:
    with web_and_worker(db_url, clock) as (web, worker):
        ack = web.post_command("decide Ship the handed-off feature")
        assert (ack.status_code, ack.text) == (200, "")
        web.settle()
        assert rows(web) == [("received", None)]  # recorded, and nobody's yet
        assert count_rows(web.app, Decision) == 0
        assert web.fake.calls_to("chat.postMessage") == []  # the web process sent nothing

        assert work(worker) == 1
        assert count_rows(web.app, Decision) == 1
        (post,) = web.fake.calls_to("chat.postMessage")
        assert post.args["channel"] == CHANNEL
        assert "Ship the handed-off feature" in str(post.args["blocks"])
        assert rows(web) == [("done", None)]
        assert work(worker) == 0  # nothing run twice


def test_a_read_is_answered_in_its_ack_by_the_web_process(db_url: str, clock: FakeClock) -> None:
    """A read stores nothing a worker must run once: the web process answers it in its ack, as
    one process does, and records nothing for a worker — including what the worker wrote."""
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command("decide Ship the handed-off feature")
        web.settle()
        assert work(worker) == 1
        posted = len(web.fake.calls)
        for text, shown in (("help", "Align commands"), ("decisions", "Ship the handed-off")):
            ack = web.post_command(text)
            assert ack.status_code == 200
            assert shown in ack.json()["text"] + json.dumps(ack.json().get("blocks"))
            web.settle()
        assert rows(web) == [("done", None)]  # the decision's row alone
        assert work(worker) == 0
        assert len(web.fake.calls) == posted and web.fake.responses == []  # no reply after it


def queued_by_an_earlier_web(web: SlackServer, text: str) -> None:
    """A read queued for a worker, as a web process of an earlier version queued every slash
    command (a rolling upgrade leaves such rows): the worker still runs it."""
    body = dict(parse_qsl(web.command_body(text)))
    web.loop.run(web.app.inbox.record("slack", request_key(body, ""), body, hand_off=True))


def test_a_queued_read_runs_outside_its_rows_transaction_and_a_write_within_it(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read stores nothing, so the worker runs a queued one as a process runs an admitted
    read: no row lock, no answer stored with it (adapters/inbox.py); its row is finished once it
    replied. A write still commits with its row's answered mark."""
    fenced: list[int] = []
    fence = store.fence

    def counted_fence(session: Any, entry_id: int, *, worker: str) -> Any:
        fenced.append(entry_id)
        return fence(session, entry_id, worker=worker)

    monkeypatch.setattr(store, "fence", counted_fence)
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command("decide Ship the handed-off feature")
        web.settle()
        assert work(worker) == 1
        assert len(fenced) == 1
        queued_by_an_earlier_web(web, "decisions")
        assert sorted(rows(web)) == [("done", None), ("received", None)]
        assert work(worker) == 1
        listed = web.fake.calls_to("chat.postMessage")[-1]
        assert "Ship the handed-off feature" in str(listed.args["blocks"])  # the read's reply
        assert sorted(rows(web)) == [("done", None), ("done", None)]
        assert len(fenced) == 1  # the read took no lock on its row
        assert work(worker) == 0


def test_a_queued_read_whose_reply_could_not_be_shown_is_run_again(
    db_url: str, clock: FakeClock
) -> None:
    """A read stores no reply the outbox could send instead: when showing it fails (Slack
    refused the post and the response_url too), its row is left to recovery, which runs the
    read again once its claim runs out — not finished with nothing shown."""
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command("decide Ship the handed-off feature")
        web.settle()
        assert work(worker) == 1
        queued_by_an_earlier_web(web, "decisions")
        web.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
        web.fake.fail_next("response_url", status=500)
        assert work(worker) == 1
        posted = len(web.fake.calls_to("chat.postMessage"))  # the decision's, the read's refused
        assert web.fake.responses == [] and web.fake.pending_failures == []  # both refused
        assert sorted(status for status, _ in rows(web)) == ["done", "received"]
        assert work(worker) == 0  # still claimed: left alone
        clock.advance(timedelta(seconds=31))  # past ALIGN_INBOX_CLAIM_TIMEOUT
        assert work(worker) == 1
        *_, listed = web.fake.calls_to("chat.postMessage")
        assert len(web.fake.calls_to("chat.postMessage")) == posted + 1
        assert "Ship the handed-off feature" in str(listed.args["blocks"])  # the read's reply
        assert [status for status, _ in rows(web)] == ["done", "done"]
        assert work(worker) == 0


def test_clicks_on_a_poll_are_counted_by_the_worker(db_url: str, clock: FakeClock) -> None:
    with web_and_worker(db_url, clock) as (web, worker):
        message_ts, tacos = _lunch_poll_and_its_tacos_button(web, worker)
        click_tacos(web, message_ts, tacos, ("U0ANA00001", "U0BEN00002", "U0CAT00003"))
        web.settle()
        assert count_rows(web.app, Ballot) == 0
        assert work(worker) == 3
        assert count_rows(web.app, Ballot) == 3
        assert [status for status, _ in rows(web)] == ["done"] * 4


def test_a_form_whose_ack_carries_the_answer_still_runs_in_the_web_process(
    db_url: str, clock: FakeClock
) -> None:
    """A modal's refusal belongs under its input, in the ack: it cannot wait for a worker."""
    with web_and_worker(db_url, clock) as (web, _worker):
        view = blocks.reason_modal("object D-9", "Why?", "Object", channel=CHANNEL, message_ts=None)
        typed = {
            blocks.REASON_INPUT: {blocks.FORM_INPUT: {"type": "plain_text_input", "value": "x"}}
        }
        sent = web.post_payload(web.view_submission(view, typed))
        assert sent.status_code == 200
        answer = sent.json()
        assert answer["response_action"] == "errors"
        assert "D-9" in answer["errors"][blocks.REASON_INPUT]
        web.settle()
        assert rows(web) == [("done", None)]


def test_the_bound_is_on_the_queue_the_web_processes_share(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALIGN_MAX_BACKLOG counts the rows waiting for a worker, whoever handed them off: a
    second web process sees the first one's queue and refuses, storing nothing; once a worker
    has run them, both take requests again."""
    monkeypatch.setattr(inbox_module, "QUEUE_COUNTED_EVERY", 0.0)
    with web_and_worker(db_url, clock, ALIGN_MAX_BACKLOG="2") as (web, worker):
        for text in ("ask First?", "ask Second?"):
            assert web.post_command(text).text == ""
            web.settle()
        refused = web.post_command("ask Third?")
        assert refused.json() == {"response_type": "ephemeral", "text": BUSY}
        # A read, answered in the web process itself, is held to the same bound.
        assert web.post_command("help").json() == {"response_type": "ephemeral", "text": BUSY}

        with running_slack_server(
            db_url,
            clock,
            serving=Serving(role="web"),
            fake=web.fake,
            ALIGN_MAX_BACKLOG="2",
            **HAND_OFF,
        ) as other:
            # Its first request counts the shared queue (in the background: the ack never
            # waits for the count), the next one is refused on it.
            assert other.post_command("ask Fourth?").text == ""
            other.settle()
            again = other.post_command("ask Fifth?")
            assert again.json() == {"response_type": "ephemeral", "text": BUSY}
            assert count_rows(web.app, InboxEntry) == 3  # the refused ones stored nothing

            assert work(worker) == 3
            assert count_rows(web.app, Question) == 3
            for server in (web, other):  # as their next request would, in the background
                server.loop.run(server.app.inbox.count_waiting())
            assert other.post_command("ask Sixth?").text == ""
            other.settle()
            assert web.post_command("ask Seventh?").text == ""
            web.settle()
            assert work(worker) == 2
            assert count_rows(web.app, Question) == 5


def test_a_web_process_does_not_refuse_on_a_count_older_than_it_trusts(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A web process counts the shared queue only when requests come. After a quiet spell its
    last count is old: the queue that count found full was run meanwhile. The next request is
    let through and the queue counted again, not answered busy (QUEUE_COUNT_TRUSTED)."""
    monkeypatch.setattr(inbox_module, "QUEUE_COUNTED_EVERY", 0.0)
    with web_and_worker(db_url, clock, ALIGN_MAX_BACKLOG="2") as (web, worker):
        for text in ("ask First?", "ask Second?"):
            assert web.post_command(text).text == ""
            web.settle()
        refused = web.post_command("ask Third?")  # a fresh count: the queue is full
        assert refused.json() == {"response_type": "ephemeral", "text": BUSY}
        web.settle()
        assert work(worker) == 2  # run while the web process was asked nothing
        monkeypatch.setattr(inbox_module, "QUEUE_COUNT_TRUSTED", 0.0)  # its count is old now
        assert web.post_command("ask Fourth?").text == ""  # let through, not busy
        web.settle()
        assert web.post_command("ask Fifth?").text == ""  # on the new count: one waiting
        web.settle()
        assert work(worker) == 2
        assert count_rows(web.app, Question) == 4


def test_a_handed_off_row_a_worker_died_with_is_taken_over_once_its_claim_runs_out(
    db_url: str, clock: FakeClock
) -> None:
    """A worker takes a row and dies before running it: the row is its own until the claim
    runs out, then the next worker runs it, once."""
    with web_and_worker(db_url, clock) as (web, worker):
        web.post_command("decide Taken by a worker that died")
        web.settle()
        doomed = worker.app.inbox._take_over  # the dying worker claims the row, then nothing
        taken, _ = doomed(5)
        assert len(taken) == 1
        worker.app.inbox.release(inbox_module.Entry(taken[0].id, "slack", {}))
        with running_slack_server(
            db_url, clock, serving=Serving(role="worker"), fake=web.fake, **HAND_OFF
        ) as live:
            assert work(live) == 0  # claimed: left alone
            clock.advance(timedelta(seconds=31))  # past ALIGN_INBOX_CLAIM_TIMEOUT
            assert work(live) == 1
            assert work(live) == 0
        assert count_rows(web.app, Decision) == 1
        assert len(web.fake.calls_to("chat.postMessage")) == 1


def test_a_teams_message_is_handed_off_and_answered_by_the_worker(
    db_url: str, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with (
            teams_server(db_url, clock, role="web", **HAND_OFF) as web,
            teams_server(db_url, clock, role="worker", **HAND_OFF) as worker,
        ):
            await web.say("decide Teams hands off")
            assert web.connector.sent_of("reply") == []
            assert count_rows(web.app, Decision) == 0
            queue = Queue(worker.app)
            assert await queue.round() == 1
            await worker.app.inbox.idle()
            await worker.app.postings.idle()
            (reply,) = web.connector.sent_of("reply")  # to the conversation's own service
            assert "Teams hands off" in str(reply.activity)
            assert count_rows(web.app, Decision) == 1
            assert await queue.round() == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("cut_at", ["commit", "release_savepoint"])
def test_clicks_whose_group_loses_its_connection_before_its_commit_are_each_counted_once(
    db_url: str, clock: FakeClock, cut_at: str
) -> None:
    """PostgreSQL: the worker runs the handed-off clicks in groups (`Inbox.runs_together`), and
    each group's connection is cut just before its COMMIT, or mid-group as its first call's
    savepoint is released (its backend ended from another connection, as a database restart or
    failover would), the worker itself living on. Nothing of a group is stored; each of its
    votes must still be counted once, its clicker given one receipt and no error, and every
    row end done."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connection to lose")
    with web_and_worker(db_url, clock) as (web, worker):
        message_ts, tacos = _lunch_poll_and_its_tacos_button(web, worker)
        voters = [f"U0CUT{n:05d}" for n in range(6)]
        click_tacos(web, message_ts, tacos, voters)
        web.settle()
        admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
        cut: set[str] = set()

        def cut_before_commit(conn: Any, *_: Any) -> None:
            thread = threading.current_thread().name
            if not thread.startswith("align-inbox-runs") or thread in cut:
                return  # each group thread's first commit only
            cut.add(thread)
            pid = conn.connection.driver_connection.info.backend_pid
            with admin.connect() as other:
                ended = other.execute(
                    text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}
                )
                assert ended.scalar_one()

        engine = worker.app.db.engine
        event.listen(engine, cut_at, cut_before_commit)
        try:
            work(worker)
        finally:
            event.remove(engine, cut_at, cut_before_commit)
            admin.dispose()
        assert cut
        clock.advance(timedelta(seconds=31))  # past ALIGN_INBOX_CLAIM_TIMEOUT: recovery's turn
        while work(worker):
            pass
        worker.loop.run(worker.app.inbox.recover())
        worker.settle()

        texts = [r.body.get("text", "") for r in web.fake.responses]
        assert not [t for t in texts if "went wrong" in t], texts
        assert sum("Recorded your vote on P-1" in t for t in texts) == len(voters), texts
        assert count_rows(web.app, Ballot) == len(voters)
        assert [status for status, _ in rows(web)] == ["done"] * (1 + len(voters))


def _lunch_poll_and_its_tacos_button(
    web: SlackServer, worker: SlackServer
) -> tuple[str, dict[str, Any]]:
    """Open a poll through the web process, the worker running it: its message's ts, and its
    "Tacos" button."""
    web.post_command('poll "Lunch?" "Tacos" "Pho"')
    web.settle()
    assert work(worker) == 1
    return tacos_button(web)


def tacos_button(server: SlackServer) -> tuple[str, dict[str, Any]]:
    """The lunch poll's message (P-1) as Slack holds it: its ts, and its "Tacos" button."""
    message = server.poll_message(1)
    buttons = [e for b in message.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return str(message.result["ts"]), next(b for b in buttons if "Tacos" in b["text"]["text"])


def click_tacos(
    server: SlackServer, message_ts: str, tacos: dict[str, Any], users: Iterable[str]
) -> None:
    """Each of `users` clicks the poll's "Tacos" button (signed, through the server); each
    click is acknowledged."""
    for user in users:
        clicked = server.post_action(
            action_id=tacos["action_id"], value=tacos["value"], user=user, message_ts=message_ts
        )
        assert clicked.status_code == 200
