"""kill -9 under ALIGN_HAND_OFF: real `--role web` and `--role worker` processes, real deaths.

tests/inbox/test_hand_off_promises.py kills a worker inside one test process; here each role is
an `align serve` of its own (tests/server/process.py) on one database, against the fake Slack,
and a burst of signed requests — votes on one poll, each from another person, and `/align
decide …` commands, plus a few forged ones — comes in from several threads while

- the worker is SIGKILLed twice mid-burst, holding requests it took from the queue (some not yet
  run, some run with their reply in flight), and a new worker started each time — the second
  dies while it runs what it took over from the first;
- or the web process is SIGKILLed right after acknowledging some, and started again on the same
  port (requests sent meanwhile wait for it, those the kill cut off are not acknowledged), the
  worker running on.

Afterwards every acknowledged request ran exactly once (one audit row per acknowledged voter,
the poll's ballots the acknowledged voters, one decision per acknowledged command), each posted
exactly one reply or receipt to Slack (through its response_url, or through the outbox when
the process that ran it died first), nothing refused is stored (a forged request never; one
the kill cut off only if its row was written before the kill: the ack lost on its way, which no
server can tell from a lost request), nothing is left unfinished, and the whole is over within
DONE_WITHIN seconds of the burst's start.

The worker kill found receipts and replies posted twice on PostgreSQL (the engine ran once): a
row recovery had taken but not yet started was taken again by the same worker's queue once its
claim ran out (adapters/inbox.py, `Inbox.recover`).

The replies the killed worker had in flight (Slack held them) are answered with an error after
the kill: Slack did not take them. (A reply Slack took whose process died before it heard so is
posted again by the next worker: the one reply that can come twice, the inbox being
at-least-once towards Slack; the kill waits until no such reply is outstanding, so that every
reply here must come exactly once.)
"""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from collections import Counter
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.bootstrap import build
from storage.models import Ballot, InboxEntry, OutboxMessage
from tests.conftest import make_settings, opened
from tests.fakes import FakeSlackApi
from tests.server.process import AlignProcess, align, free_port, wait_until
from tests.server.test_kill import (
    CHANNEL,
    Burst,
    _click,
    _command,
    counted,
    open_a_poll,
    outbox_rows,
    recovered_in,
)
from tests.server.test_shutdown import slack_env

pytestmark = [
    pytest.mark.xdist_group("kill_hand_off"),  # two or three processes a test, in turn
    # On PostgreSQL only, the database hand-off is for (the README: several processes writing one
    # SQLite file take turns on its write lock); tests/inbox/test_hand_off_promises.py holds the
    # same promises on both databases, with the deaths simulated in one process.
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]

VOTES = 60
COMMANDS = 16
FORGED = 6
SENDERS = 6
KILLS = 2
"""Of the worker: the second dies while it runs what it took over from the first."""
WEB_KILLS = 1
CLAIM_SECONDS = "1"
RECOVER_EVERY = "0.5"
"""ALIGN_INBOX_RECOVER_EVERY: the replies a dead worker owed are sent within half a second of
its claims running out (CLAIM_SECONDS), not in rounds 5 s apart."""
OUTBOX_LEASE = "2"
"""ALIGN_OUTBOX_LEASE: a reply the dead worker was sending through the outbox is sent by the
next one 2 s after, not 60 s (the default)."""
DONE_WITHIN = 60.0
"""Seconds from the burst's start until everything acknowledged is counted and answered (it
takes some 5-15 s here; a request stuck until a 30 s default claim ran out would show)."""
HELD = ("users.info", "response_url", "chat.postMessage")
"""What Slack answers slowly at a worker's kill: a command's profile (before its engine runs),
a vote's receipt and a command's reply (after)."""
REPLIES = ("response_url", "chat.postMessage")


def hand_off_env(db_url: str, fake: FakeSlackApi, port: int, *, claim: str) -> dict[str, str]:
    return slack_env(db_url, fake, port, "5") | {
        "ALIGN_HAND_OFF": "true",
        "ALIGN_WORKER_NICE": "0",  # a test's processes share two cores as equals
        "ALIGN_INBOX_CLAIM_TIMEOUT": claim,
        "ALIGN_INBOX_RECOVER_EVERY": RECOVER_EVERY,
        "ALIGN_OUTBOX_LEASE": OUTBOX_LEASE,
    }


def start(
    stack: ExitStack, db_url: str, tmp_path: Path, fake: FakeSlackApi, *roles: tuple[str, int]
) -> list[AlignProcess]:
    """`align serve --role <role>` on each (role, port), started side by side (a process takes
    some 2 s to import and start), each listening on return."""
    env = partial(hand_off_env, db_url, fake, claim=CLAIM_SECONDS)
    processes = [
        stack.enter_context(align(tmp_path, "serve", "--role", role, port=port, **env(port)))
        for role, port in roles
    ]
    for process in processes:
        process.wait_listening()
    return processes


def kill(process: AlignProcess) -> None:
    process.send(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL


def inbox_states(db_url: str, *, claimed: bool = False) -> Counter[str]:
    """How many inbox rows are in each state (`claimed`: only rows some process holds)."""
    with opened(db_url) as app:
        with app.db.uow() as session:
            query = select(InboxEntry.status, func.count()).group_by(InboxEntry.status)
            if claimed:
                query = query.where(InboxEntry.claimed_by.is_not(None))
            rows = session.execute(query).all()
        return Counter({str(status): int(n) for status, n in rows})


def ballots(db_url: str) -> list[str]:
    with opened(db_url) as app, app.db.uow() as session:
        return sorted(session.scalars(select(Ballot.voter_key)))


def voter(n: int) -> str:
    return f"U0VOTE{n:05d}"


DECISION = re.compile(r"Burst decision (\d+)\b")


def unsettled(db_url: str) -> set[tuple[str, int]]:
    """The requests of the burst whose reply is still owed: run, but their inbox row not done
    yet, or their reply waiting in the outbox."""
    app = build(make_settings(db_url), migrate=False)
    found: set[tuple[str, int]] = set()
    try:
        with app.db.uow() as session:
            sealed = session.scalars(
                select(InboxEntry.payload).where(InboxEntry.status == "answered")
            ).all()
            outbox = session.execute(
                select(OutboxMessage.channel, OutboxMessage.payload).where(
                    OutboxMessage.kind == "answer", OutboxMessage.status != "sent"
                )
            ).all()
    finally:
        app.db.dispose()
    for payload in sealed:
        body = app.inbox.seal.open(payload) if payload else {}
        user = str((body.get("user") or {}).get("id", "")) if "actions" in body else ""
        if user.startswith("U0VOTE"):
            found.add(("vote", int(user.removeprefix("U0VOTE"))))
        if match := DECISION.search(str(body.get("text", ""))):
            found.add(("decide", int(match[1])))
    for channel, reply in outbox:
        if channel.startswith("U0VOTE"):
            found.add(("vote", int(channel.removeprefix("U0VOTE"))))
        elif match := DECISION.search(json.dumps(reply)):
            found.add(("decide", int(match[1])))
    return found


def taken(fake: FakeSlackApi, burst: Burst) -> set[tuple[str, int]]:
    """The requests of the burst Slack took a reply for."""
    return set(replies(fake, burst))


def replies(fake: FakeSlackApi, burst: Burst) -> dict[tuple[str, int], int]:
    """How many replies Slack took for each request of the burst: a receipt or reply through
    the request's response_url, or a message through the outbox (a vote's receipt to the
    voter's DM, a decision to the channel)."""
    count: Counter[tuple[str, int]] = Counter()
    for post in fake.responses:
        kind, _, n = post.name.partition("-")
        count["vote" if kind == "click" else "decide", int(n)] += 1
    for post in fake.calls_to("chat.postMessage"):
        channel = str(post.args.get("channel"))
        if channel.startswith("U0VOTE"):
            count["vote", int(channel.removeprefix("U0VOTE"))] += 1
        elif channel == CHANNEL and (match := DECISION.search(str(post.args.get("text")))):
            count["decide", int(match[1])] += 1
    return dict(count)


def run_burst(
    fake: FakeSlackApi, port: int, seed: int
) -> tuple[Burst, list[threading.Thread], float]:
    """Start sending the burst, the web process up: the burst, its sender threads (to join)
    and when it began."""
    items = [("vote", n, _click(n, fake)) for n in range(VOTES)]
    items += [("decide", n, _command(n, fake)) for n in range(COMMANDS)]
    items += [("forged", n, _click(10_000 + n, fake)) for n in range(FORGED)]
    random.Random(seed).shuffle(items)
    burst = Burst(f"http://127.0.0.1:{port}/slack/events", items, forged=frozenset({"forged"}))
    senders = [threading.Thread(target=burst.send) for _ in range(SENDERS)]
    burst.up.set()
    began = time.monotonic()
    for sender in senders:
        sender.start()
    return burst, senders, began


def check(db_url: str, fake: FakeSlackApi, burst: Burst, began: float) -> str:
    """Wait for everything acknowledged to be counted and answered, then assert it all ran and
    was answered exactly once; a line that says what happened."""
    acked_votes = {voter(n) for kind, n in burst.acked if kind == "vote"}
    acked_commands = {f"Burst decision {n}" for kind, n in burst.acked if kind == "decide"}
    acked = {item for item in burst.acked if item[0] != "forged"}

    def all_done() -> bool:
        now = counted(db_url)
        answered = replies(fake, burst)
        return (
            acked_votes <= set(now.votes)
            and acked_commands <= set(now.decisions)
            and now.unfinished == 0
            and all(answered.get(item, 0) >= 1 for item in acked)
        )

    remaining = DONE_WITHIN - (time.monotonic() - began)
    try:
        wait_until(all_done, max(remaining, 0.1), "every acknowledged request run and answered")
    except AssertionError:
        now, answered = counted(db_url), replies(fake, burst)
        missing = sorted(i for i in acked if answered.get(i, 0) < 1)
        raise AssertionError(
            f"not all done within {DONE_WITHIN} s: votes missing "
            f"{sorted(acked_votes - set(now.votes))}, decisions missing "
            f"{sorted(acked_commands - set(now.decisions))}, unfinished {now.unfinished}, "
            f"unanswered {missing}; inbox {inbox_states(db_url)}"
        ) from None
    took = time.monotonic() - began
    # Nothing more can come: no request unfinished, no reply waiting in the outbox.
    wait_until(lambda: all(s == "sent" for _, s in outbox_rows(db_url)), 30, "the outbox sent")
    final, answered = counted(db_url), replies(fake, burst)

    # Every acknowledged request ran exactly once…
    twice = {k: n for k, n in (*final.votes.items(), *final.decisions.items()) if n != 1}
    assert twice == {}, f"run more than once: {twice}"
    assert acked_votes <= set(final.votes) and acked_commands <= set(final.decisions)
    assert ballots(db_url) == sorted(final.votes)  # the tally: one ballot per counted voter
    # …and was answered exactly once.
    answered_twice = {item: n for item, n in answered.items() if n > 1}
    assert answered_twice == {}, f"answered more than once: {answered_twice}"
    # Nothing refused is stored: a forged request never, and a request not acknowledged only
    # if a kill cut its connection after its row was written (the ack lost on the way).
    ran = {("vote", int(u.removeprefix("U0VOTE"))) for u in final.votes}
    ran |= {("decide", int(t.removeprefix("Burst decision "))) for t in final.decisions}
    ran_unacked = ran - burst.acked
    assert ran_unacked <= burst.cut_off, f"stored but refused: {ran_unacked - burst.cut_off}"
    assert not any(kind == "forged" for kind, _ in burst.acked)
    assert not any(u.startswith("U0VOTE1") for u in final.votes)  # no forged voter (10000+)
    assert final.failed == 0 and final.unfinished == 0
    assert inbox_states(db_url)["done"] == len(ran)  # no row left behind
    return (
        f"{len(acked)} of {len(burst.items) - FORGED} acknowledged "
        f"({len(acked_votes)} votes, {len(acked_commands)} commands), "
        f"{len(burst.cut_off)} cut off by a kill ({len(ran_unacked)} of those ran), "
        f"{sum(answered.values())} replies; {took:.1f} s"
    )


def test_kill_9_of_the_worker_mid_burst_runs_and_answers_every_acknowledged_request_once(
    migrated_db_url: str, tmp_path: Path
) -> None:
    db_url = migrated_db_url
    open_a_poll(db_url)
    web_port, worker_port = free_port(), free_port()
    with FakeSlackApi.running() as fake, ExitStack() as stack:
        _, worker = start(stack, db_url, tmp_path, fake, ("web", web_port), ("worker", worker_port))
        workers = [worker]
        # The web process stays up: requests keep coming while workers die.
        burst, senders, began = run_burst(fake, web_port, seed=11)
        caught = []
        for k in range(1, KILLS + 1):
            at = len(burst.items) * k // (KILLS + 2)
            wait_until(lambda at=at: burst.started >= at, 60, f"{at} requests sent")
            before = {method: fake.held_count(method) for method in HELD}
            for method in HELD:
                fake.hold(method)
            total = sum(before.values()) + 4
            wait_until(lambda total=total: fake.held_count(*HELD) >= total, 30, "4 held calls")

            def held_now(method: str, before: dict[str, int] = before) -> int:
                return fake.held_count(method) - before[method]

            # No reply Slack took may still wait for its row's mark (the request's inbox row
            # done, or its outbox row sent): the next worker would rightly send it again.
            def settled() -> bool:
                owed = unsettled(db_url)  # first: a reply Slack takes meanwhile shows in both
                return not (taken(fake, burst) & owed)

            wait_until(settled, 30, "every reply Slack took marked as sent")
            held_by_the_worker = inbox_states(db_url, claimed=True)
            kill(workers[-1])
            caught.append(held_by_the_worker["received"] + held_by_the_worker["answered"])
            for method in REPLIES:  # Slack did not take what the dead worker was sending
                if held_now(method):
                    fake.fail_next(method, status=500, times=held_now(method))
            for method in HELD:
                fake.release(method)
            wait_until(lambda: not fake.pending_failures, 10, "the dead worker's replies refused")
            workers += start(stack, db_url, tmp_path, fake, ("worker", worker_port))
        for sender in senders:
            sender.join(120)
        summary = check(db_url, fake, burst, began)
    print(
        f"\nworker kill -9 x{KILLS} ({db_url.split(':')[0]}): {summary}; held by the worker "
        f"at each kill {caught}, {recovered_in(workers)} taken over"
    )
    assert all(n >= 2 for n in caught), caught  # every kill caught work in the worker


def test_kill_9_of_the_web_process_after_acks_loses_no_acknowledged_request(
    migrated_db_url: str, tmp_path: Path
) -> None:
    db_url = migrated_db_url
    open_a_poll(db_url)
    web_port, worker_port = free_port(), free_port()
    with FakeSlackApi.running() as fake, ExitStack() as stack:
        webs = start(stack, db_url, tmp_path, fake, ("web", web_port), ("worker", worker_port))[:1]
        burst, senders, began = run_burst(fake, web_port, seed=12)
        queued = []
        for k in range(1, WEB_KILLS + 1):
            at = len(burst.items) * k // (WEB_KILLS + 2)
            wait_until(lambda at=at: len(burst.acked) >= at, 60, f"{at} requests acknowledged")
            burst.up.clear()  # requests sent from now on wait for the next web process
            kill(webs[-1])
            queued.append(inbox_states(db_url)["received"])
            webs += start(stack, db_url, tmp_path, fake, ("web", web_port))
            burst.up.set()
        for sender in senders:
            sender.join(120)
        summary = check(db_url, fake, burst, began)
    print(
        f"\nweb kill -9 x{WEB_KILLS} ({db_url.split(':')[0]}): {summary}; queued at kills {queued}"
    )
