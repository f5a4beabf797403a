"""Engine calls that queue up in a burst run together (`Inbox.once_together`: SQLite, and on
PostgreSQL a worker taking handed-off requests): one transaction, each call with its own
`answered` mark in a savepoint of its own. Every vote is
counted once and every receipt sent; a refusal or an error in the middle undoes none of the
others; a group that never committed (the process died) leaves every row to be run again, once.
Through signed HTTP requests into the running server with the fake Slack API, and through the
inbox itself where the grouping has to be forced (the writer lock held while calls queue)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text

from adapters.inbox import Destination, Entry, Inbox, Lost
from adapters.web_keys import Serving
from bot.clock import FakeClock
from bot.context import Actor
from bot.polls import tallies
from bot.views import Reply
from storage import ballots as ballots_store
from storage import inbox as store
from storage import tallies as tallies_store
from storage.db import Database, UnitOfWork
from storage.models import AuditEntry, Ballot, InboxEntry, Poll
from tests.slack.conftest import CHANNEL, SlackServer, running_slack_server


def _count(server: SlackServer, model: Any, *where: Any) -> int:
    with server.app.db.uow() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(session.execute(query).scalar_one())


def _poll(server: SlackServer) -> list[dict[str, Any]]:
    server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    blocks = server.poll_message(1).args["blocks"]
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_a_burst_of_clicks_counts_every_vote_once_and_sends_every_receipt(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    voters = [f"U0BURST{n:03d}" for n in range(60)]
    server.fake.channel_members[CHANNEL] = [*voters, server.fake.bot_user_id]
    date, scope = _poll(server)

    def click(n: int) -> int:
        if n == 30:  # a refusal in the middle of the burst: a poll that does not exist
            button = {"action_id": date["action_id"], "value": "vote P-9 1"}
        else:
            button = date if n % 3 else scope
        return server.post_action(
            action_id=button["action_id"], value=button["value"], user=voters[n]
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        assert set(pool.map(click, range(len(voters)))) == {200}
    server.settle()

    assert _count(server, Ballot) == 59  # every vote but the refused one, once
    receipts = [r.body["text"] for r in server.fake.responses]
    assert sum("Recorded your vote on P-1" in t for t in receipts) == 59
    assert sum("P-9" in t for t in receipts) == 1  # the refusal was told, to its clicker
    assert _count(server, InboxEntry, InboxEntry.status != store.DONE) == 0
    final = server.fake.calls_to("chat.update")[-1]
    text = str(final.args["blocks"])
    assert "*40*  1. Date" in text and "*19*  2. Scope" in text


# --------------------------------------------------------------------------------------------
# The inbox itself: groups forced by holding the writer lock while the calls queue
# --------------------------------------------------------------------------------------------


def _actor(user: str) -> Actor:
    return Actor(workspace="slack:T0TEST0001", channel=CHANNEL, user=user, platform="slack")


def _where(reply: Reply) -> Destination:
    return Destination("slack:T0TEST0001", CHANNEL, "slack")


def _record(server: SlackServer, inbox: Inbox, n: int) -> Entry:
    entry = server.loop.run(inbox.record("slack", f"slack:together-{n}", {"n": n}))
    assert entry is not None
    return entry


def _together(
    server: SlackServer, inbox: Inbox, calls: list[tuple[Entry, Any, tuple[Any, ...]]]
) -> tuple[list[Any], list[int]]:
    """Submit every call while the test holds SQLite's writer lock, so they queue and run in
    as few groups as the inbox makes; the outcomes (reply or error) and the group sizes.
    SQLite's time budget (RUN_TOGETHER_SECONDS, 5 ms) is lifted meanwhile: it is not what these
    tests are about, and on a loaded machine, where every call may outlast it, groups of one
    call would fail the sharing they check."""
    assert inbox._run_groups
    runs = inbox._run_groups[0]
    sizes: list[int] = []
    commit, max_seconds = runs._commit, runs.max_seconds
    runs.max_seconds = None

    def counting(group: list[Any]) -> list[Any]:
        left = commit(group)
        sizes.append(len(group) - len(left))
        return left

    runs._commit = counting  # type: ignore[method-assign]
    writer = server.app.db._local_writer
    assert writer is not None

    async def submit() -> list[Any]:
        with writer.held():
            futures = [
                inbox.once_together(entry, _where, run, *args, then=lambda r: r)
                for entry, run, args in calls
            ]
            await asyncio.sleep(0.2)  # the writer thread took its first group, and waits
        outcomes = await asyncio.gather(*futures, return_exceptions=True)  # type: ignore[arg-type]
        # A group's futures are settled inside its commit, before `counting` notes its size:
        # wait for the writer thread to have noted every group (it was flaky, 1 run in 5).
        deadline = asyncio.get_running_loop().time() + 10
        while sum(sizes) < len(calls) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        return outcomes

    try:
        return server.loop.run(submit()), sizes
    finally:
        runs._commit = commit  # type: ignore[method-assign]
        runs.max_seconds = max_seconds


def test_calls_run_together_and_a_refusal_or_an_error_undoes_none_of_the_others(
    slack_server: SlackServer,
) -> None:
    server = slack_server
    _poll(server)
    inbox, engine = server.app.inbox, server.app.engine
    entries = [_record(server, inbox, n) for n in range(8)]

    def broken(actor: Actor, text: str) -> Reply:
        engine.handle(actor, text)  # votes, then fails: the savepoint takes the vote back
        raise RuntimeError("the engine call failed")

    calls: list[tuple[Entry, Any, tuple[Any, ...]]] = []
    for n, entry in enumerate(entries):
        actor = _actor(f"U0TOGETHER{n}")
        if n == 3:
            calls.append((entry, engine.handle, (actor, "vote P-9 1")))  # refused
        elif n == 5:
            calls.append((entry, broken, (actor, "vote P-1 2")))
        else:
            calls.append((entry, engine.handle, (actor, "vote P-1 1")))
    outcomes, sizes = _together(server, inbox, calls)

    assert max(sizes) >= 2  # they shared transactions
    refused, failed = outcomes[3], outcomes[5]
    assert isinstance(refused, Reply) and not refused.ok
    assert isinstance(failed, RuntimeError)
    assert all(isinstance(o, Reply) and o.ok for n, o in enumerate(outcomes) if n not in (3, 5))
    assert _count(server, Ballot) == 6  # the refusal and the failure took no other vote back
    answered = InboxEntry.status == store.ANSWERED
    assert _count(server, InboxEntry, answered) == 7  # the failed one is still unrun
    # Run again (a retry, a replay): the answered ones give their stored reply, vote nothing.
    again, _ = _together(server, inbox, calls[:3])
    assert [r.text for r in again] == [r.text for r in outcomes[:3]]
    assert _count(server, Ballot) == 6


def test_a_group_that_never_committed_leaves_every_row_to_run_again_once(
    slack_server: SlackServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies before its group's commit: nothing of any call in it is stored, every
    row is still `received`, and whoever takes them over runs each once."""
    server = slack_server
    _poll(server)
    inbox, engine, db = server.app.inbox, server.app.engine, server.app.db
    entries = [_record(server, inbox, n) for n in range(5)]
    calls = [
        (e, engine.handle, (_actor(f"U0DIED{n}"), "vote P-1 1")) for n, e in enumerate(entries)
    ]

    uow = db.uow

    def dies_at_commit(*args: Any, **kw: Any) -> Any:
        class Died(Exception):
            pass

        class Dying:
            def __enter__(self) -> Any:
                self.inner = uow(*args, **kw)
                return self.inner.__enter__()

            def __exit__(self, *exc: Any) -> bool:
                self.inner.__exit__(Died, Died(), None)  # rolled back, as a kill leaves it
                raise Died

        return Dying()

    monkeypatch.setattr(db, "uow", dies_at_commit)
    outcomes, _ = _together(server, inbox, calls)
    monkeypatch.undo()
    assert all(isinstance(o, Exception) for o in outcomes)
    assert _count(server, Ballot) == 0
    assert _count(server, InboxEntry, InboxEntry.status == store.RECEIVED) == 5

    # Another process takes the rows over once their claim ran out, and runs each once.
    other, taken = _taken_over_by_another_process(inbox, db, clock)
    assert sorted(row.id for row in taken) == sorted(e.id for e in entries)
    for entry, run, args in calls:
        other.once(entry, _where, run, *args)
        other.once(entry, _where, run, *args)  # and again: answered, nothing twice
    assert _count(server, Ballot) == 5
    with pytest.raises(Lost):  # the first process may no longer touch them
        inbox.once(entries[0], _where, engine.handle, *calls[0][2])


def test_a_worker_taking_hand_offs_runs_calls_together_on_either_database(
    db_url: str, clock: FakeClock
) -> None:
    """ALIGN_HAND_OFF's worker gets a burst's clicks in batches: on PostgreSQL too its engine
    calls share transactions, each with its own answered mark — a refusal or an error in the
    middle takes no other vote back, and the failed one stays unrun. (A web or `all` process
    on PostgreSQL still runs each call in its own transaction.)"""
    with running_slack_server(
        db_url, clock, serving=Serving(role="worker"), ALIGN_HAND_OFF="true"
    ) as worker:
        inbox, engine = worker.app.inbox, worker.app.engine
        engine.handle(_actor("U0OWNER"), 'poll "Ship date or scope?" "Date" "Scope"')
        assert inbox._run_groups  # PostgreSQL: none before, a transaction per call
        entries = [_record(worker, inbox, n) for n in range(6)]

        def broken(actor: Actor, text: str) -> Reply:
            engine.handle(actor, text)  # votes, then fails: the savepoint takes the vote back
            raise RuntimeError("the engine call failed")

        calls: list[tuple[Any, ...]] = []
        for n, entry in enumerate(entries):
            actor = _actor(f"U0WORKER{n}")
            text = "vote P-9 1" if n == 2 else "vote P-1 1"  # P-9: refused
            calls.append((entry, broken if n == 4 else engine.handle, actor, text))
        groups = inbox._run_groups  # PostgreSQL: RUN_SIDE_BY_SIDE of them, taking turns
        release = threading.Event()
        sizes: list[int] = []

        held_writes: list[Any] = []

        def held(started: threading.Event) -> Any:
            def write(session: UnitOfWork) -> None:  # its writer busy while the calls queue
                started.set()
                assert release.wait(30)

            held_writes.append(write)
            return write

        def counting(commit: Any) -> Any:
            def run(group: list[Any]) -> list[Any]:
                left = commit(group)
                ran = group[: len(group) - len(left)]
                calls_in = sum(1 for item in ran if item[0] not in held_writes)
                if calls_in:
                    sizes.append(calls_in)
                return left

            return run

        for group in groups:
            group._commit = counting(group._commit)  # type: ignore[method-assign]
            group.max_seconds = None  # RUN_TOGETHER_SECONDS is not what this is about

        async def submit() -> list[Any]:
            busy = [threading.Event() for _ in groups]
            firsts = [
                asyncio.wrap_future(group.submit(held(started)))
                for group, started in zip(groups, busy, strict=True)
            ]
            for started in busy:
                assert await asyncio.to_thread(started.wait, 30)
            futures = [
                inbox.once_together(entry, _where, run, actor, text, then=lambda r: r)
                for entry, run, actor, text in calls
            ]
            release.set()
            await asyncio.gather(*firsts)
            outcomes = await asyncio.gather(*futures, return_exceptions=True)  # type: ignore[arg-type]
            # Futures are settled inside the commit, before `counting` notes the group's size.
            deadline = asyncio.get_running_loop().time() + 10
            while sum(sizes) < len(calls) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.001)
            return outcomes

        outcomes = worker.loop.run(submit())
        # SQLite: the six calls in one transaction; PostgreSQL: in turn to each group, 2+2+1+1.
        assert sum(sizes) == 6 and max(sizes) >= 2
        refused, failed = outcomes[2], outcomes[4]
        assert isinstance(refused, Reply) and not refused.ok
        assert isinstance(failed, RuntimeError)
        assert all(isinstance(o, Reply) and o.ok for n, o in enumerate(outcomes) if n not in (2, 4))
        assert _count(worker, Ballot) == 4
        assert _count(worker, InboxEntry, InboxEntry.status == store.ANSWERED) == 5


@contextlib.contextmanager
def _worker_with_five_votes_to_run(
    db_url: str, clock: FakeClock
) -> Iterator[tuple[SlackServer, list[Entry]]]:
    """A worker taking hand-offs, its poll P-1 open, and five rows recorded for it to run."""
    with running_slack_server(
        db_url, clock, serving=Serving(role="worker"), ALIGN_HAND_OFF="true"
    ) as worker:
        worker.app.engine.handle(_actor("U0OWNER"), 'poll "Ship date or scope?" "Date" "Scope"')
        yield worker, [_record(worker, worker.app.inbox, n) for n in range(5)]


def test_only_sqlite_cuts_a_group_short_after_its_time_budget(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RUN_TOGETHER_SECONDS is for SQLite, where a group holds the write lock the acks'
    records wait for. A PostgreSQL worker's group holds nothing an ack needs: cut short after
    its first call (a few round trips, each waiting its turn on a busy worker's interpreter
    lock, outlast the budget), its votes ran one transaction each (bench_slack's split burst:
    1.1 calls a group). With no budget left at all, SQLite runs one call a group, PostgreSQL
    every call waiting in one."""
    monkeypatch.setattr("adapters.inbox.RUN_TOGETHER_SECONDS", 0.0)
    monkeypatch.setattr("adapters.inbox.RUN_SIDE_BY_SIDE", 1)
    with _worker_with_five_votes_to_run(db_url, clock) as (worker, entries):
        engine = worker.app.engine
        (runs,) = worker.app.inbox._run_groups
        sizes: list[int] = []
        commit = runs._commit

        noted = threading.Event()  # every call's group noted

        def counting(group: list[Any]) -> list[Any]:
            left = commit(group)
            ran = group[: len(group) - len(left)]
            calls_in = sum(1 for item in ran if "_side_by_side" not in item[0].__qualname__)
            if calls_in:
                sizes.append(calls_in)
            if sum(sizes) >= len(entries):
                noted.set()
            return left

        runs._commit = counting  # type: ignore[method-assign]
        votes = [(entry, engine.handle, (_actor(f"U0BUDGET{n}"), "vote P-1 1"))
                 for n, entry in enumerate(entries)]  # fmt: skip
        outcomes = _side_by_side(worker, votes)
        # Futures are settled inside the commit, before `counting` notes the group's size.
        assert noted.wait(10)
        assert all(isinstance(o, Reply) and o.ok for o in outcomes)
        assert _count(worker, Ballot) == 5
        assert sizes == ([1] * 5 if worker.app.db.dialect == "sqlite" else [5])


def test_a_groups_answered_marks_are_written_together_and_a_failed_call_leaves_none(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answered marks of a group's calls are its last statements but the tallies', written
    together (one executemany: on PostgreSQL, one round trip) — not an UPDATE each in the
    middle of each call. A call whose savepoint rolled back leaves no mark: its row stays
    unrun, for recovery."""
    monkeypatch.setattr("adapters.inbox.RUN_SIDE_BY_SIDE", 1)
    with _worker_with_five_votes_to_run(db_url, clock) as (worker, entries):
        engine = worker.app.engine
        (runs,) = worker.app.inbox._run_groups
        runs.max_seconds = None  # the five in one group, whatever the time budget
        marks: list[int] = []  # the rows each UPDATE of answered marks carried
        answered = store._ANSWERED  # run on the raw cursor (Prepared): no SQLAlchemy event
        run, run_many = answered.run, answered.run_many

        def one(session: Any, params: Any) -> Any:
            marks.append(1)
            return run(session, params)

        def many(session: Any, params: list[Any]) -> None:
            marks.append(len(params))
            run_many(session, params)

        def broken(actor: Actor, text: str) -> Reply:
            engine.handle(actor, text)
            raise RuntimeError("the engine call failed")

        monkeypatch.setattr(answered, "run", one)
        monkeypatch.setattr(answered, "run_many", many)
        votes = [(entry, broken if n == 3 else engine.handle, (_actor(f"U0MARKS{n}"), "vote P-1 1"))
                 for n, entry in enumerate(entries)]  # fmt: skip
        outcomes = _side_by_side(worker, votes)
        assert isinstance(outcomes[3], RuntimeError)
        assert all(isinstance(o, Reply) and o.ok for n, o in enumerate(outcomes) if n != 3)
        assert marks == [4]  # the four calls that ran, in one statement
        assert _count(worker, InboxEntry, InboxEntry.status == store.ANSWERED) == 4
        assert _count(worker, InboxEntry, InboxEntry.id == entries[3].id,
                      InboxEntry.status == store.RECEIVED) == 1  # fmt: skip
        assert _count(worker, Ballot) == 4


# --------------------------------------------------------------------------------------------
# PostgreSQL: groups side by side (a worker taking hand-offs)
# --------------------------------------------------------------------------------------------


def _side_by_side(
    worker: SlackServer, calls: list[tuple[Entry, Any, tuple[Any, ...]]]
) -> list[Any]:
    """Submit every call while each of the worker's run groups is held busy, so the calls queue
    and each group takes its share (in turn) as one transaction; the outcomes."""
    inbox = worker.app.inbox
    groups = inbox._run_groups
    release = threading.Event()

    def held(started: threading.Event) -> Any:
        def write(session: UnitOfWork) -> None:
            started.set()
            assert release.wait(30)

        return write

    async def submit() -> list[Any]:
        busy = [threading.Event() for _ in groups]
        firsts = [
            asyncio.wrap_future(group.submit(held(started)))
            for group, started in zip(groups, busy, strict=True)
        ]
        for started in busy:
            assert await asyncio.to_thread(started.wait, 30)
        futures = [
            inbox.once_together(entry, _where, run, *args, then=lambda r: r)
            for entry, run, args in calls
        ]
        release.set()
        await asyncio.gather(*firsts, return_exceptions=True)
        return await asyncio.gather(*futures, return_exceptions=True)  # type: ignore[arg-type]

    return worker.loop.run(submit())


def _tallies_match_a_recount(server: SlackServer, *polls: int) -> dict[int, list[int]]:
    """Each poll's running tally equals a count of its stored ballots; the scores by poll."""
    scores: dict[int, list[int]] = {}
    with server.app.db.uow() as session:
        for number in polls:
            poll = session.scalars(select(Poll).where(Poll.number == number)).one()
            stored = tallies_store.read(session, poll.id)
            assert stored is not None
            _, running = stored
            choices = ballots_store.choices(session, poll.id)
            again = tallies.recount(poll.mode, len(running.scores), choices)
            assert (running.ballots, running.scores) == (again.ballots, again.scores)
            scores[number] = running.scores
    return scores


def test_two_groups_voting_the_same_people_on_two_polls_in_opposite_orders_count_each_once(
    migrated_db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two groups side by side on PostgreSQL, each with the same people's votes on the same two
    polls, one group P-1 first, the other P-2 first: each group writes its first ballots, then
    wants the other's — a real deadlock, which PostgreSQL breaks by failing one statement. The
    vote that met it runs again alone once its group has committed (`again_alone`): every vote
    is answered with its receipt, counted once, and the tallies equal a recount."""
    if not migrated_db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: no two groups side by side")
    monkeypatch.setattr("adapters.inbox.RUN_SIDE_BY_SIDE", 2)
    with running_slack_server(
        migrated_db_url, clock, serving=Serving(role="worker"), ALIGN_HAND_OFF="true"
    ) as worker:
        inbox, engine = worker.app.inbox, worker.app.engine
        owner = _actor("U0OWNER")
        assert engine.handle(owner, 'poll "Ship date or scope?" "Date" "Scope"').ok
        assert engine.handle(owner, 'poll "Lunch?" "Soup" "Salad"').ok
        assert len(inbox._run_groups) == 2
        for group in inbox._run_groups:  # each group's calls in one transaction, however long
            group.max_seconds = None  # it waits (RUN_TOGETHER_SECONDS is not what this is about)
        people = [f"U0BOTH{n}" for n in range(3)]
        # Each group holds its first ballot till the other holds its own: then each wants the
        # other's rows (the same person's ballot on the other poll).
        both_hold_one = threading.Barrier(2)
        waited: set[int] = set()
        ran: list[str] = []

        def votes_then_waits(actor: Actor, text: str) -> Reply:
            ran.append(text)
            reply = engine.handle(actor, text)
            group = threading.get_ident()
            if group not in waited:
                waited.add(group)
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_hold_one.wait(timeout=5)
            return reply

        # In turn to group 0 (P-1, then P-2) and group 1 (P-2, then P-1), option 1 and 2.
        calls: list[tuple[Entry, Any, tuple[Any, ...]]] = []
        n = 0
        for step in range(2 * len(people)):
            person = people[step % len(people)]
            for group, (first, then) in enumerate((("P-1", "P-2"), ("P-2", "P-1"))):
                poll = first if step < len(people) else then
                entry = _record(worker, inbox, n)
                n += 1
                text = f"vote {poll} {group + 1}"
                calls.append((entry, votes_then_waits, (_actor(person), text)))
        outcomes = _side_by_side(worker, calls)
        assert len(ran) > len(calls)  # PostgreSQL found a deadlock: its victims ran again

        for outcome, (_, _, (actor, text)) in zip(outcomes, calls, strict=True):
            assert isinstance(outcome, Reply), (text, outcome)
            assert outcome.ok, (actor.user, text, outcome.error)
        answered = InboxEntry.status == store.ANSWERED
        assert _count(worker, InboxEntry, answered) == len(calls)
        assert _count(worker, AuditEntry, AuditEntry.action == "vote") == len(calls)  # once each
        assert _count(worker, Ballot) == 2 * len(people)  # one a person a poll, whichever last
        scores = _tallies_match_a_recount(worker, 1, 2)
        assert sum(scores[1]) == sum(scores[2]) == len(people)


def test_groups_whose_backend_is_killed_before_their_commit_leave_every_row_to_run_again_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    """PostgreSQL: each group of a worker's calls loses its connection just before its COMMIT
    (its backend ended by pg_terminate_backend from another connection, as a restart or a
    failover would): nothing of any call is stored, every row is still `received`; whoever
    takes them over once their claim ran out runs each once, each vote counted once, its reply
    given (and given again, from the row, to a replay)."""
    if not migrated_db_url.startswith("postgresql"):
        pytest.skip("the SQLite case: test_a_group_that_never_committed_leaves_every_row_…")
    with running_slack_server(
        migrated_db_url, clock, serving=Serving(role="worker"), ALIGN_HAND_OFF="true"
    ) as worker:
        inbox, engine, db = worker.app.inbox, worker.app.engine, worker.app.db
        assert engine.handle(_actor("U0OWNER"), 'poll "Ship date or scope?" "Date" "Scope"').ok
        entries = [_record(worker, inbox, n) for n in range(8)]
        calls = [
            (e, engine.handle, (_actor(f"U0CUT{n}"), f"vote P-1 {n % 2 + 1}"))
            for n, e in enumerate(entries)
        ]
        admin = create_engine(migrated_db_url, isolation_level="AUTOCOMMIT")
        killed: list[int] = []

        def cut_before_commit(conn: Any) -> None:
            if not threading.current_thread().name.startswith("align-inbox-runs"):
                return  # only a group's (the writes `_side_by_side` holds them with send none)
            pid = conn.connection.driver_connection.info.backend_pid
            with admin.connect() as other:
                ended = other.execute(
                    text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}
                )
                assert ended.scalar_one()
            killed.append(pid)

        event.listen(db.engine, "commit", cut_before_commit)
        try:
            outcomes = _side_by_side(worker, calls)
        finally:
            event.remove(db.engine, "commit", cut_before_commit)
            admin.dispose()
        assert killed
        assert all(isinstance(o, Exception) for o in outcomes), outcomes
        assert _count(worker, Ballot) == 0
        assert _count(worker, AuditEntry, AuditEntry.action == "vote") == 0
        assert _count(worker, InboxEntry, InboxEntry.status == store.RECEIVED) == len(entries)

        # Another process takes the rows over once their claim ran out, and runs each once.
        other, taken = _taken_over_by_another_process(inbox, db, clock)
        assert sorted(row.id for row in taken) == sorted(e.id for e in entries)
        for entry, run, args in calls:
            reply = other.once(entry, _where, run, *args)
            assert reply.ok and "Recorded your vote on P-1" in reply.text, reply
            again = other.once(entry, _where, run, *args)  # a replay: its stored reply
            assert again.text == reply.text
        assert _count(worker, Ballot) == len(entries)
        assert _count(worker, AuditEntry, AuditEntry.action == "vote") == len(entries)
        assert _tallies_match_a_recount(worker, 1) == {1: [4, 4]}
        with pytest.raises(Lost):  # the first process may no longer touch them
            inbox.once(entries[0], _where, engine.handle, *calls[0][2])


def _taken_over_by_another_process(
    inbox: Inbox, db: Database, clock: FakeClock
) -> tuple[Inbox, Any]:
    """Once the rows' claim ran out, another process — the same secret and settings, its own
    id — takes them over: that process, and the rows it took."""
    clock.advance(inbox.claim_timeout + timedelta(seconds=1))
    other = copy.copy(inbox)
    other.worker_id = "another-process"
    with db.uow() as session:
        taken, _ = store.take_over(
            session,
            worker="another-process",
            now=clock.now(),
            until=clock.now() + inbox.claim_timeout,
            platforms=["slack"],
            max_attempts=8,
            limit=50,
        )
    return other, taken
