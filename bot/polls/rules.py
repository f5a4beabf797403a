"""What a poll is and may do: its modes, its limits, whether it is open, who may manage it, and
the key its ballots are stored under."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select

from bot.common import channel_tz, when
from bot.context import Actor, Deps
from bot.errors import Conflict, NotFound, UsageError
from bot.parser import Ref
from storage.db import Prepared, UnitOfWork
from storage.models import Poll, PollOption

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


class OptionText(Protocol):
    @property
    def text(self) -> str: ...


class Votable(Protocol):
    """What recording a vote reads of a poll — and counting a ballot into its tally: the ORM
    `Poll` has it, and so has `VotePoll`, the light read a vote takes (`read_for_vote`)."""

    @property
    def id(self) -> int: ...
    @property
    def workspace(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def mode(self) -> str: ...
    @property
    def budget(self) -> int | None: ...
    @property
    def max_choices(self) -> int | None: ...
    @property
    def anonymous(self) -> bool: ...
    @property
    def results_hidden(self) -> bool: ...
    @property
    def closes_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def options(self) -> Sequence[OptionText]: ...


@dataclass(frozen=True)
class VoteOption:
    text: str


@dataclass(frozen=True)
class VotePoll:
    """A poll as a vote reads it: its row's facts and its options' texts, nothing else (no
    ORM instance: loading one cost as much as the rest of the vote)."""

    id: int
    workspace: str
    number: int
    mode: str
    budget: int | None
    max_choices: int | None
    anonymous: bool
    results_hidden: bool
    closes_at: datetime | None
    closed_at: datetime | None
    options: tuple[VoteOption, ...]


_POLLS = cast(Table, Poll.__table__)
_OPTIONS = cast(Table, PollOption.__table__)
_COLUMNS = (
    select(
        _POLLS.c.id,
        _POLLS.c.workspace,
        _POLLS.c.number,
        _POLLS.c.mode,
        _POLLS.c.budget,
        _POLLS.c.max_choices,
        _POLLS.c.anonymous,
        _POLLS.c.results_hidden,
        _POLLS.c.closes_at,
        _POLLS.c.closed_at,
        _OPTIONS.c.text,
    )
    .select_from(_POLLS.outerjoin(_OPTIONS, _OPTIONS.c.poll_id == _POLLS.c.id))
    .order_by(_OPTIONS.c.position)
)
# Run on the raw cursor (`Prepared`, with the columns' own conversions): every vote reads its
# poll, and through `session.execute` the statement cost more than the query itself.
_BY_ID = Prepared(lambda _dialect: _COLUMNS.where(_POLLS.c.id == bindparam("poll_id")))
_FOR_VOTE = Prepared(
    lambda _dialect: (
        _COLUMNS.where(
            _POLLS.c.workspace == bindparam("workspace"),
            _POLLS.c.channel == bindparam("channel"),
            _POLLS.c.number == bindparam("number"),
        )
        # Share-locked, only the poll's own row (see `bot.common.load`).
        .with_for_update(read=True, of=_POLLS)
    )
)


_TEXT = 10
"""The option's text in a row of `_COLUMNS`: the one column that differs between its rows."""


def _vote_poll(first: Sequence[Any], texts: Sequence[str | None]) -> VotePoll:
    return VotePoll(
        id=first[0],
        workspace=first[1],
        number=first[2],
        mode=first[3],
        budget=first[4],
        max_choices=first[5],
        anonymous=first[6],
        results_hidden=first[7],
        closes_at=first[8],
        closed_at=first[9],
        options=tuple(VoteOption(text) for text in texts if text is not None),
    )


def read_by_id(session: UnitOfWork, poll_id: int) -> VotePoll | None:
    """The poll with this row id as a vote reads it (no lock), or None — for the batch flush,
    which needs no more of it either."""
    first, texts = _BY_ID.first_and_column(session, {"poll_id": poll_id}, _TEXT)
    return None if first is None else _vote_poll(first, texts)


def read_for_vote(session: UnitOfWork, actor: Actor, ref: Ref) -> VotePoll:
    """The poll `ref` in the actor's channel with its options, share-locked (`load(shared=True)`
    in one statement compiled once, run on the raw cursor), or NotFound — the same answer as
    `load`'s."""
    params: dict[str, Any] = {
        "workspace": actor.workspace,
        "channel": actor.channel,
        "number": ref.number,
    }
    # The poll's own columns are converted once, not once per option (`first_and_column`).
    first, texts = _FOR_VOTE.first_and_column(session, params, _TEXT)
    if first is None:
        raise NotFound(f"{ref} not found in this channel.")
    return _vote_poll(first, texts)


def closed_on(poll: Votable, now: datetime) -> datetime | None:
    """When the poll closed, if it has: closed explicitly, or its closing time has passed."""
    if poll.closed_at is not None:
        return poll.closed_at
    if poll.closes_at is not None and poll.closes_at <= now:
        return poll.closes_at
    return None


def ensure_open(session: UnitOfWork, actor: Actor, poll: Votable, now: datetime) -> None:
    closed = closed_on(poll, now)
    if closed is not None:
        raise Conflict(f"P-{poll.number} closed on {when(closed, channel_tz(session, actor))}.")


def may_manage(deps: Deps, actor: Actor, poll: Poll) -> bool:
    return actor.user == poll.created_by or actor.is_admin or actor.user in deps.admins


def voter_key(deps: Deps, poll: Votable, user: str) -> str:
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
