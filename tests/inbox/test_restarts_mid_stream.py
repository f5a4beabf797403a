"""PostgreSQL restarts in the middle of a stream of clicks on one poll: every backend the server
under test holds is ended at once (pg_terminate_backend, from a connection of the test's own),
as a restart or a failover would end them — the transactions under way, the pooled connections
waiting, a worker's listening connection — once or several times: when a connection was just
given back to its pool, or as a transaction marking requests done commits (a reply already
shown: its row left unfinished, recovery would send the stored reply a second time).

Pooled connections given back moments ago are handed out unpinged (storage/db.py
`ping_when_idle`; here the idle clock never moves, so none is ever pinged: the worst case), so
the first statements after a restart fail; the inbox's fenced work is tried again at once
(`storage.db.attempted`, `GroupCommit`'s `again_alone`), and a record that fails is not
acknowledged (`NotRecorded`, HTTP 503).

What must hold, whatever the timing: a click answered 200 is counted exactly once with one
receipt, or its clicker is told something went wrong and it is not counted; nothing is run
twice; a click answered 503 is counted at most once; every row ends `done`; the poll's running
tally equals a recount of its ballots. And since a restart is an error of the moment, tried
again at once, no clicker acknowledged is told anything went wrong either.

Only the backends of this test's server are ended: its connections carry an application_name
of their own (the PostgreSQL server is shared)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text

from adapters import bootstrap
from adapters.recovery import QUEUE
from adapters.runtime import RUNTIME_KEY
from adapters.web_keys import Serving
from bot.clock import FakeClock
from storage import db as db_module
from storage import inbox as store
from storage.db import Database
from storage.models import AuditEntry, InboxEntry, Participation
from tests.inbox.test_hand_off import _lunch_poll_and_its_tacos_button, tacos_button
from tests.polls.recount import assert_tally_is_a_recount
from tests.slack.conftest import SlackServer, running_slack_server

VOTERS = 48
MORE_CLICKS_AT_MOST = 4
"""Batches of VOTERS more clicks while a restart is still to come (`_clicks_through_the_restarts`:
under load fewer connections go back to their pool in a stream)."""
IN_FLIGHT = 8
PAST_THE_CLAIM = timedelta(seconds=31)  # ALIGN_INBOX_CLAIM_TIMEOUT's default, and a second
RECEIPT = "Recorded your vote on P-1"
log = logging.getLogger(__name__)

TOLD = ("Something went wrong", "could not finish your request")


pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
"""PostgreSQL only: SQLite has no server to restart."""


@pytest.fixture
def pg_url(migrated_db_url: str) -> str:
    if not migrated_db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to restart")
    return migrated_db_url


@pytest.fixture(autouse=True)
def never_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers' pooled connections never count as idle (`ping_when_idle`'s clock stands
    still): none is pinged on checkout, so every dead one is handed out as it is."""
    real = db_module.Database

    def database(url: str, **kw: Any) -> db_module.Database:
        return real(url, idle_clock=lambda: 0.0, **kw)

    monkeypatch.setattr(bootstrap, "Database", database)


@dataclass(frozen=True)
class When:
    """When PostgreSQL restarts: at the `moments` numbered (counted over the engines watched,
    from 1) — a connection given back to its pool (`checkin`: it is then handed out again,
    dead, unpinged), or a transaction that marks a request done about to COMMIT (`done-mark`:
    the restart meets it)."""

    moments: frozenset[int]
    at: str = "checkin"


class Restarts:
    """Ends every backend whose connection carries `name` — all of the server's and none of
    anyone else's — when `when` says."""

    def __init__(self, admin_url: str, name: str, when: When) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.db = Database(admin_url)
        """For the test's own reads: not the servers' pool, whose dead connections it would
        meet unpinged."""
        self.name = name
        self.when = when
        self.seen = 0
        self.ended: list[int] = []  # backends ended, at each restart
        self.owed = 0  # restarts due that found no backend to end yet
        self._restarting = False
        self._lock = threading.Lock()
        self._marking = threading.local()  # this thread's transaction marks a request done

    @property
    def pending(self) -> bool:
        """Whether a restart is still to come: its moment not reached yet, or due and owed."""
        with self._lock:
            return bool(self.owed) or self.seen < max(self.when.moments)

    def restart(self) -> int:
        """Ends the server's backends; how many (recorded in `ended` only when some were)."""
        with self.admin.connect() as conn:
            pids = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).scalars()
            ended = 0
            for pid in list(pids):
                done = conn.execute(
                    text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}
                ).scalar_one()
                ended += bool(done)
        if ended:
            self.ended.append(ended)
        return ended

    def _moment(self, *_: Any) -> None:
        if self.when.at == "done-mark":
            if not getattr(self._marking, "on", False):
                return
            self._marking.on = False
        with self._lock:
            self.seen += 1
            self.owed += self.seen in self.when.moments
            if not self.owed or self._restarting:
                return
            self._restarting = True
        ended = 0
        try:
            ended = self.restart()  # from the thread at that moment: what it runs dies too
        finally:
            # A restart due when no backend was alive (every connection the last one left
            # dead, none opened since) happens at the next moment instead.
            with self._lock:
                self._restarting = False
                self.owed -= bool(ended)

    def _marks_done(self, finish: Callable[..., Any]) -> Callable[..., Any]:
        def marking(*args: Any, **kw: Any) -> Any:
            self._marking.on = True
            return finish(*args, **kw)

        return marking

    @contextmanager
    def watching(self, monkeypatch: pytest.MonkeyPatch, *engines: Engine) -> Iterator[None]:
        name = "commit" if self.when.at == "done-mark" else "checkin"
        if self.when.at == "done-mark":
            # A burst's marks go in one statement (`finish_many`), a mark tried again alone in
            # one of its own (`finish`).
            monkeypatch.setattr(store, "finish", self._marks_done(store.finish))
            monkeypatch.setattr(store, "finish_many", self._marks_done(store.finish_many))
        for engine in engines:
            event.listen(engine, name, self._moment)
        try:
            yield
        finally:
            for engine in engines:
                event.remove(engine, name, self._moment)

    def dispose(self) -> None:
        self.admin.dispose()
        self.db.dispose()


@contextmanager
def restarts(pg_url: str, when: When) -> Iterator[tuple[str, Restarts]]:
    """The URL the servers under test use (their own application_name), and what restarts
    PostgreSQL for them."""
    name = f"align_restart_{uuid.uuid4().hex[:10]}"
    restarter = Restarts(pg_url, name, when)
    try:
        yield f"{pg_url}&application_name={name}", restarter
    finally:
        restarter.dispose()


def _clicks(server: SlackServer, voters: list[str]) -> dict[str, int]:
    """Every voter clicks "Tacos" once, IN_FLIGHT at a time; the status Slack got for each."""
    message_ts, tacos = tacos_button(server)

    def click(user: str) -> tuple[str, int]:
        answered = server.post_action(
            action_id=tacos["action_id"], value=tacos["value"], user=user, message_ts=message_ts
        )
        return user, answered.status_code

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        return dict(pool.map(click, voters))


def _clicks_through_the_restarts(
    server: SlackServer, restarter: Restarts, prefix: str
) -> dict[str, int]:
    """VOTERS people click (`_clicks`), and VOTERS more at a time while a restart is still to
    come: how many connections go back to their pool in a stream depends on the timing (a
    loaded machine gives bigger groups and fewer turns of a worker's queue), and under the
    rest of the suite a stream of 48 gave 42 back in all, and the restart at the 44th never
    came."""
    statuses: dict[str, int] = {}
    for batch in range(MORE_CLICKS_AT_MOST + 1):
        if batch and not restarter.pending:
            break
        first = batch * VOTERS
        voters = [f"{prefix}{n:05d}" for n in range(first, first + VOTERS)]
        statuses |= _clicks(server, voters)
    return statuses


def _told(server: SlackServer) -> tuple[Counter[str], Counter[str]]:
    """Per voter: the receipts they were shown and the failures they were told, by response_url
    (`act-<user>-…`) or in their DM with the app (the outbox: a user id as the channel)."""
    receipts: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    shown = [(r.name.split("-")[1], str(r.body.get("text", ""))) for r in server.fake.responses]
    for method in ("chat.postMessage", "chat.postEphemeral"):
        for call in server.fake.calls_to(method):
            to = str(call.args.get("user") or call.args.get("channel"))
            shown.append((to, str(call.args.get("text", ""))))
    for user, said in shown:
        receipts[user] += RECEIPT in said
        failures[user] += any(t in said for t in TOLD)
    return receipts, failures


def _by_user(db: Database, column: Any, *where: Any) -> Counter[str]:
    with db.uow() as session:
        found = session.execute(select(column, func.count()).where(*where).group_by(column))
        return Counter({str(user).rsplit(":", 1)[-1]: int(n) for user, n in found})


def _round(worker: SlackServer) -> int:
    """One turn of a worker's queue and the work it started (tests/inbox/test_hand_off.py
    `work`), failing as the worker's loop lets a turn fail: logged, and tried again next turn
    (its claim lost with its connection, say)."""
    if QUEUE not in worker.web_app:
        return 0
    try:
        taken = worker.loop.run(worker.web_app[QUEUE].round())
    except Exception:
        log.exception("a turn of the queue failed (as the worker's loop logs it)")
        taken = 0
    worker.settle()
    return taken


def _settled(
    servers: list[SlackServer], clock: FakeClock, worker: SlackServer, db: Database
) -> None:
    """Whatever the restarts left: claims run out, recovery and the queue take the rows over,
    the outbox sends what is owed — until nothing is left (as the loops of `align serve` would,
    each turn that fails tried again at the next)."""
    for _ in range(4):
        for server in servers:
            server.settle()
        clock.advance(PAST_THE_CLAIM)
        try:
            worker.loop.run(worker.app.inbox.recover())
        except Exception:
            log.exception("a turn of recovery failed (as its loop logs it)")
        while _round(worker):
            pass
        worker.settle()
        for server in servers:  # the outbox: a web process has none (its worker sends)
            if RUNTIME_KEY in server.web_app:
                server.loop.run(server.web_app[RUNTIME_KEY].dispatch())
        with db.uow() as session:
            unfinished = session.execute(
                select(func.count()).where(InboxEntry.status.in_(("received", "answered")))
            ).scalar_one()
        if not unfinished:
            return


def _assert_every_click_kept(
    server: SlackServer, statuses: dict[str, int], restarter: Restarts, db: Database
) -> None:
    assert len(restarter.ended) == len(restarter.when.moments), restarter.seen  # each happened
    assert all(restarter.ended), restarter.ended  # …and ended backends of the server's
    receipts, failures = _told(server)
    voted = _by_user(db, Participation.user)
    runs = _by_user(db, AuditEntry.actor, AuditEntry.action == "vote")
    acked = [u for u, status in statuses.items() if status == 200]
    refused = [u for u, status in statuses.items() if status != 200]
    assert set(statuses.values()) <= {200, 503}, statuses
    problems = []
    for user in acked:
        counted = (voted[user], runs[user], receipts[user])
        if counted == (1, 1, 1) and not failures[user]:
            continue  # counted once, its receipt given once
        if counted == (0, 0, 0) and failures[user]:
            continue  # not counted, and its clicker told so
        problems.append((user, "200", counted, failures[user]))
    for user in refused:  # not acknowledged: counted at most once (a record that did land)
        if max(voted[user], runs[user], receipts[user]) > 1:
            problems.append((user, "503", (voted[user], runs[user], receipts[user]), 0))
    assert not problems, (problems, restarter.ended)
    with db.uow() as session:
        statuses_left = Counter(session.execute(select(InboxEntry.status)).scalars())
    assert set(statuses_left) == {"done"}, statuses_left
    ballots = assert_tally_is_a_recount(db, f"slack:{server.team}", 1)
    assert ballots == sum(voted.values())
    # …and better than that: a restart is an error of the moment, each request it met tried
    # again at once (`storage.db.attempted`, `again_alone`), none of their clickers told to.
    told = [user for user in acked if failures[user]]
    assert not told, (told, restarter.ended)


RESTARTS = {
    "once": When(frozenset({12})),
    "three-times": When(frozenset({12, 28, 44})),
    "under-done-marks": When(frozenset({2, 5}), at="done-mark"),
}
restarted = pytest.mark.parametrize("when", list(RESTARTS.values()), ids=list(RESTARTS))


@restarted
def test_one_process_keeps_every_acknowledged_click_through_restarts(
    pg_url: str, clock: FakeClock, when: When, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--role all`: records, engine calls (`Inbox.once`, in threads) and done marks of a
    stream of clicks, the database restarted under them."""
    with (
        restarts(pg_url, when) as (url, restarter),
        running_slack_server(url, clock) as server,
    ):
        server.post_command('poll "Lunch?" "Tacos" "Pho"')
        server.settle()
        with restarter.watching(monkeypatch, server.app.db.engine):
            statuses = _clicks_through_the_restarts(server, restarter, "U0RST")
            server.settle()
        _settled([server], clock, server, restarter.db)
        _assert_every_click_kept(server, statuses, restarter, restarter.db)


@restarted
def test_a_web_process_and_its_worker_keep_every_acknowledged_click_through_restarts(
    pg_url: str, clock: FakeClock, when: When, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALIGN_HAND_OFF: the web process records and acks, the worker takes the rows and runs
    them in groups (`Inbox.runs_together`) while the clicks still come; the restarts end the
    backends of both."""
    hand_off = {"ALIGN_HAND_OFF": "true"}
    with (
        restarts(pg_url, when) as (url, restarter),
        running_slack_server(url, clock, serving=Serving(role="web"), **hand_off) as web,
        running_slack_server(
            url, clock, serving=Serving(role="worker"), fake=web.fake, **hand_off
        ) as worker,
    ):
        _lunch_poll_and_its_tacos_button(web, worker)
        clicking = threading.Event()

        def worker_rounds() -> None:
            while clicking.is_set():
                _round(worker)

        with restarter.watching(monkeypatch, web.app.db.engine, worker.app.db.engine):
            clicking.set()
            rounds = threading.Thread(target=worker_rounds, name="test-worker-rounds")
            rounds.start()
            try:
                statuses = _clicks_through_the_restarts(web, restarter, "U0RSH")
            finally:
                clicking.clear()
                rounds.join(60)
            web.settle()
            while _round(worker):
                pass
        _settled([web, worker], clock, worker, restarter.db)
        _assert_every_click_kept(web, statuses, restarter, restarter.db)
