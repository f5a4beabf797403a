"""The composition root: the one place concrete parts are wired together.

The CLI, the server and the tests all build their engine here, so tests run the same wiring with
a temporary database, a fake clock and fake platform servers.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from adapters.inbox import Inbox
from adapters.postings import Postings
from adapters.preflight import ConfigError
from adapters.roster import RosterCache
from adapters.settings import Settings
from bot import webhooks
from bot.clock import Clock, SystemClock
from bot.context import Deps
from bot.engine import Engine
from bot.webhook_targets import TargetPolicy
from storage import Database, secret_check, upgrade

log = logging.getLogger("align")


@dataclass
class App:
    settings: Settings
    db: Database
    clock: Clock
    engine: Engine
    postings: Postings
    """Keeps live messages current for every platform; each platform mount adds its updater."""
    roster: RosterCache
    """Channel member lists in the database, refreshed through each platform's fetch."""
    inbox: Inbox
    """Every inbound request, recorded before its ack and worked from the row."""


def secret_bytes(settings: Settings, db_url: str) -> bytes:
    """ALIGN_SECRET, or for a local console database a stable key derived from its URL, so the
    zero-setup `make run` works; servers log a warning when it is missing."""
    if settings.secret:
        return settings.secret.encode()
    return hashlib.sha256(b"align-local:" + db_url.encode()).digest()


def secret_fingerprint(settings: Settings) -> str:
    """The fingerprint (storage/secret_check.py) of the secret this process keys and seals
    with, `secret_bytes` — what `check_secret`, `align doctor` and `align adopt-secret` compare
    with the database's."""
    return secret_check.fingerprint(secret_bytes(settings, settings.database_url))


SECRET_MISMATCH = (
    "ALIGN_SECRET is not the secret this database is used with (its fingerprint, stored by the "
    "first process, differs): set the same ALIGN_SECRET in every process sharing the database; "
    'to change it on purpose, stop them all and run `align adopt-secret` (README, "Changing '
    'ALIGN_SECRET").'
)
SECRET_MISSING = (
    "ALIGN_SECRET is not set, but this database is used with one (its fingerprint is stored): "
    "set the same ALIGN_SECRET as the processes serving it."
)


def check_secret(app: App) -> None:
    """Refuse to go on unless this process holds the ALIGN_SECRET the database is used with.

    Every process sharing a database must seal and key with one secret: a request a web process
    seals must open in the worker that runs it, an anonymous voter's key must be the same on
    every replica. The first process with ALIGN_SECRET set stores its fingerprint (race-safe,
    storage/secret_check.py); every later one compares. The console without ALIGN_SECRET (its
    key derived from the database URL) stores nothing, so a local database never needs one —
    but it is refused on a database a server stored a fingerprint in."""
    mine = secret_fingerprint(app.settings)
    held: str | None
    if app.settings.secret:
        held = secret_check.claim(app.db, mine, now=app.clock.now())
    else:
        held = secret_check.stored(app.db)
    if held is not None and held != mine:
        raise ConfigError(SECRET_MISMATCH if app.settings.secret else SECRET_MISSING)


def webhook_targets(settings: Settings) -> TargetPolicy:
    """Names resolved by the system; loopback only when a test asks for it, loudly."""
    from adapters.webhook_sender import system_resolve

    if settings.webhook_loopback_for_tests:
        log.warning("ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS is set: webhooks may call this machine")
    return TargetPolicy(resolve=system_resolve, allow_loopback=settings.webhook_loopback_for_tests)


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
) -> App:
    settings = settings or Settings()
    if migrate:
        upgrade(settings.database_url)
    db = Database(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    clock = clock or SystemClock()
    roster = RosterCache(db, clock)
    deps = Deps(
        db=db,
        clock=clock,
        secret=secret_bytes(settings, settings.database_url),
        admins=settings.admin_set(),
        webhook_targets=webhook_targets(settings),
    )
    # Outgoing webhooks are written in the transaction of the event that causes them.
    deps.listeners.append(webhooks.on_event)
    engine = Engine(deps)
    inbox = Inbox(
        db,
        clock,
        secret=deps.secret,
        ack_budget=settings.inbox_ack_budget,
        claim_timeout=timedelta(seconds=settings.inbox_claim_timeout),
        retention=timedelta(hours=settings.inbox_retention_hours),
        max_backlog=settings.max_backlog,
    )
    return App(
        settings=settings,
        db=db,
        clock=clock,
        engine=engine,
        postings=Postings(engine),
        roster=roster,
        inbox=inbox,
    )
