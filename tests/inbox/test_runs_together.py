"""Engine calls that queue up in a burst run together (`Inbox.once_together`, SQLite): one
transaction, each call with its own `answered` mark in a savepoint of its own. Every vote is
counted once and every receipt sent; a refusal or an error in the middle undoes none of the
others; a group that never committed (the process died) leaves every row to be run again, once.
Through signed HTTP requests into the running server with the fake Slack API, and through the
inbox itself where the grouping has to be forced (the writer lock held while calls queue)."""

from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.inbox import Destination, Entry, Inbox, Lost
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply
from storage import inbox as store
from storage.models import Ballot, InboxEntry
from tests.slack.conftest import CHANNEL, SlackServer


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
    as few groups as the inbox makes; the outcomes (reply or error) and the group sizes."""
    runs = inbox._runs
    assert runs is not None
    sizes: list[int] = []
    commit = runs._commit

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
    clock.advance(inbox.claim_timeout + timedelta(seconds=1))
    other = copy.copy(inbox)  # the same secret and settings, another process's id
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
    assert sorted(row.id for row in taken) == sorted(e.id for e in entries)
    for entry, run, args in calls:
        other.once(entry, _where, run, *args)
        other.once(entry, _where, run, *args)  # and again: answered, nothing twice
    assert _count(server, Ballot) == 5
    with pytest.raises(Lost):  # the first process may no longer touch them
        inbox.once(entries[0], _where, engine.handle, *calls[0][2])
