"""What people said beside the tally: who chose what in a `public` poll, and the reasons given
with votes.

Who may see what follows the poll's promise:

- a `public` poll shows each person's choice (voters per option) and their reason beside it;
- an ordinary poll shows reasons with the name of who gave them, but not their choice — that
  would make it public;
- an anonymous poll shows reasons with no name and no choice, in an order derived from nothing
  but the reasons' texts and a secret (a keyed hash), never from the ballots' storage or voting
  order — so neither the order nor anything beside a reason points at a voter.

Nothing is shown while a `results:hidden` poll is open: a reason can tell the tally as well as a
bar can.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from bot.context import Deps
from bot.polls.rules import Votable
from bot.views import Block, Line, ListBlock, mention
from storage import ballots
from storage.db import UnitOfWork
from storage.models import Poll

SHOWN_REASONS = 30
"""Reasons listed in a message; the JSON of `results` carries all of them."""


def describe(poll: Votable, choice: Any) -> str:
    """A stored ballot in words: `A, B`, `A > B`, `A 3, B 2`."""
    texts = [o.text for o in poll.options]
    if poll.mode == "dots":
        return ", ".join(f"{texts[i]} {p}" for i, p in choice)
    if poll.mode == "ranked":
        return " > ".join(texts[i] for i in choice)
    return ", ".join(texts[i] for i in choice)


def shuffled(deps: Deps, poll: Poll, texts: list[str]) -> list[str]:
    """Anonymous reasons in an order that depends only on their texts and the secret: the same
    on every refresh of a message, different in every poll, unrelated to who wrote them."""

    def key(text: str) -> bytes:
        return hmac.new(deps.secret, f"{poll.id}\x1f{text}".encode(), hashlib.sha256).digest()

    return sorted(texts, key=key)


def said(deps: Deps, session: UnitOfWork, poll: Poll) -> tuple[list[Block], dict[str, Any]]:
    """The blocks and the JSON for who chose what and the reasons given, as the poll allows."""
    if poll.anonymous:
        texts = shuffled(deps, poll, ballots.reasons(session, poll.id))
        if not texts:
            return [], {}
        lines = tuple(Line("", f"“{t}”") for t in texts[:SHOWN_REASONS])
        return [_reasons(lines, len(texts))], {"reasons": [{"reason": t} for t in texts]}
    # An ordinary poll shows only reasons: only the ballots that have one are read.
    rows = ballots.named(session, poll.id, with_reason=not poll.public)
    blocks: list[Block] = []
    data: dict[str, Any] = {}
    if poll.public:
        blocks.append(_who_chose_what(poll, rows))
        data["voters"] = _voters_per_option(poll, rows)
        data["by_voter"] = [
            {"voter": user, "choice": describe(poll, choice)} | ({"reason": r} if r else {})
            for user, choice, r in rows
        ]
    given = [(user, choice, r) for user, choice, r in rows if r]
    if given:
        lines = tuple(
            Line(mention(user), f"“{r}”", describe(poll, choice) if poll.public else "")
            for user, choice, r in given[:SHOWN_REASONS]
        )
        blocks.append(_reasons(lines, len(given)))
        data["reasons"] = [
            {"voter": user, "reason": r} | ({"choice": describe(poll, c)} if poll.public else {})
            for user, c, r in given
        ]
    return blocks, data


def _reasons(lines: tuple[Line, ...], total: int) -> ListBlock:
    more = total - len(lines)
    return ListBlock(
        lines,
        title="Reasons",
        more_hint=f"{more} more in `results … --json` or the export." if more > 0 else "",
    )


def _voters_per_option(poll: Poll, rows: list[tuple[str, Any, str | None]]) -> dict[str, Any]:
    """Option → who chose it; dots: option → {person: points}; ranked: option → whose first
    choice it is (each person's whole order is in `by_voter`)."""
    texts = [o.text for o in poll.options]
    if poll.mode == "dots":
        points: dict[str, dict[str, int]] = {t: {} for t in texts}
        for user, choice, _ in rows:
            for i, p in choice:
                points[texts[i]][user] = p
        return points
    chosen: dict[str, list[str]] = {t: [] for t in texts}
    for user, choice, _ in rows:
        picked = choice[:1] if poll.mode == "ranked" else choice
        for i in picked:
            chosen[texts[i]].append(user)
    return chosen


def _who_chose_what(poll: Poll, rows: list[tuple[str, Any, str | None]]) -> ListBlock:
    """Per option, who chose it; a ranked poll lists each person's order instead (an order is
    not a set of options)."""
    if poll.mode == "ranked":
        orders = tuple(Line(mention(user), describe(poll, choice)) for user, choice, _ in rows)
        return ListBlock(orders, title="Who ranked what", empty="No votes yet.")
    voters = _voters_per_option(poll, rows)
    lines = []
    for n, text in enumerate(voters, start=1):
        who = voters[text]
        if poll.mode == "dots":
            named = ", ".join(f"{mention(u)} {p}" for u, p in who.items())
        else:
            named = ", ".join(mention(u) for u in who)
        lines.append(Line(f"{n}. {text}", named or "—"))
    return ListBlock(tuple(lines), title="Who chose what")


__all__ = ["SHOWN_REASONS", "describe", "said", "shuffled"]
