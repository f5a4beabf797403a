"""Polls and prioritization votes: open, vote (changeable until close), results, close, nudge.

Anonymous polls store each ballot under a keyed hash of (poll, person) — one ballot per voter so
a vote can be changed, yet no stored value names the voter. Who has voted is kept apart, in
`participation`, so non-voters can still be reminded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import text as sql

from bot import decisions, tally
from bot.common import audit, channel_tz, history_view, load, when
from bot.context import Actor, Deps, Event
from bot.errors import Conflict, Forbidden, UsageError
from bot.parser import Command, Ref, Token, parse_ref
from bot.timeparse import parse_when
from bot.views import (
    Actions,
    BarRow,
    Bars,
    Button,
    Context,
    Form,
    FormField,
    Heading,
    Line,
    ListBlock,
    Pre,
    Reply,
    Section,
    mention,
)
from storage.db import UnitOfWork, dialect_insert, upsert
from storage.models import Ballot, Decision, Item, Member, Participation, Poll, PollOption

MODES = ("single", "multi", "ranked", "dots")
METHODS = ("schulze", "borda", "irv")
MIN_OPTIONS, MAX_OPTIONS = 2, 25
MAX_OPTION_TEXT = 150
MAX_BUDGET = 1000
ANONYMOUS_LOCK_SPACE = 0x416C6E  # an advisory-lock namespace of our own


# ---------------------------------------------------------------- creating


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


def _check_options(texts: list[str], verb: str) -> None:
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


def cmd_poll(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    anonymous = False
    texts: list[str] = []
    for token in cmd.args:
        if not token.quoted and token.text.lower() == "anonymous":
            anonymous = True
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
    _check_options(options, "poll")
    mode, budget, method = _parse_mode(cmd, "poll", "single")
    with deps.db.uow() as session:
        closes = _parse_closes(deps, session, actor, cmd, "poll")
        poll = _create(
            deps,
            session,
            actor,
            question=question,
            options=[(t, None) for t in options],
            mode=mode,
            budget=budget,
            method=method,
            anonymous=anonymous,
            closes=closes,
            kind="poll",
        )
        reply = poll_view(deps, session, actor, poll)
    reply.text = f"Opened P-{poll.number}: {question}"
    reply.data["opened"] = True  # adapters: a new poll, no earlier postings to refresh
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
        poll = _create(
            deps,
            session,
            actor,
            question=question,
            options=[(f"I-{i.number} {i.title}"[:MAX_OPTION_TEXT], i.id) for i in items],
            mode=mode,
            budget=budget,
            method=method,
            anonymous=False,
            closes=closes,
            kind="prioritize",
        )
        reply = poll_view(deps, session, actor, poll)
    reply.text = f"Opened P-{poll.number}: {question}"
    reply.data["opened"] = True  # adapters: a new poll, no earlier postings to refresh
    return reply


def _create(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    *,
    question: str,
    options: list[tuple[str, int | None]],
    mode: str,
    budget: int | None,
    method: str | None,
    anonymous: bool,
    closes: datetime | None,
    kind: str,
) -> Poll:
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
        anonymous=anonymous,
        closes_at=closes,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    poll.options = [
        PollOption(position=i + 1, text=text, item_id=item_id)
        for i, (text, item_id) in enumerate(options)
    ]
    session.add(poll)
    session.flush()
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
        "closes": poll.closes_at.isoformat() if poll.closes_at else None,
        "options": [o.text for o in poll.options],
    }


# ---------------------------------------------------------------- state


def closed_on(poll: Poll, now: datetime) -> datetime | None:
    """When the poll closed, if it has: closed explicitly, or its closing time has passed."""
    if poll.closed_at is not None:
        return poll.closed_at
    if poll.closes_at is not None and poll.closes_at <= now:
        return poll.closes_at
    return None


def _ensure_open(session: UnitOfWork, actor: Actor, poll: Poll, now: datetime) -> None:
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


# ---------------------------------------------------------------- voting


def _option_index(poll: Poll, text: str, verb: str = "vote") -> int:
    """0-based option from a 1-based number or the option's text (case-insensitive)."""
    stripped = text.strip()
    if stripped.isdigit():
        number = int(stripped)
        if not 1 <= number <= len(poll.options):
            raise UsageError(f"P-{poll.number} has options 1 to {len(poll.options)}.", verb=verb)
        return number - 1
    lowered = stripped.lower()
    for index, option in enumerate(poll.options):
        if option.text.lower() == lowered:
            return index
    prefixed = [i for i, o in enumerate(poll.options) if o.text.lower().startswith(lowered)]
    if len(prefixed) == 1 and lowered:
        return prefixed[0]
    raise UsageError(
        f"P-{poll.number} has no option “{stripped[:60]}”; use its number 1–{len(poll.options)}.",
        verb=verb,
    )


def _choice_texts(poll: Poll, tokens: Sequence[Token]) -> list[str]:
    """Choices as typed: quoted texts, numbers and `x=n` stand alone; a run of bare words is one
    option's text when it names one (`vote P-1 Ship it`), else one choice per word."""
    out: list[str] = []
    words: list[str] = []

    def flush() -> None:
        if not words:
            return
        joined = " ".join(words)
        names = {o.text.lower() for o in poll.options}
        out.extend([joined] if len(words) == 1 or joined.lower() in names else words)
        words.clear()

    for token in tokens:
        if token.quoted or token.text.isdigit() or "=" in token.text or token.text[:1] in "+-~":
            flush()
            out.append(token.text)
        else:
            words.append(token.text)
    flush()
    return out


def parse_ballot(
    poll: Poll, tokens: Sequence[Token], current: Callable[[], Any] | None = None
) -> Any:
    """The stored form of a ballot: single [i]; multi sorted [i…]; ranked [i…] in order;
    dots [[i, points]…]. Refuses anything the mode does not allow, with the reason.

    `current` reads the voter's stored ballot; it is called only when toggles (`+2 -1 ~3`)
    need it, so a plain vote never reads back anyone's earlier choice."""
    if not tokens:
        raise UsageError(f"Give your choice for P-{poll.number}.", verb="vote")
    choices = _choice_texts(poll, tokens)
    if poll.mode == "single":
        if len(choices) != 1:
            raise UsageError(f"P-{poll.number} takes one choice.", verb="vote")
        return [_option_index(poll, choices[0])]
    if poll.mode == "multi":
        toggles = any(c[:1] in "+-~" and c[1:].strip() for c in choices)
        picked = set((current() if toggles and current else None) or [])
        plain: set[int] = set()
        for choice in choices:
            if choice[:1] in "+-~" and choice[1:].strip():
                index = _option_index(poll, choice[1:])
                if choice[0] == "+":
                    picked.add(index)
                elif choice[0] == "-":
                    picked.discard(index)
                else:
                    picked ^= {index}
            else:
                index = _option_index(poll, choice)
                if index in plain:
                    raise UsageError(f"Option {index + 1} is picked twice.", verb="vote")
                plain.add(index)
        result = sorted(picked | plain) if toggles else sorted(plain)
        if not result:
            raise UsageError(
                "That leaves your ballot empty; pick at least one option.", verb="vote"
            )
        return result
    if poll.mode == "ranked":
        order: list[int] = []
        for choice in choices:
            index = _option_index(poll, choice)
            if index in order:
                raise UsageError(f"Option {index + 1} is ranked twice.", verb="vote")
            order.append(index)
        return order
    # dots
    spread: dict[int, int] = {}
    for choice in choices:
        left, sep, right = choice.partition("=")
        if not sep or not right.strip().isdigit():
            raise UsageError("Spread your points as option=points, like 1=3 2=2.", verb="vote")
        index = _option_index(poll, left)
        if index in spread:
            raise UsageError(f"Option {index + 1} is given points twice.", verb="vote")
        spread[index] = int(right)
    total = sum(spread.values())
    if total > (poll.budget or 0):
        raise UsageError(
            f"That is {total} points; P-{poll.number} allows at most {poll.budget}.", verb="vote"
        )
    if total == 0:
        raise UsageError("Give at least one point.", verb="vote")
    return [[i, p] for i, p in sorted(spread.items()) if p > 0]


def cmd_vote(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    if not cmd.args:
        raise UsageError("Which poll?", verb="vote")
    ref = parse_ref(cmd.args[0].text, verb="vote", expect="P")
    return record_vote(deps, actor, ref, cmd.args[1:])


def record_vote(deps: Deps, actor: Actor, ref: Ref, tokens: Sequence[Token]) -> Reply:
    with deps.db.uow() as session:
        now = deps.clock.now()
        # Share-locked: voters run side by side, while `close` and `edit` (FOR UPDATE) wait for
        # them and they for it — so a vote is either in the frozen tally or sees the poll closed.
        poll = load(session, actor, ref, shared=True)
        _ensure_open(session, actor, poll, now)
        if poll.anonymous and deps.db.dialect == "postgresql":
            # Anonymous votes rewrite all the poll's ballots (`_scatter_ballots`): one at a time
            # per poll, or two rewrites would deadlock on each other's rows.
            session.execute(
                sql("SELECT pg_advisory_xact_lock(:space, :poll)"),
                {"space": ANONYMOUS_LOCK_SPACE, "poll": poll.id},
            )
        key = voter_key(deps, poll, actor.user)
        mine = (Ballot.poll_id == poll.id, Ballot.voter_key == key)
        # A count, not the ballot's id: nothing a log shows here identifies the ballot.
        changed = bool(
            session.execute(select(func.count()).select_from(Ballot).where(*mine)).scalar_one()
        )

        def current() -> Any:
            if poll.anonymous:
                return _read_unlogged_choice(session, deps.db.dialect, poll.id, key)
            return session.execute(select(Ballot.choice).where(*mine)).scalar_one_or_none()

        choice = parse_ballot(poll, tokens, current)
        # One statement, so two concurrent votes of one person leave one ballot.
        ballots = Ballot.__table__
        session.execute(
            dialect_insert(deps.db.dialect)(ballots)
            .values(id=uuid.uuid4().hex, poll_id=poll.id, voter_key=key, choice=choice)
            .on_conflict_do_update(
                index_elements=[ballots.c.poll_id, ballots.c.voter_key], set_={"choice": choice}
            )
        )
        if poll.anonymous and deps.db.dialect == "sqlite":
            # SQLite's hidden rowid counts up in insertion order, just as participation and the
            # audit trail do; a random one leaves nothing to line ballots up with voters by.
            session.execute(
                sql("UPDATE ballots SET rowid = :rowid WHERE poll_id = :poll AND voter_key = :key"),
                {"rowid": secrets.randbits(62), "poll": poll.id, "key": key},
            )
        if poll.anonymous and deps.db.dialect == "postgresql":
            _scatter_ballots(session, poll.id)
        upsert(session, Participation, {"poll_id": poll.id, "user": actor.user}, {"voted_at": now})
        audit(
            session,
            actor,
            now=now,
            action="vote",
            kind="poll",
            obj=poll,
            after=None if poll.anonymous else {"choice": describe_ballot(poll, choice)},
        )
        reply = poll_view(deps, session, actor, poll)
    verb = "Changed" if changed else "Recorded"
    if poll.anonymous:
        # The choice stays out of the reply, so no surface or log shows it beside the voter.
        reply.text = f"{verb} your vote on P-{poll.number}: your vote is secret"
        reply.ephemeral = True
    else:
        reply.text = f"{verb} your vote on P-{poll.number}: {describe_ballot(poll, choice)}"
        reply.data["voted"] = describe_ballot(poll, choice)
    reply.data["vote"] = {"changed": changed}
    reply.blocks.insert(0, Context(f"✓ {reply.text}"))
    return reply


def _scatter_ballots(session: UnitOfWork, poll_id: int) -> None:
    """Rewrite an anonymous poll's ballots in random order, in one statement.

    PostgreSQL stamps each row with the transaction that wrote it (`xmin`) and places it
    physically in write order (`ctid`); both would line the changed ballot up with this vote's
    participation and audit rows. Rewritten together, every ballot carries the same
    transaction and a shuffled position, so neither says which ballot is whose."""
    session.execute(
        sql(
            "WITH moved AS (DELETE FROM ballots WHERE poll_id = :poll "
            "RETURNING id, poll_id, voter_key, choice) "
            "INSERT INTO ballots (id, poll_id, voter_key, choice) "
            "SELECT id, poll_id, voter_key, choice FROM moved ORDER BY random()"
        ),
        {"poll": poll_id},
    )


def _read_unlogged_choice(session: UnitOfWork, dialect: str, poll_id: int, key: str) -> Any:
    """An anonymous voter's stored ballot, read on the transaction's own DBAPI cursor.

    SQLAlchemy's debug log (`echo="debug"`) prints every row it fetches, and this row, read
    in the voter's own request, would sit in the log beside their user id. Only multi-choice
    toggles (`vote P-3 ~2`) need it."""
    mark = "?" if dialect == "sqlite" else "%s"
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            f"SELECT choice FROM ballots WHERE poll_id = {mark} AND voter_key = {mark}",
            (poll_id, key),
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    return json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]


def describe_ballot(poll: Poll, choice: Any) -> str:
    texts = [o.text for o in poll.options]
    if poll.mode == "dots":
        return ", ".join(f"{texts[i]} {p}" for i, p in choice)
    if poll.mode == "ranked":
        return " > ".join(texts[i] for i in choice)
    return ", ".join(texts[i] for i in choice)


# ---------------------------------------------------------------- tallying


def count(poll: Poll, choices: Sequence[Any]) -> tally.Tally:
    n = len(poll.options)
    if poll.mode == "single":
        return tally.plurality(n, [c[0] for c in choices])
    if poll.mode == "multi":
        return tally.approval(n, [c for c in choices])
    if poll.mode == "dots":
        return tally.points(n, [{i: p for i, p in c} for c in choices])
    return tally.ranked(poll.method or "schulze", n, [tuple(c) for c in choices])


def eligible(deps: Deps, session: UnitOfWork, poll: Poll, voters: set[str]) -> list[str]:
    """Who could vote: the platform's channel roster when known, else people seen here, plus
    anyone who voted (a voter is always eligible)."""
    members = deps.directory.members(poll.workspace, poll.channel) if deps.directory else None
    if members is None:
        members = list(
            session.execute(
                select(Member.user).where(
                    Member.workspace == poll.workspace, Member.channel == poll.channel
                )
            ).scalars()
        )
    return sorted(set(members) | voters)


def results(deps: Deps, session: UnitOfWork, poll: Poll) -> dict[str, Any]:
    """The tally as the JSON contract has it, plus participation."""
    choices = list(
        session.execute(select(Ballot.choice).where(Ballot.poll_id == poll.id)).scalars()
    )
    result = count(poll, choices)
    voters = set(
        session.execute(
            select(Participation.user).where(Participation.poll_id == poll.id)
        ).scalars()
    )
    people = eligible(deps, session, poll, voters)
    texts = [o.text for o in poll.options]
    out: dict[str, Any] = {
        "id": f"P-{poll.number}",
        "question": poll.question,
        "mode": poll.mode + (f":{poll.budget}" if poll.budget else ""),
        "method": result.method,
        "winner": texts[result.winner] if result.winner is not None else None,
        "tied": [texts[i] for i in result.tied],
        "ranking": [texts[i] for tier in result.ranking for i in tier],
        "tiers": [[texts[i] for i in tier] for tier in result.ranking],
        "ballots": result.ballots,
        "participation": {"voted": len(voters), "eligible": len(people)},
    }
    if not poll.anonymous:
        out["participation"]["not_voted"] = [p for p in people if p not in voters]
    key = "counts" if poll.mode in ("single", "multi") else "scores"
    out[key] = {texts[i]: _num(result.scores[i]) for i in range(len(texts))}
    if result.pairwise is not None:
        out["pairwise"] = result.pairwise
    if result.strongest is not None:
        out["strongest_paths"] = result.strongest
    if poll.mode == "ranked":
        out["condorcet_winner"] = (
            texts[result.condorcet_winner] if result.condorcet_winner is not None else None
        )
    if result.rounds:
        out["rounds"] = [
            {
                "counts": {texts[i]: _num(c) for i, c in r.counts.items()},
                "eliminated": [texts[i] for i in r.eliminated],
            }
            for r in result.rounds
        ]
    return out


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def _result_blocks(
    poll: Poll, res: dict[str, Any], tz: str, now: datetime, *, full: bool
) -> list[Any]:
    texts = [o.text for o in poll.options]
    values = res.get("counts") or res.get("scores") or {}
    top = max([abs(v) for v in values.values()] + [1])
    rows = tuple(
        BarRow(
            f"{i + 1}. {text}",
            str(values.get(text, 0)),
            abs(values.get(text, 0)) / top,
            "★" if res["winner"] == text else "",
        )
        for i, text in enumerate(texts)
    )
    blocks: list[Any] = [Bars(rows)]
    if res["ballots"] == 0:
        outcome = "No votes yet."
    elif res["winner"] is not None:
        closed = closed_on(poll, now) is not None
        outcome = f"{'Winner' if closed else 'Leading'}: {res['winner']}"
    else:
        outcome = "Tie between " + " and ".join(res["tied"])
    if poll.mode == "ranked" and res["ballots"]:
        outcome += " · Order: " + " > ".join(" = ".join(t) for t in res["tiers"])
    part = res["participation"]
    people = f"{part['voted']} of {part['eligible']} voted"
    if part.get("not_voted"):
        shown = part["not_voted"][:15]
        people += " · not yet: " + ", ".join(mention(u) for u in shown)
        if len(part["not_voted"]) > len(shown):
            people += f" and {len(part['not_voted']) - len(shown)} more"
    blocks.append(Section(outcome))
    blocks.append(Context(people))
    if full and res.get("pairwise") is not None:
        blocks.append(Pre(_matrix(res["pairwise"], "Pairwise (row preferred over column)")))
        if res.get("strongest_paths") is not None:
            blocks.append(Pre(_matrix(res["strongest_paths"], "Strongest paths")))
        blocks.append(Context("Condorcet winner: " + (res.get("condorcet_winner") or "none")))
    if full and res.get("rounds"):
        blocks.append(
            ListBlock(
                tuple(
                    Line(
                        f"Round {n + 1}",
                        ", ".join(f"{k} {v}" for k, v in r["counts"].items()),
                        ("out: " + ", ".join(r["eliminated"])) if r["eliminated"] else "",
                    )
                    for n, r in enumerate(res["rounds"])
                ),
                title="Instant-runoff rounds",
            )
        )
    return blocks


def _matrix(matrix: list[list[int]], title: str) -> str:
    n = len(matrix)
    width = max(3, *(len(str(v)) for row in matrix for v in row))
    head = " " * 4 + "".join(f"{j + 1:>{width + 1}}" for j in range(n))
    lines = [title, head]
    for i, row in enumerate(matrix):
        cells = "".join(f"{'—' if i == j else v:>{width + 1}}" for j, v in enumerate(row))
        lines.append(f"{i + 1:>3} {cells}")
    return "\n".join(lines)


def poll_header(poll: Poll, tz: str, now: datetime) -> str:
    mode = {
        "single": "one choice",
        "multi": "any number of choices",
        "ranked": f"ranked ({poll.method})",
        "dots": f"{poll.budget} points to spread",
    }
    parts = [mode[poll.mode]]
    if poll.anonymous:
        parts.append("anonymous")
    closed = closed_on(poll, now)
    if closed:
        parts.append(f"closed {when(closed, tz)}")
    elif poll.closes_at:
        parts.append(f"closes {when(poll.closes_at, tz)}")
    parts.append(f"by {mention(poll.created_by)}")
    return " · ".join(parts)


def poll_view(
    deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll, *, full: bool = False
) -> Reply:
    """The poll as a message: question, live tally, and the ways to vote."""
    tz = channel_tz(session, actor)
    now = deps.clock.now()
    ref = f"P-{poll.number}"
    res = poll.result if poll.closed_at and poll.result else results(deps, session, poll)
    blocks: list[Any] = [Heading(f"{ref} · {poll.question}"), Context(poll_header(poll, tz, now))]
    blocks += _result_blocks(poll, res, tz, now, full=full)
    if closed_on(poll, now) is None:
        blocks.append(_ballot_ui(poll))
    elif poll.decision_id:
        decision = session.get(Decision, poll.decision_id)
        if decision:
            blocks.append(Context(f"Links: decided as D-{decision.number}"))
            res = res | {"decision": f"D-{decision.number}"}
    data = dict(res)
    data["closed"] = closed_on(poll, now) is not None
    data["options"] = [o.text for o in poll.options]
    if full:
        history_blocks, data["history"] = history_view(session, "poll", poll.id, tz, hide=("vote",))
        blocks += history_blocks
    return Reply(
        ok=True, kind="poll", text=f"{ref}: {poll.question}", blocks=blocks, data=data, poll=ref
    )


def _ballot_ui(poll: Poll) -> Any:
    ref = f"P-{poll.number}"
    if poll.mode in ("single", "multi"):
        prefix = "~" if poll.mode == "multi" else ""
        return Actions(
            tuple(Button(o.text, f"vote {ref} {prefix}{o.position}") for o in poll.options)
        )
    choices = tuple((str(o.position), o.text) for o in poll.options)
    if poll.mode == "ranked":
        fields = tuple(
            FormField(f"rank{i + 1}", f"Choice {i + 1}", "choice", choices, required=i == 0)
            for i in range(len(poll.options))
        )
        return Form(ref, "ranked", f"Rank the options of {ref}", fields)
    fields = tuple(
        FormField(f"option{o.position}", o.text, "number", maximum=poll.budget)
        for o in poll.options
    )
    return Form(ref, "dots", f"Spread up to {poll.budget} points", fields, budget=poll.budget)


def form_tokens(form_mode: str, values: dict[str, str | None]) -> list[Token]:
    """Turn a submitted ballot form into the tokens of `vote`: rank1..rankN in order, or
    optionN=points — so a form and a typed vote are one path."""
    tokens: list[Token] = []
    if form_mode == "ranked":
        ranks = sorted(
            (int(k[4:]), v)
            for k, v in values.items()
            if k.startswith("rank") and k[4:].isdigit() and v
        )
        tokens = [Token(str(v)) for _, v in ranks]
    else:
        for key, value in sorted(values.items()):
            if key.startswith("option") and key[6:].isdigit() and value not in (None, ""):
                tokens.append(Token(f"{key[6:]}={str(value).strip()}"))
    return tokens


# ---------------------------------------------------------------- results, close, nudge


def cmd_results(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1:
        raise UsageError("Which poll?", verb="results")
    ref = parse_ref(words[0], verb="results", expect="P")
    with deps.db.uow() as session:
        poll = load(session, actor, ref)
        reply = poll_view(deps, session, actor, poll)
    reply.kind = "results"
    reply.blocks = [b for b in reply.blocks if not isinstance(b, Actions | Form)]
    return reply


def close(
    deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll, *, record: bool
) -> dict[str, Any]:
    """Close a poll: freeze its result, feed prioritization, optionally record a decision.
    Used by `close` and by the scheduler at `closes:` time."""
    now = deps.clock.now()
    res = results(deps, session, poll)
    poll.closed_at = min(now, poll.closes_at) if poll.closes_at else now
    poll.closed_by = actor.user
    poll.updated_at = now
    if poll.kind == "prioritize":
        _apply_priorities(session, poll, res)
    after: dict[str, Any] = {"winner": res["winner"], "ranking": res["ranking"]}
    if record:
        winner = res["winner"] or ("tie: " + " / ".join(res["tied"]) if res["tied"] else "no votes")
        decision = decisions.create(
            deps,
            session,
            actor,
            title=f"{poll.question} → {winner}",
            rationale=(
                f"Result of P-{poll.number} ({res['method']}): "
                + " > ".join(res["ranking"])
                + f"; {res['participation']['voted']} of "
                f"{res['participation']['eligible']} voted."
            ),
            poll_id=poll.id,
            frozen_tally=dict(res),
        )
        poll.decision_id = decision.id
        after["decision"] = f"D-{decision.number}"
        res["decision"] = f"D-{decision.number}"
    # Assigned once complete: JSON columns do not track changes made to a dict after assignment.
    poll.result = dict(res)
    audit(session, actor, now=now, action="close", kind="poll", obj=poll, after=after)
    deps.emit(
        session,
        Event(
            "poll.closed",
            poll.workspace,
            poll.channel,
            actor.platform,
            {
                "id": f"P-{poll.number}",
                "question": poll.question,
                "winner": res["winner"],
                "ranking": res["ranking"],
            },
        ),
    )
    return res


def _apply_priorities(session: UnitOfWork, poll: Poll, res: dict[str, Any]) -> None:
    position = {o.text: o for o in poll.options}
    rank = 1
    for tier in res["tiers"]:
        for text in tier:
            option = position[text]
            if option.item_id is None:
                continue
            item = session.get(Item, option.item_id)
            if item is not None:
                item.vote_rank = rank
                item.vote_poll_id = poll.id
                scores = res.get("scores") or res.get("counts") or {}
                item.vote_score = float(scores.get(text, 0))
        rank += len(tier)


def cmd_close(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    record = len(words) == 2 and words[1].lower() == "decide"
    if not words or len(words) > 2 or (len(words) == 2 and not record):
        raise UsageError("Give a poll id, optionally followed by decide.", verb="close")
    ref = parse_ref(words[0], verb="close", expect="P")
    with deps.db.uow() as session:
        poll = load(session, actor, ref, for_update=True)
        if poll.closed_at is not None:
            raise Conflict(f"{ref} closed on {when(poll.closed_at, channel_tz(session, actor))}.")
        if not may_manage(deps, actor, poll):
            raise Forbidden(
                f"Only {mention(poll.created_by)} or a workspace admin can close {ref}."
            )
        res = close(deps, session, actor, poll, record=record)
        reply = poll_view(deps, session, actor, poll)
    reply.kind = "results"
    winner = res["winner"] or ("a tie" if res["tied"] else "no votes")
    reply.text = f"Closed {ref}: {winner}" + (
        f" · recorded {res['decision']}" if "decision" in res else ""
    )
    if "decision" in res:
        reply.data["decision"] = res["decision"]
    reply.blocks.insert(0, Context(f"✓ {reply.text}"))
    return reply


def close_due(deps: Deps, session: UnitOfWork, now: datetime) -> list[Poll]:
    """Polls whose closing time has passed and that nobody has closed yet (for the scheduler)."""
    return list(
        session.execute(
            select(Poll)
            .where(Poll.closed_at.is_(None), Poll.closes_at.is_not(None), Poll.closes_at <= now)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def non_voters(deps: Deps, session: UnitOfWork, poll: Poll) -> list[str]:
    voters = set(
        session.execute(
            select(Participation.user).where(Participation.poll_id == poll.id)
        ).scalars()
    )
    return [p for p in eligible(deps, session, poll, voters) if p not in voters]


def view_full(deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll) -> Reply:
    return poll_view(deps, session, actor, poll, full=True)


def edit(deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll, cmd: Command) -> dict[str, Any]:
    now = deps.clock.now()
    _ensure_open(session, actor, poll, now)
    if not may_manage(deps, actor, poll):
        raise Forbidden(
            f"Only {mention(poll.created_by)} or a workspace admin can edit P-{poll.number}."
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
            _check_options(texts, "edit")
            for text in values:
                poll.options.append(PollOption(position=len(poll.options) + 1, text=text.strip()))
        else:
            raise UsageError(
                f"A poll has no `{key}` to edit; use title, closes or add.", verb="edit"
            )
    return before
