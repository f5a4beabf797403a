"""Reads in a web process that hands off (ALIGN_HAND_OFF, `--role web`): admitted without a row
and answered by the web process itself, in its ack, as one process answers them
(adapters/slack/http.py `_Record`, listeners.py `on_command`). Attacked through the real
protocol — signed HTTP and Socket Mode into the running app, the fake Slack Web API — on both
databases: no worker at all, a read slower than the ack budget, a reply Slack will not take
after the ack, Socket Mode, the asker's profile, a stop while a read waits, a backlog its own
reads fill. Whatever happens, nothing is queued for a worker, and the person sees each read's
answer once — a reply Slack refused after the ack through the outbox, as one process sends it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import select

from adapters.inbox import BUSY
from adapters.runtime import RUNTIME_KEY
from adapters.web_keys import Serving
from bot.clock import FakeClock
from storage.models import InboxEntry, OutboxMessage, Profile
from tests.conftest import count_rows
from tests.inbox.test_hand_off import HAND_OFF, rows, web_and_worker, work
from tests.server.process import accepts, wait_until
from tests.slack.conftest import CHANNEL, USER, SlackServer, running_slack_server
from tests.slack.test_reads_answered_in_ack import answer_of, sigterm_while_a_read_waits
from tests.slack.test_socket_mode import socket_mode


@contextmanager
def web_alone(db_url: str, clock: FakeClock, **settings: str) -> Iterator[SlackServer]:
    """A web process that hands off, and no worker anywhere (all down, or not started yet)."""
    with running_slack_server(
        db_url, clock, serving=Serving(role="web"), **HAND_OFF, **settings
    ) as web:
        yield web


def test_a_read_is_answered_in_its_ack_with_no_worker_running(
    db_url: str, clock: FakeClock
) -> None:
    """Reads need no worker: with every worker down they are still answered, and leave nothing
    for one — only the write waits in the queue."""
    with web_alone(db_url, clock) as web:
        assert web.post_command("ask Who owns the launch?").text == ""  # queued, nobody runs it
        web.settle()
        for text, shown in (
            ("help", "Align commands"),
            ("questions", "No open questions"),  # the queued one never ran
            ("decisions", "No decisions"),
            ("pending", "Waiting for you"),
            ("priorities", "backlog is empty"),
            ("roadmap", "Roadmap"),
        ):
            answer = answer_of(web.post_command(text))
            assert answer is not None, text
            assert shown in json.dumps(answer), (text, answer)
        web.settle()
        assert rows(web) == [("received", None)]  # the question's alone
        assert web.fake.calls_to("chat.postMessage") == [] and web.fake.responses == []
        assert web.app.inbox.backlog == 1  # the waiting question; no read still counted


@pytest.mark.parametrize("verb", ["help", "decisions"])
def test_a_read_slower_than_the_ack_budget_is_shown_once_after_its_empty_ack(
    db_url: str, clock: FakeClock, verb: str
) -> None:
    """Its profile lookup held past ALIGN_INBOX_ACK_BUDGET: acked empty, counted until shown,
    then shown once by the web process — privately through its response_url (`help`), or in
    the channel (`decisions`) — and never by a worker."""
    with web_and_worker(db_url, clock, ALIGN_INBOX_ACK_BUDGET="0.3") as (web, worker):
        web.post_command("help")  # the channel listed, the default user looked up
        web.settle()
        web.fake.hold("users.info")
        url = web.fake.response_url("held")
        assert answer_of(web.post_command(verb, user="U0HELD0001", response_url=url)) is None
        web.fake.wait_held_sync("users.info")
        assert web.app.inbox.backlog == 1
        assert work(worker) == 0  # nothing queued

        web.fake.release("users.info")
        web.settle()
        posted = web.fake.calls_to("chat.postMessage")
        if verb == "help":
            assert posted == []
            (shown,) = web.fake.responses
            assert (shown.name, shown.body["text"]) == ("held", "Align commands")
        else:
            assert web.fake.responses == []
            (post,) = posted
            assert post.args["channel"] == CHANNEL
            assert "No decisions" in json.dumps(post.args["blocks"])
        assert rows(web) == [] and web.app.inbox.backlog == 0
        assert work(worker) == 0
        assert len(web.fake.calls_to("chat.postMessage")) == len(posted)  # the worker sent none


@contextmanager
def one_process_or_web(
    role: str, db_url: str, clock: FakeClock, **settings: str
) -> Iterator[tuple[SlackServer, SlackServer | None]]:
    """`all` (one process, no worker) or a web process that hands off and its worker."""
    if role == "all":
        with running_slack_server(db_url, clock, **settings) as alone:
            yield alone, None
    else:
        with web_and_worker(db_url, clock, **settings) as (web, worker):
            yield web, worker


def late_read_slack_refused(
    role: str, db_url: str, clock: FakeClock, verb: str, caplog: pytest.LogCaptureFixture
) -> dict[str, Any]:
    """A read past its ack budget whose reply Slack then refuses everywhere it could be shown
    (its response_url; for a channel's read, chat.postMessage first): what became of it, and
    what the outbox's dispatcher then sent."""
    caplog.clear()
    with one_process_or_web(role, db_url, clock, ALIGN_INBOX_ACK_BUDGET="0.3") as (
        server,
        worker,
    ):
        server.post_command("help")
        server.settle()
        earlier = count_rows(server.app, OutboxMessage)  # the other role's run: one database
        server.fake.hold("users.info")
        url = server.fake.response_url("refused")
        user = f"U0LATE{role.upper():0>4}"  # looked up anew: the other run stored its own
        acked = answer_of(server.post_command(verb, user=user, response_url=url))
        server.fake.wait_held_sync("users.info")
        if verb != "help":  # a channel's read is posted first, its response_url the fallback
            server.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
        server.fake.fail_next("response_url", status=404)
        server.fake.release("users.info")
        server.settle()
        queued = work(worker) if worker is not None else 0
        server.settle()
        posted = len(server.fake.calls_to("chat.postMessage"))
        seen = {
            "acked": acked,
            "shown": len(server.fake.responses) + posted,
            "refused": [c.method for c in server.fake.failed_calls],  # response_url's not kept
            "unrefused": len(server.fake.pending_failures),
            "stored": (
                count_rows(server.app, InboxEntry),
                count_rows(server.app, OutboxMessage) - earlier,
            ),
            "queued": queued,
            "backlog": server.app.inbox.backlog,
            "logged": [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR],
        }
        dispatching = worker or server  # a web process sends no outbox; its worker does
        clock.advance(timedelta(seconds=5))  # past the channel's pace the other run's post set
        dispatching.loop.run(dispatching.web_app[RUNTIME_KEY].dispatch())
        dispatching.settle()
        sent = server.fake.calls_to("chat.postMessage")[posted:]
        seen["sent"] = [
            (
                "the asker" if c.args["channel"] == user else c.args["channel"],
                c.args["text"] + json.dumps(c.args.get("blocks")),
            )
            for c in sent
        ]
        with server.app.db.uow() as session:
            ordered = select(OutboxMessage.status).order_by(OutboxMessage.id)
            seen["outbox"] = list(session.scalars(ordered))[earlier:]
        return seen


@pytest.mark.parametrize("verb", ["help", "decisions"])
def test_a_late_reads_reply_slack_refuses_goes_through_the_outbox_in_a_web_process_as_in_one(
    db_url: str, clock: FakeClock, verb: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An admitted read has no row to run again and no stored reply: when Slack refuses its
    reply after the empty ack, the reply the engine gave goes to the outbox — as a recorded
    request's does — and the dispatcher sends it where it belongs: `help` to the asker's DM
    with the app, a channel's list to the channel. The web process does exactly what one
    process does, and queues nothing."""
    alone = late_read_slack_refused("all", db_url, clock, verb, caplog)
    web = late_read_slack_refused("web", db_url, clock, verb, caplog)
    assert web == alone
    assert web["acked"] is None and web["shown"] == 0
    assert web["refused"] == (["chat.postMessage"] if verb == "decisions" else [])
    assert web["unrefused"] == 0  # its response_url refused too
    assert web["stored"] == (0, 1) and web["queued"] == 0 and web["backlog"] == 0
    assert web["logged"] == ["slack read: the work after the ack failed"]
    to, shown = ("the asker", "Align commands") if verb == "help" else (CHANNEL, "No decisions")
    ((sent_to, sent),) = web["sent"]
    assert sent_to == to and shown in sent, sent
    assert web["outbox"] == ["sent"]


# `align serve` sets web_app[SOCKET_MODE] before it starts the app; this flips it on a running
# one, which aiohttp merely frowns upon (as in tests/slack/test_socket_mode.py).
@pytest.mark.filterwarnings("ignore:Changing state of started:DeprecationWarning")
def test_over_socket_mode_a_read_is_answered_in_its_ack_and_a_write_still_queued(
    db_url: str, clock: FakeClock
) -> None:
    """`--socket --role web`: the envelope's ack carries a read's answer, as in one process;
    a write is acked bare and left to the worker."""
    with (
        web_and_worker(db_url, clock, SLACK_APP_TOKEN="xapp-test") as (web, worker),
        socket_mode(web) as endpoint,
    ):

        async def exchange(envelope_id: str, text: str) -> dict[str, Any]:
            return await endpoint.command(envelope_id, dict(parse_qsl(web.command_body(text))))

        ack = web.loop.run(exchange("env-write", "decide Over the socket, handed off"))
        assert ack == {"envelope_id": "env-write"}  # bare: the worker runs it
        web.settle()
        assert rows(web) == [("received", None)]
        assert web.fake.calls_to("chat.postMessage") == []
        assert work(worker) == 1
        (post,) = web.fake.calls_to("chat.postMessage")
        assert "Over the socket, handed off" in json.dumps(post.args["blocks"])

        ack = web.loop.run(exchange("env-read", "decisions"))
        assert ack["envelope_id"] == "env-read"
        assert ack["payload"]["response_type"] == "in_channel"
        assert "Over the socket, handed off" in json.dumps(ack["payload"]["blocks"])
        web.settle()
        assert rows(web) == [("done", None)]  # the write's alone
        assert work(worker) == 0
        assert len(web.fake.calls_to("chat.postMessage")) == 1 and web.fake.responses == []


def test_a_read_shown_in_the_askers_time_zone_looks_them_up_in_the_web_process(
    db_url: str, clock: FakeClock
) -> None:
    """`questions` shows a due time in the asker's zone: the web process looks the asker up
    (users.info, the profiles table) and lists the channel itself — services every role has —
    and answers in its ack."""
    with web_and_worker(db_url, clock) as (web, worker):
        web.fake.users[USER] = {"tz": "America/New_York"}
        web.fake.users["U0TOKYO001"] = {"tz": "Asia/Tokyo"}
        web.post_command('ask Who signs off? due:"2026-11-27 12:00"')  # noon in New York
        web.settle()
        assert work(worker) == 1
        looked_up = len(web.fake.calls_to("users.info"))
        clock.advance(timedelta(minutes=6))  # the roster the worker stored is stale now

        answer = answer_of(web.post_command("questions", user="U0TOKYO001"))
        assert answer is not None
        assert "due Sat 2026-11-28 02:00 JST" in json.dumps(answer["blocks"])
        web.settle()
        (lookup,) = web.fake.calls_to("users.info")[looked_up:]
        assert lookup.args["user"] == "U0TOKYO001"
        with web.app.db.uow() as session:
            tz = session.execute(select(Profile.tz).where(Profile.user == "U0TOKYO001"))
            assert tz.scalar_one() == "Asia/Tokyo"
        assert len(web.fake.calls_to("conversations.members")) == 2  # the worker's, the web's
        assert rows(web) == [("done", None)] and work(worker) == 0


def stop_a_web_process_while_a_read_waits(
    db_url: str, tmp_path: Path
) -> tuple[httpx.Response | Exception, float, bool, list[Any], int, str]:
    """`align serve --role web` (ALIGN_HAND_OFF) with a read's ack waiting for its answer (its
    profile lookup held by Slack) when SIGTERM arrives; Slack answers the lookup only once the
    ack came back. The ack, how long after the signal it came, whether it came while the lookup
    was still held, the read's replies after it, the process's exit status and its log."""
    with sigterm_while_a_read_waits(
        db_url, tmp_path, "--role", "web", grace="5", budget="10", **HAND_OFF
    ) as stop:
        ack = stop.acked.result(timeout=30)
        took = time.monotonic() - stop.began
        fake = stop.fake
        still_held = fake.held_count("users.info") == 1 and not fake.calls_to("users.info")
        wait_until(lambda: not accepts(stop.port), 10, "the server to stop accepting")
        fake.release("users.info")
        status = stop.serve.wait(timeout=30)
    return ack, took, still_held, stop.shown(), status, stop.serve.output


def test_a_stop_sends_a_waiting_reads_ack_at_once_and_still_shows_the_read(
    db_url: str, tmp_path: Path
) -> None:
    """SIGTERM while a read's ack waits in a web process: the ack goes out empty at once
    (`SlackBot.stop_waiting`), not after the ack budget, and the read is shown once within the
    grace, by the web process itself — no worker exists to run it, and nothing is queued."""
    ack, took, still_held, shown, status, output = stop_a_web_process_while_a_read_waits(
        db_url, tmp_path
    )
    assert isinstance(ack, httpx.Response), ack
    assert (ack.status_code, ack.text) == (200, "")
    assert still_held and took < 2, took  # before its answer, well within the 10 s budget
    assert status == 0, output
    (post,) = shown
    assert post.args["channel"] == CHANNEL
    assert "No decisions" in json.dumps(post.args["blocks"])
    for noise in ("Traceback", "Unclosed", "destroyed but it is pending"):
        assert noise not in output, output


def test_reads_in_flight_in_the_web_process_fill_its_backlog(db_url: str, clock: FakeClock) -> None:
    """ALIGN_MAX_BACKLOG holds the web process's own reads too: with two of them still
    running (their channel's member list held past the ack budget), the next read and the next
    write are answered busy and nothing is stored, whatever the age of its last count of the
    shared queue — the queue is empty; its own reads are what fills the bound."""
    with web_and_worker(db_url, clock, ALIGN_MAX_BACKLOG="2", ALIGN_INBOX_ACK_BUDGET="0.2") as (
        web,
        worker,
    ):
        web.fake.hold("conversations.members")
        try:
            for _ in range(2):
                assert answer_of(web.post_command("decisions")) is None  # acked past the budget
            web.fake.wait_held_sync("conversations.members")
            assert web.app.inbox.backlog == 2

            for text in ("decisions", "help", "ask Is there room?", "decisions"):
                refused = web.post_command(text)
                assert refused.text and refused.json() == {
                    "response_type": "ephemeral",
                    "text": BUSY,
                }, text
                web.loop.run(web.app.inbox.idle())  # its count of the shared queue, if begun
            assert rows(web) == [] and work(worker) == 0
        finally:
            web.fake.release("conversations.members")
        listed = web.fake.wait_for_sync("chat.postMessage", 2)
        assert all("No decisions" in json.dumps(call.args["blocks"]) for call in listed)
        web.settle()
        assert len(listed) == 2 and web.app.inbox.backlog == 0
        assert answer_of(web.post_command("decisions")) is not None  # room again
