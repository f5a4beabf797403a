"""Recording votes: a typed `vote`, a clicked button or a submitted form all become one ballot
per person per poll (the last one counts), checked against the poll's mode.

Anonymous polls store each ballot under a keyed hash of (poll, person) — one ballot per voter so a
vote can be changed, yet no stored value names the voter; who has voted is kept apart, in
`participation`. Their ballots wait, sealed, and are counted in batches of five or more
(`bot/polls/batches.py`); how the rows are written so that their storage links nobody is
`storage.ballots`' business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.common import audit
from bot.context import Actor, Deps
from bot.effects import Changed
from bot.errors import BallotError, UsageError
from bot.parser import Command, Ref, Token, join_text, parse_ref, split_pipe
from bot.polls import batches, tallies
from bot.polls.rules import (
    MAX_REASON,
    REASON_FIELD,
    Votable,
    ensure_open,
    read_for_vote,
    voter_key,
)
from bot.polls.voters import describe as describe_ballot
from bot.views import Context, Reply, counted
from storage import ballots
from storage.db import PreparedUpsert
from storage.models import Participation


def _option_index(poll: Votable, text: str, at: int = 0) -> int:
    """0-based option from a 1-based number or the option's text (case-insensitive)."""
    stripped = text.strip()
    if stripped.isdigit():
        number = int(stripped)
        if not 1 <= number <= len(poll.options):
            raise BallotError(f"P-{poll.number} has options 1 to {len(poll.options)}.", at=(at,))
        return number - 1
    lowered = stripped.lower()
    for index, option in enumerate(poll.options):
        if option.text.lower() == lowered:
            return index
    prefixed = [i for i, o in enumerate(poll.options) if o.text.lower().startswith(lowered)]
    if len(prefixed) == 1 and lowered:
        return prefixed[0]
    raise BallotError(
        f"P-{poll.number} has no option “{stripped[:60]}”; use its number 1–{len(poll.options)}.",
        at=(at,),
    )


def _choice_texts(poll: Votable, tokens: Sequence[Token]) -> list[str]:
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
    poll: Votable, tokens: Sequence[Token], current: Callable[[], Any] | None = None
) -> Any:
    """The stored form of a ballot: single [i]; multi sorted [i…]; ranked [i…] in order;
    dots [[i, points]…]. Refuses anything the mode does not allow, with the reason and the
    positions of the choices at fault (`BallotError.at`), so a form can point at its inputs.

    `current` gives the voter's stored ballot; it is called only when toggles (`+2 -1 ~3`)
    need it, and then the reason given before is kept (see `record_vote`)."""
    if not tokens:
        raise BallotError(f"Give your choice for P-{poll.number}.")
    choices = _choice_texts(poll, tokens)
    if poll.mode == "single":
        if len(choices) != 1:
            raise BallotError(
                f"P-{poll.number} takes one choice.", at=tuple(range(1, len(choices)))
            )
        return [_option_index(poll, choices[0])]
    if poll.mode == "multi":
        toggles = any(c[:1] in "+-~" and c[1:].strip() for c in choices)
        picked = set((current() if toggles and current else None) or [])
        plain: set[int] = set()
        for at, choice in enumerate(choices):
            if choice[:1] in "+-~" and choice[1:].strip():
                index = _option_index(poll, choice[1:], at)
                if choice[0] == "+":
                    picked.add(index)
                elif choice[0] == "-":
                    picked.discard(index)
                else:
                    picked ^= {index}
            else:
                index = _option_index(poll, choice, at)
                if index in plain:
                    raise BallotError(f"Option {index + 1} is picked twice.", at=(at,))
                plain.add(index)
        result = sorted(picked | plain) if toggles else sorted(plain)
        if not result:
            raise BallotError("That leaves your ballot empty; pick at least one option.")
        _within_cap(poll, result, choices, toggles)
        return result
    if poll.mode == "ranked":
        order: list[int] = []
        for at, choice in enumerate(choices):
            index = _option_index(poll, choice, at)
            if index in order:
                raise BallotError(f"Option {index + 1} is ranked twice.", at=(at,))
            order.append(index)
        return order
    # dots
    spread: dict[int, int] = {}
    given: dict[int, int] = {}  # option -> position of its choice
    for at, choice in enumerate(choices):
        left, sep, right = choice.partition("=")
        if not sep:
            raise BallotError("Spread your points as option=points, like 1=3 2=2.", at=(at,))
        index = _option_index(poll, left, at)
        if not right.strip().isdigit():
            raise BallotError("Points are a whole number, 0 or more (like 1=3).", at=(at,))
        if index in spread:
            raise BallotError(f"Option {index + 1} is given points twice.", at=(at,))
        spread[index], given[index] = int(right), at
    total = sum(spread.values())
    if total > (poll.budget or 0):
        raise BallotError(
            f"That is {total} points; P-{poll.number} allows at most {poll.budget}.",
            at=tuple(sorted(given[i] for i, p in spread.items() if p > 0)),
        )
    if total == 0:
        raise BallotError("Give at least one point.", at=tuple(sorted(given.values())))
    return [[i, p] for i, p in sorted(spread.items()) if p > 0]


def _within_cap(poll: Votable, result: list[int], choices: list[str], toggles: bool) -> None:
    """A multi poll's `max:N`, one check for a typed line, a clicked button and a form."""
    cap = poll.max_choices
    if cap is None or len(result) <= cap:
        return
    ref, most = f"P-{poll.number}", counted(cap, "choice")
    if toggles:
        picked = ", ".join(poll.options[i].text for i in result)
        raise BallotError(
            f"{ref} allows at most {most}; that would make {len(result)} ({picked}). "
            "Unpick one first: click it again, or type `vote "
            f"{ref} -<number>`.",
            at=tuple(range(len(choices))),
        )
    raise BallotError(
        f"{ref} allows at most {most}; you picked {len(result)}.",
        at=tuple(range(cap, len(choices))),
    )


def reason_of(tokens: Sequence[Token]) -> tuple[list[Token], str | None]:
    """The choices, and the reason typed after `|` (None without one)."""
    choices, after = split_pipe(list(tokens))
    if after is None:
        return choices, None
    reason = join_text(after)
    if not reason:
        raise BallotError("Write your reason after |, like `vote P-4 2 | it ships sooner`.")
    if len(reason) > MAX_REASON:
        raise BallotError(f"Keep a reason under {MAX_REASON} characters.")
    return choices, reason


def cmd_vote(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    if not cmd.args:
        raise UsageError("Which poll?", verb="vote")
    ref = parse_ref(cmd.args[0].text, verb="vote", expect="P")
    tokens, reason = reason_of(cmd.args[1:])
    return record_vote(deps, actor, ref, tokens, reason=reason)


_VOTED = PreparedUpsert(Participation, ("poll_id", "user"), ("voted_at",))


class _BuildsOn(Exception):
    """`parse_ballot` asked for the voter's current ballot: the new one builds on it."""


def _builds_on() -> Any:
    raise _BuildsOn


def record_vote(
    deps: Deps, actor: Actor, ref: Ref, tokens: Sequence[Token], *, reason: str | None = None
) -> Reply:
    """Record the actor's ballot (the last one counts). A new ballot replaces the reason too; a
    toggle (`~2`, a multi button) keeps the one given before unless it brings its own."""
    with deps.db.uow() as session:
        now = deps.clock.now()
        # Share-locked: voters run side by side, while `close` and `edit` (FOR UPDATE) wait for
        # them and they for it — so a vote is either in the frozen tally or sees the poll closed.
        poll = read_for_vote(session, actor, ref)
        ensure_open(session, actor, poll, now)
        # The voter's participation row, written first, is the lock their ballot changes under:
        # a second vote of the same person (`~1` and `~2` clicked at once, on any replica) waits
        # here until the first commits, then reads the ballot it left — so a toggle builds on
        # the other instead of both starting from the old ballot and one being lost. (SQLite's
        # BEGIN IMMEDIATE serialises writers anyway; this matters on PostgreSQL.)
        _VOTED.run(session, {"poll_id": poll.id, "user": actor.user}, {"voted_at": now})
        read_back = False
        if poll.anonymous:
            # Kept pending, sealed, until a batch of them is counted (bot/polls/batches.py),
            # which is when the running tally moves.
            try:
                choice = parse_ballot(poll, tokens, _builds_on)
            except _BuildsOn:
                # A toggle: read the ballot it builds on first, then hold the new one.
                mine = batches.own(deps, session, poll, actor.user)
                choice = parse_ballot(poll, tokens, lambda: mine[0] if mine else None)
                kept = mine[1] if mine and reason is None else reason
                batches.hold(deps, session, poll, actor.user, choice, kept)
            else:
                # Any other ballot is held, and what it replaces read, in one go.
                mine = batches.replace(deps, session, poll, actor.user, choice, reason)
            changed = mine is not None
        else:
            key = voter_key(deps, poll, actor.user)
            # The ballot it replaces: the tally moves by the difference, and a toggle builds on
            # it.
            old = ballots.read_choice(session, poll.id, key)
            changed = old is not None

            def current() -> Any:
                nonlocal read_back
                read_back = True
                return old

            choice = parse_ballot(poll, tokens, current)
            ballots.write(
                session,
                poll.id,
                key,
                choice,
                reason=reason,
                keep_reason=read_back and reason is None,
            )
            tallies.apply_change(session, poll, old, choice)
        if not poll.anonymous:
            # An anonymous vote writes no audit row: it could say only who voted when, which
            # the participation row above says already (no surface shows a poll's votes:
            # `show` hides them, the digest skips them), and it cost three more pages (the row
            # and two indexes) through the WAL and the checkpoint after each batch.
            audit(
                session,
                actor,
                now=now,
                action="vote",
                kind="poll",
                obj=poll,
                after={"choice": describe_ballot(poll, choice)}
                | ({"reason": reason} if reason else {}),
            )
    # A receipt only: the live message shows the new tally (refreshed, coalesced, from the
    # `Changed` effect), so a click costs no count, no participation list, no reasons read.
    poll_ref = f"P-{poll.number}"
    reply = Reply(ok=True, kind="poll", text="", data={"id": poll_ref})
    verb = "Changed" if changed else "Recorded"
    if poll.anonymous:
        # The choice and reason stay out of the reply, so no surface or log shows them beside
        # the voter.
        reply.text = f"{verb} your vote on P-{poll.number}: your vote is secret"
        reply.ephemeral = True
    else:
        reply.text = f"{verb} your vote on P-{poll.number}: {describe_ballot(poll, choice)}"
        reply.data["voted"] = describe_ballot(poll, choice)
        if reason:
            reply.text += f" | {reason}"
            reply.data["reason"] = reason
    if poll.results_hidden:
        reply.text += " · results are hidden until the poll closes"
    # The live message shows the new tally; this reply only acknowledges the vote.
    reply.receipt = True
    reply.effects = (Changed(poll_ref, "vote"),)
    reply.blocks.insert(0, Context(f"✓ {reply.text}"))
    return reply


def form_ballot(form_mode: str, values: dict[str, str | None]) -> list[tuple[str, Token]]:
    """A submitted ballot form as the tokens of `vote`, each with the input it came from:
    rank1..rankN in order, or optionN=points — so a form and a typed vote are one path, and the
    checker's complaints can be put next to the inputs they concern."""
    if form_mode == "ranked":
        ranks = sorted(
            (int(k[4:]), k, v)
            for k, v in values.items()
            if k.startswith("rank") and k[4:].isdigit() and v
        )
        return [(name, Token(str(v).strip())) for _, name, v in ranks]
    return [
        (key, Token(f"{key[6:]}={str(value).strip()}"))
        for key, value in sorted(values.items(), key=lambda kv: _number(kv[0][6:]))
        if key.startswith("option") and key[6:].isdigit() and value not in (None, "")
    ]


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


def submit_form(
    deps: Deps, actor: Actor, ref: Ref, form_mode: str, values: dict[str, str | None]
) -> Reply:
    """Record a submitted ballot form; a refusal carries each message next to its input. The
    optional reason input (`REASON_FIELD`) is the text a typed vote has after `|`."""
    reason = (values.get(REASON_FIELD) or "").strip() or None
    filled = form_ballot(form_mode, {k: v for k, v in values.items() if k != REASON_FIELD})
    names = [name for name, _ in filled]
    first = names[0] if names else min(values, key=_field_order, default="")
    if reason is not None and len(reason) > MAX_REASON:
        error = BallotError(f"Keep a reason under {MAX_REASON} characters.")
        error.fields = {REASON_FIELD: error.message}
        raise error
    try:
        if not filled:
            raise BallotError("Fill in at least one choice.")
        return record_vote(deps, actor, ref, [token for _, token in filled], reason=reason)
    except BallotError as exc:
        exc.fields = {names[i]: exc.message for i in exc.at if i < len(names)} or {
            first: exc.message
        }
        raise


def _field_order(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    return head, _number(name[len(head) :])
