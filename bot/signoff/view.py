"""A proposal as a message: each approver's stance (with the reason given), advice from
everyone else, who is consulted and informed, where it stands under its rule, and — while it is
open — Agree / Abstain / Object / Block. This is the proposal's live message (`view(full=False)`
of the decision kind) and, with every stance's time and the frozen sign-off, part of `show`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.common import when
from bot.context import Deps
from bot.signoff import roles as roles_mod
from bot.signoff import rules
from bot.signoff.roles import Roles, StanceRow
from bot.views import Actions, Block, Button, Context, Line, ListBlock, mention
from storage.db import UnitOfWork
from storage.models import Decision

ICON = {"agree": "✅", "abstain": "➖", "object": "⚠️", "block": "⛔"}
WORD = {"agree": "agrees", "abstain": "abstains", "object": "objects", "block": "blocks"}
ASK_OBJECT = "Why do you object?"
ASK_BLOCK = "Why do you block it? A block holds the proposal until it is lifted."


@dataclass(frozen=True)
class Rendered:
    blocks: list[Block]
    data: dict[str, Any]
    live: bool
    """Open: the message carries the ways to answer, so it is kept current (`Posted`)."""


def stance_text(row: StanceRow | None) -> str:
    if row is None:
        return "⏳ not yet"
    text = f"{ICON[row.stance]} {WORD[row.stance]}"
    return text + (f": {row.reason}" if row.reason else "")


def buttons(ref: str) -> Actions:
    return Actions(
        (
            Button("Agree", f"agree {ref}", "primary"),
            Button("Abstain", f"abstain {ref}"),
            Button("Object", f"object {ref}", ask=ASK_OBJECT),
            Button("Block", f"block {ref}", "danger", ask=ASK_BLOCK),
        ),
        label="Sign off",
    )


def summary(decision: Decision, standing: rules.Standing, approvers: list[str], tz: str) -> str:
    """One line: where it stands (`2 of 3 approvers agree · waiting for <@cho>`)."""
    if decision.status != "proposed":
        settled = decision.signoff or {}
        how = settled.get("how")
        by = f" by {mention(settled.get('by'))} (override)" if how == "override" else ""
        rule = f" ({how})" if how and how != "override" else ""
        return f"{decision.status.capitalize()}{by}{rule}."
    parts = [f"{len(standing.agreed)} of {len(approvers)} approvers agree"]
    if standing.holding:
        parts.append("held by " + ", ".join(mention(p) for p in standing.holding))
    if standing.waiting:
        parts.append("waiting for " + ", ".join(mention(p) for p in standing.waiting))
    if decision.rule == "consent" and decision.due_at and not standing.holding:
        parts.append(f"accepted at {when(decision.due_at, tz)} unless someone objects")
    return " · ".join(parts) + "."


def render(deps: Deps, session: UnitOfWork, decision: Decision, tz: str, *, full: bool) -> Rendered:
    assert decision.rule is not None
    ref = f"D-{decision.number}"
    roles = roles_mod.load(session, decision.id)
    rows = roles_mod.stances(session, decision.id)
    by_user = {row.user: row for row in rows}
    standing = rules.standing(decision.rule, roles.approvers, roles_mod.standing_map(rows))
    blocks: list[Block] = [
        ListBlock(
            tuple(
                Line(mention(a), stance_text(by_user.get(a)), _when(by_user.get(a), tz, full))
                for a in roles.approvers
            ),
            title="Approvers",
        )
    ]
    advice = [row for row in rows if row.user not in roles.approvers]
    if advice:
        blocks.append(
            ListBlock(
                tuple(Line(mention(r.user), stance_text(r), _when(r, tz, full)) for r in advice),
                title="Advice (does not count)",
            )
        )
    blocks.append(Context(summary(decision, standing, roles.approvers, tz)))
    involved = _involved(decision, roles)
    if involved:
        blocks.append(Context(involved))
    live = decision.status == "proposed"
    if live:
        blocks.append(buttons(ref))
    if full and decision.signoff:
        blocks.append(_settled(decision.signoff, tz))
    data: dict[str, Any] = {
        "rule": decision.rule,
        "due": decision.due_at.isoformat() if decision.due_at else None,
        **roles.as_json(),
        "stances": roles_mod.as_json(rows, roles.approvers),
        "standing": standing.state if decision.status == "proposed" else decision.status,
        "waiting": list(standing.waiting) if decision.status == "proposed" else [],
        "settled": decision.signoff,
    }
    return Rendered(blocks, data, live)


def _when(row: StanceRow | None, tz: str, full: bool) -> str:
    return when(row.at, tz) if full and row is not None else ""


def _involved(decision: Decision, roles: Roles) -> str:
    parts = []
    if roles.consulted:
        parts.append("Consulted: " + ", ".join(mention(u) for u in roles.consulted))
    if roles.informed:
        parts.append(
            "Informed: "
            + ", ".join(
                mention(t.id)
                if t.kind == "user"
                else roles_mod.channel_label(decision.workspace, t.id)
                for t in roles.informed
            )
        )
    return " · ".join(parts)


def _settled(signoff: dict[str, Any], tz: str) -> Block:
    """The sign-off as it stood when the proposal was settled."""
    at = datetime.fromisoformat(signoff["at"])
    how = signoff.get("how")
    title = f"Settled {when(at, tz)}: {signoff.get('status')} " + (
        f"by {mention(signoff.get('by'))} (override)" if how == "override" else f"({how})"
    )
    lines = tuple(
        Line(
            mention(s["user"]),
            WORD.get(s["stance"], s["stance"]) + (f": {s['reason']}" if s.get("reason") else ""),
            "approver" if s.get("approver") else "advice",
        )
        for s in signoff.get("stances", [])
    )
    return ListBlock(lines, title=title, empty="No stances were given.")


__all__ = ["ASK_BLOCK", "ASK_OBJECT", "Rendered", "buttons", "render", "stance_text", "summary"]
