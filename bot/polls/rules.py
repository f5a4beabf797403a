"""What a poll is and may do: its modes, its limits, whether it is open, who may manage it, and
the key its ballots are stored under."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from bot.common import channel_tz, when
from bot.context import Actor, Deps
from bot.errors import Conflict, UsageError
from storage.db import UnitOfWork
from storage.models import Poll

MODES = ("single", "multi", "ranked", "dots")
METHODS = ("schulze", "borda", "irv")
MIN_OPTIONS, MAX_OPTIONS = 2, 25
MAX_OPTION_TEXT = 150
MAX_BUDGET = 1000
MAX_REASON = 1000
REASON_FIELD = "reason"
"""The optional reason input of a ballot form."""
FLAGS = ("anonymous", "public")
"""Bare words `poll` reads as switches."""


def closed_on(poll: Poll, now: datetime) -> datetime | None:
    """When the poll closed, if it has: closed explicitly, or its closing time has passed."""
    if poll.closed_at is not None:
        return poll.closed_at
    if poll.closes_at is not None and poll.closes_at <= now:
        return poll.closes_at
    return None


def ensure_open(session: UnitOfWork, actor: Actor, poll: Poll, now: datetime) -> None:
    closed = closed_on(poll, now)
    if closed is not None:
        raise Conflict(f"P-{poll.number} closed on {when(closed, channel_tz(session, actor))}.")


def may_manage(deps: Deps, actor: Actor, poll: Poll) -> bool:
    return actor.user == poll.created_by or actor.is_admin or actor.user in deps.admins


def voter_key(deps: Deps, poll: Poll, user: str) -> str:
    """The ballot's key: the person for open polls; a keyed hash for anonymous ones."""
    if not poll.anonymous:
        return user
    message = f"{poll.workspace}\x1f{poll.id}\x1f{user}".encode()
    return "h:" + hmac.new(deps.secret, message, hashlib.sha256).hexdigest()[:48]


def check_options(texts: list[str], verb: str) -> None:
    if not MIN_OPTIONS <= len(texts) <= MAX_OPTIONS:
        raise UsageError(
            f"A poll has {MIN_OPTIONS} to {MAX_OPTIONS} options; you gave {len(texts)}.", verb=verb
        )
    seen: set[str] = set()
    for text in texts:
        if not text.strip():
            raise UsageError("An option cannot be empty.", verb=verb)
        if len(text) > MAX_OPTION_TEXT:
            raise UsageError(f"Keep each option under {MAX_OPTION_TEXT} characters.", verb=verb)
        key = text.strip().lower()
        if key in seen:
            raise UsageError(f"The option “{text}” is given twice.", verb=verb)
        seen.add(key)
