"""A poll as a message: question, live tally, participation and the ways to vote — the view
every surface renders, the live message re-renders, and `results`/`show` print."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.common import channel_tz, history_view, load, when
from bot.context import Actor, Deps
from bot.effects import Effect, Posted
from bot.errors import UsageError
from bot.parser import Command, Ref, parse_ref
from bot.polls import voters
from bot.polls.batches import BATCH
from bot.polls.results import listed, visible
from bot.polls.rules import MAX_OPTIONS, MAX_REASON, REASON_FIELD, closed_on
from bot.polls.trend import series_view
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
    counted,
    mention,
)
from storage.db import UnitOfWork
from storage.models import Decision, Poll


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
        outcome = "No votes counted yet." if res.get("uncounted") else "No votes yet."
    elif res["winner"] is not None:
        closed = closed_on(poll, now) is not None
        outcome = f"{'Winner' if closed else 'Leading'}: {res['winner']}"
    else:
        outcome = "Tie between " + listed(res["tied"])
    if poll.mode == "ranked" and res["ballots"]:
        outcome += " · Order: " + " > ".join(" = ".join(t) for t in res["tiers"])
    blocks.append(Section(outcome))
    blocks.append(Context(_people(res["participation"])))
    if res.get("uncounted"):
        blocks.append(
            Context(
                f"{counted(res['uncounted'], 'vote')} not counted yet: an anonymous poll counts "
                f"votes {BATCH} or more at a time (and all at close), so no one vote shows."
            )
        )
    if full and res.get("pairwise") is not None:
        blocks.append(Pre(_matrix(res["pairwise"], "Pairwise (row preferred over column)")))
        if res.get("strongest_paths") is not None:
            blocks.append(Pre(_matrix(res["strongest_paths"], "Strongest paths")))
        blocks.append(Context("Condorcet winner: " + (res.get("condorcet_winner") or "none")))
    if res.get("complete") is False:
        blocks.append(
            Context(
                "Too many orders of options tied for last to follow every one: "
                "the tie names every option that was not ruled out."
            )
        )
    if full and res.get("rounds"):
        blocks.append(
            ListBlock(
                tuple(
                    Line(
                        f"Round {n + 1}",
                        ", ".join(f"{k} {v}" for k, v in r["counts"].items()),
                        _round_note(r),
                    )
                    for n, r in enumerate(res["rounds"])
                ),
                title="Instant-runoff rounds",
            )
        )
    return blocks


def _people(part: dict[str, Any]) -> str:
    """`7 of 12 voted · not yet: @a, @b` (no names in anonymous polls)."""
    people = f"{part['voted']} of {part['eligible']} voted"
    if part.get("not_voted"):
        shown = part["not_voted"][:15]
        people += " · not yet: " + ", ".join(mention(u) for u in shown)
        if len(part["not_voted"]) > len(shown):
            people += f" and {len(part['not_voted']) - len(shown)} more"
    return people


def _hidden_blocks(poll: Poll, res: dict[str, Any], tz: str) -> list[Any]:
    until = f" at {when(poll.closes_at, tz)}" if poll.closes_at else " (by hand)"
    return [
        Section(f"Results are hidden until P-{poll.number} closes{until}."),
        Context(_people(res["participation"])),
    ]


def _round_note(round_: dict[str, Any]) -> str:
    """What a round did, in words: who went out, and — when several tied for last — that the
    order was followed and what it changed. Results frozen before ties were followed have
    neither `tied_last` nor `outcomes`."""
    out: list[str] = round_["eliminated"]
    tied: list[str] = round_.get("tied_last") or []
    outcomes: dict[str, list[str]] = round_.get("outcomes") or {}
    gone = f"out: {', '.join(out)}" if out else ""
    if not tied:
        return gone
    if not out and len(tied) == len(round_["counts"]) == 2:
        return "the last two tie"
    head = f"{', '.join(tied)} tied for last"
    if outcomes and len({tuple(won) for won in outcomes.values()}) > 1:
        each = "; ".join(f"{o} out first → {_elects(won)}" for o, won in outcomes.items())
        return f"{head}: {each}" + (f" · shown: {out[0]} out" if out else "")
    if out:
        return f"{head}; every order gives the same result · {gone}"
    return f"{head}; the orders elect different winners"


def _elects(won: list[str]) -> str:
    return f"{won[0]} wins" if len(won) == 1 else "tie " + " / ".join(won)


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
    if poll.max_choices is not None:
        parts[0] = f"up to {counted(poll.max_choices, 'choice')}"
    if poll.anonymous:
        parts.append("anonymous")
    if poll.public:
        parts.append("public: everyone sees who chose what")
    closed = closed_on(poll, now)
    if poll.results_hidden and not closed:
        parts.append("results hidden until it closes")
    if poll.options_open and not closed:
        parts.append("anyone may add options")
    if closed:
        parts.append(f"closed {when(closed, tz)}")
    elif poll.closes_at:
        parts.append(f"closes {when(poll.closes_at, tz)}")
    parts.append(f"by {mention(poll.created_by)}")
    return " · ".join(parts)


def poll_view(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    poll: Poll,
    *,
    full: bool = False,
    ballot: bool = True,
) -> Reply:
    """The poll as a message: question, live tally, and — with `ballot`, while it is open — the
    ways to vote, which make the message the poll's live message (`Posted`)."""
    tz = channel_tz(session, actor)
    now = deps.clock.now()
    ref = f"P-{poll.number}"
    is_open = closed_on(poll, now) is None
    res = visible(deps, session, poll)
    hidden = bool(res.get("hidden"))
    blocks: list[Any] = [Heading(f"{ref} · {poll.question}"), Context(poll_header(poll, tz, now))]
    if hidden:
        blocks += _hidden_blocks(poll, res, tz)
    else:
        blocks += _result_blocks(poll, res, tz, now, full=full)
    said: dict[str, Any] = {}
    if not hidden:
        said_blocks, said = voters.said(deps, session, poll)
        blocks += said_blocks
    series_blocks, series = series_view(deps, session, poll, tz)
    blocks += series_blocks
    live: tuple[Effect, ...] = ()
    if ballot and is_open:
        blocks += _ballot_ui(poll)
        live = (Posted(ref),)
    elif poll.decision_id:
        decision = session.get(Decision, poll.decision_id)
        if decision:
            blocks.append(Context(f"Links: decided as D-{decision.number}"))
            res = res | {"decision": f"D-{decision.number}"}
    data = dict(res) | said | series
    data["closed"] = not is_open
    data["options"] = [o.text for o in poll.options]
    data["public"] = poll.public
    data["results"] = "hidden" if poll.results_hidden else "live"
    if full:
        history_blocks, data["history"] = history_view(session, "poll", poll.id, tz, hide=("vote",))
        blocks += history_blocks
    return Reply(
        ok=True,
        kind="poll",
        text=f"{ref}: {poll.question}",
        blocks=blocks,
        data=data,
        effects=live,
    )


def _ballot_ui(poll: Poll) -> list[Any]:
    """The ways to vote: a button per option (single, multi), or a form (ranked, dots) with an
    optional reason input; then the Add option button of an `options:open` poll."""
    out: list[Any] = [_ballot(poll)]
    ref = f"P-{poll.number}"
    if isinstance(out[0], Actions):
        # Buttons stay one click; a reason is typed.
        out.append(Context(f"Say why: `vote {ref} <choice> | <reason>`."))
    if poll.options_open and len(poll.options) < MAX_OPTIONS:
        add = Button("Add option", f"edit {ref}", ask=f"A new option for {ref}", into="add")
        out.append(Actions((add,), label="Anyone here may add an option"))
    return out


REASON_INPUT = FormField(REASON_FIELD, "Why? (optional)", "text", maximum=MAX_REASON)


def _ballot(poll: Poll) -> Actions | Form:
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
        order = " ".join(str(n) for n in (2, 1, 3)[: len(poll.options)])
        return Form(
            ref,
            "ranked",
            f"Rank the options of {ref}",
            (*fields, REASON_INPUT),
            typed=f"vote {ref} {order}",
        )
    fields = tuple(
        FormField(f"option{o.position}", o.text, "number", maximum=poll.budget)
        for o in poll.options
    )
    budget = poll.budget or 1
    spread = f"1={min(2, budget - 1)} {min(len(poll.options), 3)}=1" if budget > 1 else "1=1"
    return Form(
        ref,
        "dots",
        f"Spread up to {poll.budget} points",
        (*fields, REASON_INPUT),
        budget=poll.budget,
        typed=f"vote {ref} {spread}",
    )


def cmd_results(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1:
        raise UsageError("Which poll?", verb="results")
    ref = parse_ref(words[0], verb="results", expect="P")
    with deps.db.uow() as session:
        poll = load(session, actor, ref)
        reply = poll_view(deps, session, actor, poll, ballot=False)
    reply.kind = "results"
    if reply.data.get("hidden"):
        reply.text += " · results are hidden until it closes"
    return reply


def ballot_form(deps: Deps, actor: Actor, ref: Ref, errors: dict[str, str]) -> Form | None:
    """The poll's ballot form again, with `errors` next to the inputs they concern — handed back
    with a refused form, for surfaces that cannot keep the person's own form open (Teams)."""
    with deps.db.uow() as session:
        poll = load(session, actor, ref)
        if closed_on(poll, deps.clock.now()) is not None:
            return None
        form = _ballot(poll)
    if not isinstance(form, Form):
        return None
    fields = tuple(replace(f, error=errors.get(f.name)) for f in form.fields)
    return replace(form, fields=fields)
