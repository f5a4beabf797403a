"""Counting a poll and freezing its result: the tally, who could vote, closing (by hand or on
time), feeding prioritization, and recording the result as a decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot import decisions, tally
from bot.common import audit
from bot.context import Actor, Deps, Event
from bot.errors import UsageError
from bot.polls import batches, tallies
from bot.polls.rules import closed_on
from bot.views import mention
from storage import rosters
from storage.db import UnitOfWork
from storage.models import Item, Member, Participation, Poll

SINGLE_MARK_METHODS = {"single": "plurality", "multi": "approval", "dots": "points"}
"""The counting method of each mode without `method:` (as `bot.tally` names them)."""


def count(poll: Poll, choices: Sequence[Any]) -> tally.Tally:
    """A full recount of these ballots (the check the running tally is held to)."""
    n = len(poll.options)
    if poll.mode == "single":
        return tally.plurality(n, [c[0] for c in choices])
    if poll.mode == "multi":
        return tally.approval(n, [c for c in choices])
    if poll.mode == "dots":
        return tally.points(n, [{i: p for i, p in c} for c in choices])
    return tally.ranked(poll.method or "schulze", n, [tuple(c) for c in choices])


def eligible(deps: Deps, session: UnitOfWork, poll: Poll, voters: set[str]) -> list[str]:
    """Who could vote: the channel's roster as the platform last listed it (`rosters`, shared by
    every process), else the people seen here, plus anyone who voted (a voter is always
    eligible)."""
    members = rosters.members(session, poll.workspace, poll.channel)
    if members is None:
        members = list(
            session.execute(
                select(Member.user).where(
                    Member.workspace == poll.workspace, Member.channel == poll.channel
                )
            ).scalars()
        )
    return sorted(set(members) | voters)


def participation(deps: Deps, session: UnitOfWork, poll: Poll) -> dict[str, Any]:
    """How many voted of how many could, and — except in anonymous polls — who has not yet."""
    voters = set(
        session.execute(
            select(Participation.user).where(Participation.poll_id == poll.id)
        ).scalars()
    )
    people = eligible(deps, session, poll, voters)
    out: dict[str, Any] = {"voted": len(voters), "eligible": len(people)}
    if not poll.anonymous:
        out["not_voted"] = [p for p in people if p not in voters]
    return out


def concealed(deps: Deps, session: UnitOfWork, poll: Poll) -> dict[str, Any]:
    """What `results` says of a `results:hidden` poll before it closes: the contract's keys
    without a count, a winner or an order — only participation (the tally is not even run)."""
    part = participation(deps, session, poll)
    return {
        "id": f"P-{poll.number}",
        "question": poll.question,
        "mode": poll.mode + (f":{poll.budget}" if poll.budget else ""),
        "method": poll.method or SINGLE_MARK_METHODS[poll.mode],
        "hidden": True,
        "winner": None,
        "tied": [],
        "ranking": [],
        "tiers": [],
        "ballots": part["voted"],
        "participation": part,
    }


def results(deps: Deps, session: UnitOfWork, poll: Poll) -> dict[str, Any]:
    """The tally as the JSON contract has it, plus participation. The counts come from the
    poll's running tally (bot/polls/tallies.py), not from a recount of its ballots."""
    result = tallies.count(session, poll)
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
        "participation": participation(deps, session, poll),
    }
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
                "tied_last": [texts[i] for i in r.tied_last],
                "outcomes": {texts[i]: [texts[j] for j in won] for i, won in r.outcomes.items()},
            }
            for r in result.rounds
        ]
    if result.method == "irv":
        out["complete"] = result.complete
    uncounted = batches.waiting(session, poll)
    if uncounted:
        out["uncounted"] = uncounted
    return out


def visible(deps: Deps, session: UnitOfWork, poll: Poll) -> dict[str, Any]:
    """The result as anyone may see it now — every view, export and trend reads it here: only
    participation while a `results:hidden` poll is open, the frozen result once it is closed,
    else the live tally."""
    if poll.results_hidden and closed_on(poll, deps.clock.now()) is None:
        return concealed(deps, session, poll)
    if poll.closed_at is not None and poll.result:
        return poll.result
    # An anonymous poll's tally moves only by a batch (bot/polls/batches.py), all at once when
    # its time is up.
    batches.settle(deps, session, poll, everything=closed_on(poll, deps.clock.now()) is not None)
    return results(deps, session, poll)


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def close(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    poll: Poll,
    *,
    record: bool,
    pick: str | None = None,
) -> dict[str, Any]:
    """Close a poll: freeze its result, feed prioritization, optionally record a decision.
    Used by `close` and by the scheduler at `closes:` time.

    A tie is never recorded as a decision on its own: with `record`, a tied poll needs `pick`
    naming one of the tied options (by text or number), and the decision says who broke the
    tie. The refusal comes before anything changes."""
    now = deps.clock.now()
    batches.settle(deps, session, poll, everything=True)
    res = results(deps, session, poll)
    picked = _tie_break(poll, res, pick) if record else None
    poll.closed_at = min(now, poll.closes_at) if poll.closes_at else now
    poll.closed_by = actor.user
    poll.updated_at = now
    if poll.kind == "prioritize":
        _apply_priorities(session, poll, res)
    after: dict[str, Any] = {"winner": res["winner"], "ranking": res["ranking"]}
    if record:
        winner = res["winner"] or picked or "no votes"
        broken = ""
        if picked:
            res["picked"] = picked
            res["picked_by"] = actor.user
            after["picked"] = picked
            broken = (
                f" Tie between {listed(res['tied'])} broken by {mention(actor.user)} for {picked}."
            )
        decision = decisions.create(
            deps,
            session,
            actor,
            title=f"{poll.question} → {winner}",
            rationale=(
                f"Result of P-{poll.number} ({res['method']}): "
                + " > ".join(" = ".join(tier) for tier in res["tiers"])
                + f"; {res['participation']['voted']} of "
                f"{res['participation']['eligible']} voted." + broken
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


def _tie_break(poll: Poll, res: dict[str, Any], pick: str | None) -> str | None:
    """The tied option `pick` names, when the result is a tie; refuses a tie without one, a pick
    outside the tie, and a pick where nothing is tied."""
    ref = f"P-{poll.number}"
    tied: list[str] = res["tied"]
    if not tied:
        if pick is not None:
            raise UsageError(f"{ref} is not tied; pick: only breaks a tie.", verb="close")
        return None
    if pick is None:
        raise UsageError(
            f"{ref} is a tie between {listed(tied)}, and a tie is not a decision. "
            f"Say which wins: `close {ref} decide pick:{tied[0]}` (or another of them).",
            verb="close",
        )
    texts = [o.text for o in poll.options]
    wanted = pick.strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(texts):
        wanted = texts[int(wanted) - 1]
    chosen = next((t for t in tied if t.lower() == wanted.lower()), None)
    if chosen is None:
        raise UsageError(
            f"pick: names one of the tied options: {', '.join(tied)} (not `{pick[:40]}`).",
            verb="close",
        )
    return chosen


def listed(names: list[str]) -> str:
    """`A and B`, `A, B and C`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


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
