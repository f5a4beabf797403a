"""The database handle and the unit of work.

SQLite is the zero-setup default, so it must survive a threaded server: WAL lets readers run
beside a writer, `BEGIN IMMEDIATE` takes the write lock at the start of each transaction (two
deferred transactions that both upgrade to writing would deadlock and fail at once instead of
waiting), and a busy timeout makes the waiting patient.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement

from storage.models import Counter

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_URL = "sqlite:///align.db"

UnitOfWork = Session
"""A session inside one transaction: committed when the block ends, rolled back on error."""

CHECKPOINT = "align.checkpoint"
"""Set in a session's info to have SQLite's WAL checkpointed and truncated once the transaction
has committed (after anonymous ballots were counted: the WAL would keep the order of the
commits before it)."""

_AT_COMMIT = "align.at_commit"

AtCommit = Callable[[Session, list[Any]], None]
"""Run with a transaction's session and every item queued under one key (`at_commit`)."""


def at_commit(session: Session, key: Hashable, run: AtCommit, item: Any) -> None:
    """Queue `item` for `run`, which gets every item queued under `key` in this transaction at
    once, as the transaction's last statements before its COMMIT.

    For a write to a row every concurrent transaction needs (a poll's running tally): a row
    lock is held from the statement that takes it to the COMMIT, so taken mid-transaction it
    makes every other voter wait out each statement and round trip after it; taken last, only
    its own UPDATE and the COMMIT (a 1,000-click burst on PostgreSQL was counted in about half
    the time). Items queued by the units of work of one transaction (a group of votes) also
    run as one, and keys run in the order of their `repr`, the same in every transaction. A
    savepoint that rolls back (`in_savepoint`) takes its items with it; a reader that must see
    them in the same transaction asks `queued`."""
    session.info.setdefault(_AT_COMMIT, []).append((key, run, item))


def queued(session: Session, key: Hashable) -> list[Any]:
    """The items queued under `key` in this transaction and not run yet, in order."""
    return [item for k, _, item in session.info.get(_AT_COMMIT, ()) if k == key]


@contextmanager
def in_savepoint(session: Session) -> Iterator[Session]:
    """`session.begin_nested()`; rolled back, it drops what was queued in it (`at_commit`)."""
    mark = len(session.info.get(_AT_COMMIT, ()))
    try:
        with session.begin_nested():
            yield session
    except BaseException:
        del session.info.get(_AT_COMMIT, [])[mark:]
        raise


def _run_at_commit(session: Session) -> None:
    """Each key's work, in one order every transaction shares (by key, not by when it was first
    queued): two transactions that each lock the rows of the same two polls at their end take
    them in the same order, so neither ends up waiting on the other (a deadlock on PostgreSQL,
    where a worker's groups of votes spanning several polls commit side by side)."""
    grouped: dict[Hashable, tuple[AtCommit, list[Any]]] = {}
    for key, run, item in session.info.pop(_AT_COMMIT, ()):
        grouped.setdefault(key, (run, []))[1].append(item)
    for _, (run, items) in sorted(grouped.items(), key=lambda entry: repr(entry[0])):
        run(session, items)


_NOT_DURABLE = "SET LOCAL synchronous_commit TO OFF"

_READ_ON_POSTGRESQL = {"isolation_level": "AUTOCOMMIT"}
"""A read transaction's connection on PostgreSQL (`Database.reading`): each statement on its
own, with no BEGIN before them and no COMMIT after — two round trips of three for a read
command of one query (a handed-off read's worker and a one-process read alike). Nothing is
lost by it: at PostgreSQL's READ COMMITTED, which Align runs at, every statement of a
transaction takes a snapshot of its own anyway, and a read transaction writes nothing
(tests/engine/test_reads.py sees every statement each read verb sends). psycopg sets and
resets autocommit on the connection itself, without a round trip."""


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 10
"""PostgreSQL connections one process keeps open, and how many more it may open in a burst (then
closes again). Every replica has its own pool, so replicas × (pool + overflow) must stay under
the server's `max_connections` (README, "Deploy"). SQLite ignores both.

The pool keeps what a busy process uses at once — its sixteen Slack threads
(adapters/slack/workers.py) and the few of the inbox, the dispatcher and the scheduler — so
that only a burst beyond that opens connections it then closes. With 10 kept (and 20 more in a
burst, the same ceiling of 30), a steady 20 reads in flight opened and closed 140-210
PostgreSQL connections every 8 s in one process (bench_slack's read phase) — each a backend the
server forks — and 0 with 20 kept."""

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 30.0
"""Seconds. A database that hangs must not hang every request with it: a connection attempt
gives up after `connect_timeout`, a statement (or, on SQLite, the wait for another process's
write lock) after `statement_timeout`; the caller then gets an error it can answer honestly."""


def _into_wal(cursor: Any) -> None:
    """Put the database file in WAL mode (it stays so), waiting through the busy timeout while
    another connection holds the lock it needs. A file the migrations just made is not in WAL
    yet, and the first connections of processes started together switch it at once: the switch
    reads, then asks for the write lock, and SQLite refuses that upgrade at once rather than
    wait ("database is locked", the busy timeout not waited for) while another connection
    holds it — a web replica's first request was refused so
    (tests/inbox/test_hand_off_promises.py). `BEGIN IMMEDIATE` waits for the lock; once it is
    free the file is in WAL (the other switched it), or this connection switches it."""
    for _ in range(10):  # each turn waits for another connection's switch or write to end
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("ROLLBACK")
    cursor.execute("PRAGMA journal_mode=WAL")


def _sqlite_engine(
    url: str, *, statement_timeout: float, reading: Callable[[], bool], **kw: Any
) -> Engine:
    busy_ms = int(statement_timeout * 1000)
    engine = create_engine(
        url,
        connect_args={"timeout": statement_timeout, "check_same_thread": False},
        hide_parameters=True,
        **kw,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        if engine.url.database not in (None, "", ":memory:"):
            _into_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows (counted pending ballots, finished inbox requests) are overwritten with
        # zeros, not left in free space for a reader of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    def do_begin(dbapi_connection: Any) -> None:
        # A read transaction (`Database.reading`) takes no write lock: WAL serves it a snapshot
        # beside the writer. Straight on the driver's connection: through exec_driver_sql the
        # BEGIN cost as much SQLAlchemy work as a query, in every transaction. SQLAlchemy wraps
        # its errors (the write lock not had within the busy timeout) as it wraps a statement's.
        dbapi_connection.driver_connection.execute("BEGIN" if reading() else "BEGIN IMMEDIATE")

    # The dialect's own hook for a transaction's start, not a "begin" event listener: any
    # connection event listened for on the engine has SQLAlchemy dispatch events around every
    # statement, commit and rollback of every connection (`Connection._has_events`), which
    # cost a read command 20 us of its 130 in the database (bench_slack's `decisions`).
    engine.dialect.do_begin = do_begin  # type: ignore[method-assign]
    return engine


def _postgres_engine(
    url: str,
    *,
    connect_timeout: float,
    statement_timeout: float,
    idle_clock: Callable[[], float] = time.monotonic,
    **kw: Any,
) -> Engine:
    """libpq's `connect_timeout` (whole seconds, at least 2 — libpq's own floor) and the
    server-side `statement_timeout`, set per connection rather than through the URL's
    `options`, which an operator's URL may already carry (a search_path, say)."""
    engine = create_engine(
        url,
        connect_args={"connect_timeout": max(2, math.ceil(connect_timeout))},
        hide_parameters=True,
        **kw,
    )
    ping_when_idle(engine, now=idle_clock)
    statement_ms = int(statement_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {statement_ms}")
        dbapi_connection.commit()

    return engine


PING_IDLE_AFTER = 0.5
"""Seconds a pooled PostgreSQL connection may sit unused and still be handed out unpinged."""

_LAST_USED = "align.last_used"


def ping_when_idle(
    engine: Engine, *, after: float = PING_IDLE_AFTER, now: Callable[[], float] = time.monotonic
) -> None:
    """Ping a pooled connection on checkout only when it has been idle `after` seconds or more
    (HikariCP's `aliveBypassWindowMs`, 500 ms).

    SQLAlchemy's `pool_pre_ping` pings at every checkout: a `SELECT 1` round trip in front of
    every transaction, several per handed-off read command — about a fifth of the split
    shape's CPU per read in bench_slack. A connection given back moments ago was alive then;
    one that died since (the server restarted) fails its first statement instead, and
    SQLAlchemy then invalidates the whole pool, so only the transactions already holding a
    connection see the error (a fenced inbox call is tried again: `attempted`). A connection
    left idle longer — where a restart, a failover or a proxy's idle timeout hides — is pinged
    as before, and a dead one replaced (the pool is invalidated: the server probably
    restarted) before anything runs on it."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = now()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or now() - last < after:  # fresh, or given back moments ago
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(str(exc)) from exc
            raise


class WriterLock:
    """The process's SQLite writer lock, re-entrant, with a fast lane.

    Every SQLite transaction here writes (`BEGIN IMMEDIATE`), so they queue on this lock. The
    inbox's short writes — the one insert an acknowledgement waits for — must not queue behind
    a burst of engine transactions: an `urgent` caller goes before every ordinary waiter (it
    still waits for the transaction running now), and ordinary callers wait while one is
    waiting. Measured: with sixteen engine threads voting, acks waited up to half a second
    behind them on a plain lock."""

    def __init__(self) -> None:
        lock = threading.Lock()
        # Two queues on one lock, each woken one at a time: waking every waiter at each
        # release had sixteen engine threads fight for the GIL only to wait again.
        self._urgent_turn = threading.Condition(lock)
        self._turn = threading.Condition(lock)
        self._owner: int | None = None
        self._depth = 0
        self._urgent = 0
        self._waiting = 0

    @contextmanager
    def held(self, *, urgent: bool = False) -> Iterator[None]:
        me = threading.get_ident()
        turn = self._urgent_turn if urgent else self._turn
        with turn:
            if self._owner == me:
                self._depth += 1
            else:
                self._urgent += urgent
                self._waiting += not urgent
                try:
                    while self._owner is not None or (self._urgent and not urgent):
                        turn.wait()
                finally:
                    self._urgent -= urgent
                    self._waiting -= not urgent
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with turn:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    if self._urgent:
                        self._urgent_turn.notify()
                    elif self._waiting:
                        self._turn.notify()


@dataclass
class _Command:
    """A `Database.command()` under way: the transaction it joined (if any), and the one its
    first unit of work opened (None until then)."""

    outer: Session | None
    stack: ExitStack | None = None


class Database:
    """One engine and its session factory; the single place connections are made.

    SQL parameters are never logged (`hide_parameters`): a logged ballot next to a logged
    participation row would tell who voted what in an anonymous poll."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_overflow: int = DEFAULT_MAX_OVERFLOW,
        echo: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        idle_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`idle_clock` times how long a pooled PostgreSQL connection sat unused
        (`ping_when_idle`); tests pass their own."""
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._busy_ms = int(statement_timeout * 1000)
        self.connect_timeout = connect_timeout
        self._joined = threading.local()
        self._reading = threading.local()
        self._kept = threading.local()  # each thread's session: reads, commands (_kept_session)
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(
                self.url, statement_timeout=statement_timeout, reading=self._is_reading, echo=echo
            )
        else:
            self.engine = _postgres_engine(
                self.url,
                connect_timeout=connect_timeout,
                statement_timeout=statement_timeout,
                pool_size=pool_size,
                max_overflow=max_overflow,
                # Waiting for a free pooled connection is bounded like a statement.
                pool_timeout=statement_timeout,
                idle_clock=idle_clock,
                echo=echo,
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local_writer = WriterLock() if self.dialect == "sqlite" else None
        self._next_number = _next_number_statement(self.dialect)

    @contextmanager
    def uow(
        self, *, urgent: bool = False, savepoint: bool = True, durable: bool = True
    ) -> Iterator[Session]:
        """A transaction: everything in the block is committed together or not at all.

        On SQLite the process's own transactions queue on a lock instead of on SQLite's busy
        handler, which retries by sleeping (up to 100 ms a time) and so starves a busy server;
        other processes still wait through the busy timeout. An `urgent` transaction (the
        inbox's, which an ack waits for) goes before the ordinary ones waiting (`WriterLock`).

        Inside `joined(session)` the block is a savepoint of that session's transaction instead:
        it rolls back alone on an error, and commits only with the outer transaction. With
        `savepoint=False` it runs in that transaction as it is — for work that refuses nothing,
        so an error in it fails the whole. Inside `command()`, the command's first unit of work
        opens the command's transaction (see there).

        `durable=False`, for a transaction that only redoes work already made durable and that
        is done again if it is lost (counting waiting anonymous ballots: lost, they still
        wait), lets PostgreSQL commit it without waiting for the disk (`synchronous_commit`
        off for this transaction only). A crash may then undo it, never half of it, and never
        a transaction committed before it; any later ordinary commit makes it durable too (the
        log is written in order). Honoured only for a transaction of its own: inside `joined`
        or `command()` the block is part of work that must be durable. SQLite commits without
        waiting for the disk anyway (`synchronous=NORMAL`)."""
        command: _Command | None = getattr(self._joined, "command", None)
        if command is not None:
            with self._first_part(command, urgent) as session:
                yield session
            return
        outer: Session | None = getattr(self._joined, "session", None)
        if outer is not None:
            if not savepoint:
                yield outer
                return
            with in_savepoint(outer):
                yield outer
            return
        with self._transaction(urgent) as session:
            if not durable and self.dialect == "postgresql":
                session.connection().exec_driver_sql(_NOT_DURABLE)
            yield session

    @contextmanager
    def _transaction(self, urgent: bool, *, kept: bool = False) -> Iterator[Session]:
        """A transaction of its own: a read one (`reading`), else a write one on SQLite's
        writer lock — on the session the thread keeps (`_kept_session`) for a command's
        (`kept`: `_first_part`), on a new one otherwise."""
        reading = self._is_reading()
        writer = (
            nullcontext()
            if reading or self._local_writer is None
            else self._local_writer.held(urgent=urgent)
        )
        sessions = self._kept_session() if kept or reading else self._sessions()
        with writer, sessions as session:
            with session.begin():
                # Not a command's transaction (`kept`), even opened by a read: its later units
                # of work are savepoints of it, and write in it.
                if reading and not kept and self.dialect == "postgresql":
                    session.connection(execution_options=_READ_ON_POSTGRESQL)
                yield session
                _run_at_commit(session)
            if session.info.pop(CHECKPOINT, False) and self.dialect == "sqlite":
                self._checkpoint()

    @contextmanager
    def _kept_session(self) -> Iterator[Session]:
        """The session this thread keeps for its reads and its commands, not a new one:
        building and tearing down a Session was a fifth of a read command's time in the
        database (measured on SQLite, an empty `decisions` page: 127 -> 97 us), and about 3%
        of an anonymous vote's CPU with its share of the batch's count. Closed after each
        transaction, and its `info` cleared (per-transaction caches, `at_commit`, `CHECKPOINT`),
        it starts the next one as a new session would: no object, no connection, nothing
        remembered. A transaction opened inside another on the same thread gets a session of
        its own. A write of its own outside a command still gets a new one."""
        session: Session | None = getattr(self._kept, "session", None)
        self._kept.session = None
        if session is None:
            session = self._sessions()
        try:
            yield session
        finally:
            session.close()
            session.info.clear()
            self._kept.session = session

    @contextmanager
    def command(self) -> Iterator[None]:
        """Run a command's units of work as one transaction, committed when the block ends (the
        engine's `_one_transaction`): the first `uow()` in the block opens it — a transaction of
        its own, or a savepoint of the `joined` one (the inbox's) — and those after it are
        savepoints of it. A unit of work rolls back alone when it fails, as before: the first
        one, having nothing before it to keep, rolls back the transaction it opened instead of a
        savepoint (the next `uow()` opens a new one). Any error out of the block rolls back all.
        So a vote — one unit of work, then `_remember` — costs no savepoint at all."""
        state = _Command(outer=getattr(self._joined, "session", None))
        before = getattr(self._joined, "command", None)
        self._joined.command = state
        try:
            yield
        except BaseException as exc:
            self._joined.command, self._joined.session = before, state.outer
            if state.stack is not None:
                state.stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._joined.command, self._joined.session = before, state.outer
        if state.stack is not None:
            state.stack.close()

    @contextmanager
    def _first_part(self, command: _Command, urgent: bool) -> Iterator[Session]:
        """The first unit of work of a `command()`: opens the command's transaction and keeps
        it open past the block, or rolls it back if the block fails."""
        stack = ExitStack()
        if command.outer is None:
            session = stack.enter_context(self._transaction(urgent, kept=True))
        else:
            session = command.outer
            stack.enter_context(in_savepoint(session))
        command.stack = stack
        self._joined.command, self._joined.session = None, session
        try:
            yield session
        except BaseException as exc:
            command.stack = None
            self._joined.command, self._joined.session = command, command.outer
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def _checkpoint(self) -> None:
        """Copy SQLite's WAL into the database file and truncate it to nothing, on a connection
        outside any transaction; waits at most a second for other processes' readers (a busy
        WAL stays until the next flush's checkpoint, or SQLite's own)."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA busy_timeout=1000")
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.fetchall()
            finally:
                cursor.execute(f"PRAGMA busy_timeout={self._busy_ms}")
                cursor.close()
        finally:
            raw.close()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every `uow()` of this thread is a read transaction until the block ends: on SQLite a
        deferred BEGIN outside the process's writer lock, so a read neither waits for the
        writers nor holds them up (WAL gives it a snapshot). For what only reads — the verbs
        the grammar marks `reads`; a write inside would find no write lock held for it."""
        before = getattr(self._reading, "on", False)
        self._reading.on = True
        try:
            yield
        finally:
            self._reading.on = before

    def _is_reading(self) -> bool:
        return bool(getattr(self._reading, "on", False))

    @contextmanager
    def joined(self, session: Session) -> Iterator[None]:
        """Run every `uow()` of this thread in `session`'s transaction until the block ends.

        The inbox runs a command this way, so the command's effects and the row saying it ran
        commit together or not at all (adapters/inbox.py): a crash can never leave a command
        that ran but looks unrun, which a re-run would then do twice."""
        before = getattr(self._joined, "session", None)
        self._joined.session = session
        try:
            yield
        finally:
            self._joined.session = before

    def next_number(self, session: Session, workspace: str, kind: str) -> int:
        """Hand out the next number of a kind in a workspace, atomically, never reusing one.

        One upsert statement: concurrent callers queue on the row lock and each gets its own
        number; a rolled-back transaction gives its number back only because nobody saw it.
        """
        params = {"workspace": workspace, "kind": kind}
        return int(session.execute(self._next_number, params).scalar_one())

    def attempted(
        self,
        write: Callable[[Session], T],
        *,
        urgent: bool = False,
        again: Callable[[Exception], bool] | None = None,
    ) -> T:
        """`write` in a transaction of its own (`uow`), tried again at once in a new one while
        it meets an error `again` names — by default one of the moment (`transient`); see
        `attempted`, and what `write` must be for that."""

        def one_try() -> T:
            with self.uow(urgent=urgent) as session:
                return write(session)

        return attempted(one_try, again=again or transient)

    def dispose(self) -> None:
        self.engine.dispose()


CONFLICTS = frozenset({"40001", "40P01"})
"""SQLSTATEs of a transaction that met others (serialization failure, deadlock detected): the
same work in a transaction of its own, later, would not fail so."""


def conflicted(exc: Exception) -> bool:
    """Whether `exc` is PostgreSQL refusing a statement for a conflict with other transactions
    (CONFLICTS) rather than for the statement itself: wrapped by SQLAlchemy (`orig`), or
    psycopg's own error, as the statements run on the raw cursor raise it (`PreparedUpsert`,
    `raw`: the vote path's participation row, ballot and tally)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) in CONFLICTS


SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
"""SQLSTATEs of a server ending or refusing connections (admin shutdown — a restart, a
backend ended —, crash shutdown, starting up); with class 08 (connection exception)."""


def disconnected(exc: Exception) -> bool:
    """Whether `exc` is the database connection lost (SQLAlchemy invalidated it: a restart, a
    failover, a backend ended): the same work on another connection may well succeed.

    Also when the connection was lost while it was being opened — a restart meeting a new
    connection's `SET statement_timeout`: SQLAlchemy asks the dialect with no connection to
    look at then, and psycopg's answers it was not a disconnect; the SQLSTATE says it was."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return state in SERVER_GONE or state.startswith("08")


def transient(exc: Exception) -> bool:
    """A conflict with other transactions (`conflicted`) or the connection lost
    (`disconnected`): an error of the moment, not of the work, which may well succeed run
    again in a transaction of its own."""
    return conflicted(exc) or disconnected(exc)


ATTEMPTS_NOW = 3
"""How many times work that meets an error of the moment (`transient`) is tried at once, each
try a transaction of its own, before its caller sees the error. Under concurrency a deadlock or
a serialization failure is expected, not exceptional — PostgreSQL picks one transaction of a
cycle to fail, the others go on — and the work it cut short, a vote acknowledged, is owed: its
clicker was told "Something went wrong" instead, and the vote was not counted."""


def attempted(
    run: Callable[[], T],
    *,
    again: Callable[[Exception], bool] = transient,
    times: int = ATTEMPTS_NOW,
) -> T:
    """`run()`, tried again at once when it fails with an error `again` names (by default one
    of the moment, `transient`), up to `times` tries in all; `run` must be safe to run again
    whatever became of a try that failed (its own transaction, and for a lost COMMIT, a fence:
    the inbox's answered row)."""
    for attempt in range(1, times):
        try:
            return run()
        except Exception as exc:
            if not again(exc):
                raise
            log.info("error of the moment (%s): try %d of %d", type(exc).__name__, attempt, times)
    return run()


def dialect_insert(dialect: str) -> Any:
    """The INSERT with ON CONFLICT for this database: SQLite's and PostgreSQL's are separate
    constructs in SQLAlchemy, with the same interface."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _next_number_statement(dialect: str) -> Any:
    """`next_number`'s upsert, built once per database and bound per call: building it took a
    fifth of the call's time (measured on SQLite), on every `ask`, `decide`, `item` and `poll`.
    It is written against the table, not the mapped class: an ORM-enabled insert runs through the
    ORM's bulk-insert path and autoflushes, which cost more than the statement itself."""
    table = Counter.__table__
    return (
        dialect_insert(dialect)(table)
        .values(workspace=bindparam("workspace"), kind=bindparam("kind"), last=1)
        .on_conflict_do_update(
            index_elements=[table.c.workspace, table.c.kind],
            set_={"last": table.c.last + 1},
        )
        .returning(table.c.last)
    )


_DRIVER = "align.driver"


def driver(session: Session) -> tuple[Any, Any]:
    """The dialect and the DBAPI connection of the session's transaction, asked of the session
    once per transaction and remembered in its `info` beside that transaction: a vote runs
    five statements on the raw cursor (`raw`, `Prepared`), and asking the session for its
    connection and its bind each time was about 4 us of SQLAlchemy a statement. A savepoint
    runs in its transaction's connection; once the transaction has ended, or can no longer be
    used (rolled back by an error), the session is asked again (and says so). Keyed by the
    innermost transaction: a savepoint's SAVEPOINT is sent when its session is first asked for
    its connection, so each savepoint asks once too.

    The note names the transaction by a weak reference: the transaction holds the session, so
    a strong one made every new session, its transaction, connection and pool checkout (43
    objects) a cycle only the garbage collector freed — after a load, one pass over 55,000 of
    them held the event loop for 110 ms (bench_slack's p99 at 50 req/s)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    found = session.info.get(_DRIVER)
    if (
        transaction is not None
        and found is not None
        and found[0]() is transaction
        and transaction.is_active
    ):
        return found[1], found[2]
    connection = session.connection()
    current = session.get_nested_transaction() or session.get_transaction()
    session.info[_DRIVER] = (weakref.ref(current), connection.dialect, connection.connection)
    return connection.dialect, connection.connection


@contextmanager
def _as_sqlalchemy_errors(
    dialect: Any, connection: Any, cursor: Any, statement: str
) -> Iterator[None]:
    """A driver's error on the raw cursor in the block, raised as SQLAlchemy raises it from
    `session.execute`: a `DBAPIError` (`OperationalError`, `IntegrityError` …) with the driver's
    in `orig`, marked `connection_invalidated` when the connection is lost. What catches
    SQLAlchemy's errors — the inbox's "not recorded", `attempted`'s errors of the moment
    (`disconnected`) — then sees a raw statement's failure as it sees any other; the session's
    rollback invalidates the lost connection. No parameters in it: they could be a ballot."""
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            statement,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=dialect.is_disconnect(exc, connection, cursor),
            dialect=dialect,
        ) from exc


@contextmanager
def _raw_cursor(session: Session, statement: str, params: tuple[Any, ...]) -> Iterator[Any]:
    """The raw DBAPI cursor of the session's transaction, with `statement` (parameters marked
    `?`, as SQLite writes them) run on it; closed after the block."""
    dialect, connection = driver(session)
    if dialect.name != "sqlite":
        statement = statement.replace("?", "%s")
    cursor = connection.cursor()
    try:
        with _as_sqlalchemy_errors(dialect, connection, cursor, statement):
            cursor.execute(statement, params)
        yield cursor
    finally:
        cursor.close()


def raw(session: Session, statement: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Run one statement on the raw DBAPI cursor of the session's transaction and give its first
    row (None without one). Nothing here reaches SQLAlchemy's row log — for reads whose rows,
    logged in a voter's own request, would tie them to a choice — and nothing is built per
    call, for statements every vote runs. Parameters are marked `?`."""
    with _raw_cursor(session, statement, params) as cursor:
        return tuple(cursor.fetchone() or ()) or None if cursor.description else None


def raw_all(session: Session, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Every row of one statement on the raw DBAPI cursor (see `raw`)."""
    with _raw_cursor(session, statement, params) as cursor:
        return [tuple(row) for row in cursor.fetchall()]


class _Compiled:
    """A `Prepared` statement as compiled for one database: its SQL, the order of its
    parameters (None for named ones), the bind processors by parameter name, and a result
    processor (or None) per column it returns (a SELECT's, or those of its RETURNING) — and
    the columns that have one, by position: a row of eleven columns of which two are converted
    costs two calls, not eleven steps of a generator (a page of twenty `decisions`: a sixth of
    its engine time went to `_converted`).

    Whether it returns rows at all is known here, once, rather than asked of the cursor after
    each run: psycopg builds `description` anew at every access, a `Column` per column (1.4 us
    for one column, 2.9 for three) — about 5% of a web process's GIL time in a handed-off read
    load, for `record` (py-spy)."""

    __slots__ = ("binds", "converting", "order", "results", "returns_rows", "sql")

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        self.binds: dict[str, Any] = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type._cached_bind_processor(dialect)) is not None
        }
        returned = statement.exported_columns  # a SELECT's, or RETURNING's (empty without)
        self.returns_rows = bool(returned)
        self.results: tuple[Any, ...] = tuple(
            column.type._cached_result_processor(dialect, None) for column in returned
        )
        self.converting: tuple[tuple[int, Any], ...] = tuple(
            (index, processor) for index, processor in enumerate(self.results) if processor
        )


class Prepared:
    """A SQLAlchemy statement compiled once per database, then run on the raw DBAPI cursor of
    the session's transaction with its columns' own bind processing (UTC datetimes, JSON) —
    the SQL SQLAlchemy would send, at a fifth of the cost of `session.execute` (measured:
    about 7 µs against 35 on SQLite), for the statements every vote runs. Like `raw`, it
    reaches no SQLAlchemy log or event. `build(dialect)` makes the statement, with a
    `bindparam` per value. A SELECT's rows (`rows`) come back through its columns' result
    processing too (booleans, aware UTC datetimes), as `session.execute` gives them."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Any) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self._build(dialect.name), dialect)
        return found

    def _execute(self, session: Session, params: dict[str, Any]) -> tuple[Any, _Compiled]:
        """The raw cursor, with the statement run on it with these values (the caller closes
        it)."""
        dialect, connection = driver(session)
        compiled = self._for(dialect)
        cursor = connection.cursor()
        try:
            with _as_sqlalchemy_errors(dialect, connection, cursor, compiled.sql):
                cursor.execute(compiled.sql, _bound(compiled, params))
        except BaseException:
            cursor.close()
            raise
        return cursor, compiled

    def run_many(self, session: Session, many: list[dict[str, Any]]) -> None:
        """Run it once for each set of values, in one executemany on the raw cursor — psycopg
        sends them pipelined, one round trip for all (a worker's group of answered marks); for
        a statement that returns nothing."""
        dialect, connection = driver(session)
        compiled = self._for(dialect)
        cursor = connection.cursor()
        try:
            with _as_sqlalchemy_errors(dialect, connection, cursor, compiled.sql):
                cursor.executemany(compiled.sql, [_bound(compiled, params) for params in many])
        finally:
            cursor.close()

    def run(self, session: Session, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run it with these values (by bind name); its first row, or None."""
        cursor, compiled = self._execute(session, params)
        try:
            return tuple(cursor.fetchone() or ()) or None if compiled.returns_rows else None
        finally:
            cursor.close()

    def _fetched(
        self, session: Session, params: dict[str, Any]
    ) -> tuple[list[Any], tuple[tuple[int, Any], ...]]:
        """Every row of a SELECT run with these values, as the driver gives them, and the
        columns to convert (`_Compiled.converting`)."""
        cursor, compiled = self._execute(session, params)
        try:
            return cursor.fetchall(), compiled.converting
        finally:
            cursor.close()

    def rows(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run a SELECT with these values (by bind name); every row, each value converted as
        its column's type converts it."""
        fetched, converting = self._fetched(session, params)
        if not converting:
            return [tuple(row) for row in fetched]
        return [_converted(converting, row) for row in fetched]

    def first_and_column(
        self, session: Session, params: dict[str, Any], column: int
    ) -> tuple[tuple[Any, ...] | None, list[Any]]:
        """Run a SELECT of one row joined to many (a poll and its options); the first row, each
        value converted as its column's type converts it (`rows`), and the value of `column` in
        every row — a column its type does not convert (text): the one row's own columns, the
        same in every row, are converted once instead of once per row. (None, []) without
        rows."""
        fetched, converting = self._fetched(session, params)
        if any(index == column for index, _processor in converting):
            raise ValueError(f"column {column} is converted by its type; use rows()")
        if not fetched:
            return None, []
        return _converted(converting, fetched[0]), [row[column] for row in fetched]


def in_list(column: Any, name: str, dialect: str) -> Any:
    """`column IN (…)` for a `Prepared` statement, the list bound as one value named `name`.

    A `Prepared` statement is compiled once, where an expanding IN has SQLAlchemy render the
    SQL anew for each length of list. PostgreSQL takes the list as an array (`= ANY`, the form
    its planner turns an IN list into); SQLite, which has no arrays, as JSON text it unpacks
    (`json_each`, built into SQLite since 3.38). An empty list matches no row, as an empty IN."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    unpacked: Any = select(literal_column("value")).select_from(
        func.json_each(bindparam(name, type_=JSON))
    )
    return column.in_(unpacked.scalar_subquery())


class json_list(FunctionElement[Any]):
    """The values of one column over a subquery's rows, as one JSON array (`json_group_array`
    on SQLite, `json_agg` on PostgreSQL, where no rows give NULL): a list's rows then carry
    each row's few related values (a decision's tags) in the one statement that reads them,
    where a statement of their own cost the read a second round of execution. Read a value with
    `listed`, when it is needed: both databases give the array as JSON text, decoded only then —
    typed JSON, psycopg decoded every row's as it fetched it (about 0.04 ms of the 0.4 a
    `decisions` page of twenty cost the engine and its rendering on PostgreSQL), for a list
    only `--json` shows."""

    inherit_cache = True


@compiles(json_list, "sqlite")
def _json_list_sqlite(element: json_list, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(json_list, "postgresql")
def _json_list_postgresql(element: json_list, compiler: Any, **kw: Any) -> str:
    # As text, as SQLite gives it: psycopg decodes a json column of every row as it fetches it.
    return f"CAST(json_agg({compiler.process(element.clauses, **kw)}) AS text)"


def listed(value: str | None) -> list[Any]:
    """A `json_list` value as a list (NULL, for no rows at all on PostgreSQL: empty)."""
    if value is None:
        return []
    found: list[Any] = json.loads(value)
    return found


def sql_constant(value: str) -> Any:
    """A text constant written into a statement's SQL itself, not bound: a `Prepared`
    statement (and `paging.Listing`) binds only the values its caller passes."""
    if "'" in value:
        raise ValueError("a constant without quotes")
    return literal_column(f"'{value}'")


def _bound(compiled: _Compiled, params: dict[str, Any]) -> Any:
    """The values of one run of a `Prepared` statement, each through its bind processor, in
    the order or by the names its SQL takes them."""
    processors = compiled.binds
    values = {
        name: processors[name](value) if name in processors else value
        for name, value in params.items()
    }
    order = compiled.order
    return [values[n] for n in order] if order else values


def _converted(converting: tuple[tuple[int, Any], ...], row: Any) -> tuple[Any, ...]:
    """A row's values, each converted as its column's type converts it (`Prepared`): the
    columns in `converting`, by position; the others as the driver gave them."""
    values = list(row)
    for index, process in converting:
        values[index] = process(values[index])
    return tuple(values)


def upsert(session: Session, model: Any, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert a row, or update `values` on the row with this primary `key`, in one statement.
    The statement is built once per table and set of columns and bound per call: building it
    cost more than running it, on every vote (the participation row) and first command."""
    dialect = session.get_bind().dialect.name
    shape = (dialect, model.__table__.name, tuple(key), tuple(values))
    stmt = _UPSERTS.get(shape)
    if stmt is None:
        stmt = _UPSERTS[shape] = _upsert_statement(dialect, model, tuple(key), tuple(values))
    session.execute(stmt, {f"p_{name}": value for name, value in (*key.items(), *values.items())})


def _upsert_statement(
    dialect: str, model: Any, key: tuple[str, ...], values: tuple[str, ...]
) -> Any:
    table = model.__table__
    return (
        dialect_insert(dialect)(table)
        .values({name: bindparam(f"p_{name}") for name in (*key, *values)})
        .on_conflict_do_update(
            index_elements=list(key), set_={name: bindparam(f"p_{name}") for name in values}
        )
    )


class PreparedUpsert:
    """`upsert` for one table and set of columns as a `Prepared` statement (on the raw cursor):
    for the rows every vote writes."""

    def __init__(self, model: Any, key: tuple[str, ...], values: tuple[str, ...]) -> None:
        self._prepared = Prepared(lambda dialect: _upsert_statement(dialect, model, key, values))

    def run(self, session: Session, key: dict[str, Any], values: dict[str, Any]) -> None:
        self._prepared.run(
            session, {f"p_{name}": value for name, value in (*key.items(), *values.items())}
        )


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


__all__ = [
    "ATTEMPTS_NOW",
    "CHECKPOINT",
    "CONFLICTS",
    "DEFAULT_URL",
    "AtCommit",
    "Database",
    "Prepared",
    "PreparedUpsert",
    "UnitOfWork",
    "at_commit",
    "attempted",
    "conflicted",
    "dialect_insert",
    "disconnected",
    "driver",
    "in_list",
    "in_savepoint",
    "normalize_url",
    "queued",
    "raw",
    "raw_all",
    "sql_constant",
    "transient",
    "upsert",
]
