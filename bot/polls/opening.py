"""Opening polls (`poll`, `prioritize`) and changing them (`edit P-n`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.common import audit, channel_tz, load
from bot.context import Actor, Deps, Event
from bot.errors import Forbidden, UsageError
from bot.parser import Command, parse_ref
from bot.polls import recurrence, tallies
from bot.polls.features import Features, check_period, read_features
from bot.polls.rules import (
    FLAGS,
    MAX_BUDGET,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    METHODS,
    MIN_OPTIONS,
    MODES,
    check_options,
    ensure_open,
    may_manage,
)
from bot.polls.view import poll_view
from bot.timeparse import parse_when
from bot.views import Reply, mention
from storage.db import UnitOfWork
from storage.models import Poll, PollOption, PollSeries


def _parse_mode(cmd: Command, verb: str, default: str) -> tuple[str, int | None, str | None]:
    raw = (cmd.option("mode") or default).lower()
    budget = None
    if raw.startswith("dots"):
        _, _, number = raw.partition(":")
        if not number.isdigit() or not 1 <= int(number) <= MAX_BUDGET:
            raise UsageError(
                f"dots needs a point budget from 1 to {MAX_BUDGET}, like mode:dots:5.", verb=verb
            )
        mode, budget = "dots", int(number)
    elif raw in MODES:
        mode = raw
    else:
        raise UsageError("mode is single, multi, ranked or dots:N.", verb=verb)
    if verb == "prioritize" and mode not in ("ranked", "dots"):
        raise UsageError("A prioritization vote is ranked or dots:N.", verb=verb)
    method = cmd.option("method")
    if method is not None:
        method = method.lower()
        if method not in METHODS:
            raise UsageError("method is schulze, borda or irv.", verb=verb)
        if mode != "ranked":
            raise UsageError("method: applies to ranked polls only.", verb=verb)
    elif mode == "ranked":
        method = "schulze"
    return mode, budget, method


def _parse_closes(
    deps: Deps, session: UnitOfWork, actor: Actor, cmd: Command, verb: str
) -> datetime | None:
    text = cmd.option("closes")
    if text is None:
        return None
    now = deps.clock.now()
    moment = parse_when(text, now=now, tz=channel_tz(session, actor), verb=verb)
    if moment <= now:
        raise UsageError("The closing time must be in the future.", verb=verb)
    return moment


def cmd_poll(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    flags: set[str] = set()
    texts: list[str] = []
    for token in cmd.args:
        if not token.quoted and token.text.lower() in FLAGS:
            flags.add(token.text.lower())
        elif token.quoted:
            texts.append(token.text.strip())
        else:
            raise UsageError(
                f"Put the question and each option in quotes (`{token.text[:30]}` is not).",
                verb="poll",
            )
    if not texts:
        raise UsageError("A poll needs a question and options, each in quotes.", verb="poll")
    question, options = texts[0], texts[1:]
    if not question:
        raise UsageError("The question cannot be empty.", verb="poll")
    check_options(options, "poll")
    mode, budget, method = _parse_mode(cmd, "poll", "single")
    features = read_features(
        cmd,
        mode=mode,
        options=len(options),
        anonymous="anonymous" in flags,
        public="public" in flags,
        closes=cmd.option("closes") is not None,
    )
    with deps.db.uow() as session:
        closes = _parse_closes(deps, session, actor, cmd, "poll")
        if features.every is not None and closes is not None:
            check_period(features.every, closes - deps.clock.now())
        poll = create(
            deps,
            session,
            actor,
            question=question,
            options=[(t, None) for t in options],
            mode=mode,
            budget=budget,
            method=method,
            features=features,
            closes=closes,
            kind="poll",
        )
        reply = poll_view(deps, session, actor, poll)
    reply.text = f"Opened P-{poll.number}: {question}"
    return reply


def cmd_prioritize(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    refs = [parse_ref(w, verb="prioritize", expect="I") for w in words]
    if len(set(refs)) != len(refs):
        raise UsageError("An item is listed twice.", verb="prioritize")
    if not MIN_OPTIONS <= len(refs) <= MAX_OPTIONS:
        raise UsageError(
            f"Prioritize {MIN_OPTIONS} to {MAX_OPTIONS} items; you gave {len(refs)}.",
            verb="prioritize",
        )
    mode, budget, method = _parse_mode(cmd, "prioritize", "ranked")
    with deps.db.uow() as session:
        items = [load(session, actor, ref) for ref in refs]
        closes = _parse_closes(deps, session, actor, cmd, "prioritize")
        question = "Prioritize: " + ", ".join(str(r) for r in refs)
        poll = create(
            deps,
            session,
            actor,
            question=question,
            options=[(f"I-{i.number} {i.title}"[:MAX_OPTION_TEXT], i.id) for i in items],
            mode=mode,
            budget=budget,
            method=method,
            features=Features(),
            closes=closes,
            kind="prioritize",
        )
        reply = poll_view(deps, session, actor, poll)
    reply.text = f"Opened P-{poll.number}: {question}"
    return reply


def create(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    *,
    question: str,
    options: list[tuple[str, int | None]],
    mode: str,
    budget: int | None,
    method: str | None,
    features: Features,
    closes: datetime | None,
    kind: str,
    series: PollSeries | None = None,
    series_index: int | None = None,
) -> Poll:
    """A new poll, audited and announced (`poll.opened`). With `features.every` it starts a
    series; a later period of a series passes its `series` and index instead."""
    now = deps.clock.now()
    poll = Poll(
        workspace=actor.workspace,
        channel=actor.channel,
        number=deps.db.next_number(session, actor.workspace, "P"),
        question=question,
        kind=kind,
        mode=mode,
        budget=budget,
        method=method,
        anonymous=features.anonymous,
        public=features.public,
        results_hidden=features.hidden,
        max_choices=features.max_choices,
        options_open=features.options_open,
        closes_at=closes,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    if features.every is not None and series is None:
        assert closes is not None  # read_features asks for closes: with every:
        series = recurrence.start(session, actor, every=features.every, opens=now, closes=closes)
        series_index = 0
    poll.series = series
    poll.series_index = series_index
    poll.options = [
        PollOption(position=i + 1, text=text, item_id=item_id)
        for i, (text, item_id) in enumerate(options)
    ]
    session.add(poll)
    session.flush()
    tallies.start(session, poll)
    after = snapshot(poll)
    audit(session, actor, now=now, action="create", kind="poll", obj=poll, after=after)
    deps.emit(
        session,
        Event(
            "poll.opened",
            actor.workspace,
            actor.channel,
            actor.platform,
            {"id": f"P-{poll.number}", **after},
        ),
    )
    return poll


def snapshot(poll: Poll) -> dict[str, Any]:
    return {
        "question": poll.question,
        "mode": poll.mode + (f":{poll.budget}" if poll.budget else ""),
        "method": poll.method,
        "anonymous": poll.anonymous,
        "public": poll.public,
        "results": "hidden" if poll.results_hidden else "live",
        "max": poll.max_choices,
        "options_open": poll.options_open,
        "every": recurrence.every_of(poll),
        "closes": poll.closes_at.isoformat() if poll.closes_at else None,
        "options": [o.text for o in poll.options],
    }


def edit(deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll, cmd: Command) -> dict[str, Any]:
    """Change a poll: its creator or an admin; anyone in the channel may add options to an
    `options:open` poll. `every:off` stops a recurring poll from any of its polls, closed ones
    too (the series is what changes)."""
    now = deps.clock.now()
    keys = set(cmd.options)
    if keys != {"every"}:
        ensure_open(session, actor, poll, now)
    if not may_manage(deps, actor, poll) and not (poll.options_open and keys == {"add"}):
        anyone = (
            f' Anyone here may add an option: `edit P-{poll.number} add:"…"`.'
            if poll.options_open
            else ""
        )
        raise Forbidden(
            f"Only {mention(poll.created_by)} or a workspace admin can edit P-{poll.number}."
            + anyone
        )
    before = snapshot(poll)
    for key, values in cmd.options.items():
        value = values[-1]
        if key in ("title", "text"):
            if not value.strip():
                raise UsageError("The question cannot be empty.", verb="edit")
            poll.question = value.strip()
        elif key == "closes":
            if value.lower() in ("none", "-", "never"):
                poll.closes_at = None
            else:
                moment = parse_when(value, now=now, tz=channel_tz(session, actor), verb="edit")
                if moment <= now:
                    raise UsageError("The closing time must be in the future.", verb="edit")
                poll.closes_at = moment
        elif key == "add":
            if poll.kind == "prioritize":
                raise UsageError("Add items to a prioritization by opening a new one.", verb="edit")
            texts = [o.text for o in poll.options] + [v.strip() for v in values]
            check_options(texts, "edit")
            for text in values:
                poll.options.append(PollOption(position=len(poll.options) + 1, text=text.strip()))
            tallies.options_added(session, poll)
        elif key == "every":
            recurrence.stop(session, actor, poll, value, now=now)
        else:
            raise UsageError(
                f"A poll has no `{key}` to edit; use title, closes, add or every:off.", verb="edit"
            )
    return before
