"""Settling a proposal — accepted or rejected, by its rule or by hand — and telling people.

`settle` runs in the transaction of whatever settled it (the last approver's `agree`, the
scheduler at a consent proposal's due time, the owner's `status D-n accepted`): it freezes the
sign-off as it stood (how, by whom, every stance) on the decision, writes the audit row, and
queues the messages in the outbox in that same transaction — the channel's one message with the
trail, and on acceptance one message to every informed person (privately) and channel. A crash
keeps all of it or none; every row has a stable idempotency key made from the settlement, so the
same settlement can never queue a message twice, and the dispatcher sends each row once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from bot import outbox
from bot.changes import PAST
from bot.common import audit
from bot.context import Actor, Deps, Event
from bot.effects import Changed
from bot.platforms import platform_of
from bot.signoff import roles as roles_mod
from bot.signoff.roles import Roles, StanceRow
from bot.views import Context, Line, ListBlock, Reply, Section, mention
from storage.db import UnitOfWork
from storage.models import Decision

ORDER = ("agree", "abstain", "object", "block", "")
KEY_LIMIT = 200


def trail(approvers: list[str], stances: dict[str, str]) -> str:
    """`<@ana>, <@ben> agreed; <@cho> abstained; <@dee> did not answer` — approvers only."""
    parts = []
    for stance in ORDER:
        people = [a for a in approvers if stances.get(a, "") == stance]
        if people:
            verb = PAST.get(stance, "did not answer")
            parts.append(f"{', '.join(mention(p) for p in people)} {verb}")
    return "; ".join(parts) or "no approvers"


def headline(ref: str, status: str, how: str, by: str | None) -> str:
    if how == "override":
        return f"{ref} {status} by {mention(by)} (override)"
    if how == "consent":
        return f"{ref} {status} at its due time (consent)"
    return f"{ref} {status}"


def settle(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    decision: Decision,
    status: str,
    *,
    how: str,
    now: datetime,
) -> None:
    """Accept or reject a proposal and tell people. `how` is its rule, or `override` when the
    owner or an admin decided by hand (recorded with the stances standing at this moment)."""
    ref = f"D-{decision.number}"
    roles = roles_mod.load(session, decision.id)
    rows = roles_mod.stances(session, decision.id)
    current = roles_mod.standing_map(rows)
    before = decision.status
    by = actor.user if how == "override" else None
    decision.status = status
    decision.updated_at = now
    decision.signoff = {
        "status": status,
        "how": how,
        "by": by,
        "at": now.isoformat(),
        "approvers": list(roles.approvers),
        "stances": roles_mod.as_json(rows, roles.approvers),
    }
    standing = [[a, current.get(a, "")] for a in roles.approvers]
    audit(
        session,
        actor,
        now=now,
        action="signoff",
        kind="decision",
        obj=decision,
        before={"status": before},
        after={"status": status, "how": how, "by": by, "stances": standing},
    )
    deps.emit(
        session,
        Event(
            "decision.changed",
            decision.workspace,
            decision.channel,
            platform_of(decision.workspace),
            {"id": ref, "title": decision.title, "status": status, "signoff": decision.signoff},
        ),
    )
    summary = f"{headline(ref, status, how, by)} — {trail(roles.approvers, current)}"
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    _announce(session, decision, rows, roles, summary, stamp, now)
    if status == "accepted":
        _inform(session, decision, roles, summary, stamp, now)


def reopen(
    deps: Deps, session: UnitOfWork, actor: Actor, decision: Decision, *, now: datetime, why: str
) -> None:
    """Back to `proposed` (`review … revisit`, or `status D-n proposed`): everyone is asked
    again. The stances that stood are kept in the audit row; a due time already past is
    cleared, or a consent proposal would be accepted at the next tick without anyone asked."""
    rows = roles_mod.stances(session, decision.id)
    before = {"status": decision.status, "stances": [[r.user, r.stance] for r in rows]}
    roles_mod.clear_stances(session, decision.id)
    decision.status = "proposed"
    decision.signoff = None
    decision.superseded_by_id = None
    if decision.due_at is not None and decision.due_at <= now:
        decision.due_at = None
    decision.updated_at = now
    audit(
        session,
        actor,
        now=now,
        action="reopen",
        kind="decision",
        obj=decision,
        before=before,
        after={"status": "proposed", "why": why},
    )
    deps.emit(
        session,
        Event(
            "decision.changed",
            decision.workspace,
            decision.channel,
            actor.platform,
            {"id": f"D-{decision.number}", "title": decision.title, "status": "proposed"},
        ),
    )


def key(*parts: str) -> str:
    """An outbox idempotency key; long ones (long workspace or channel ids) keep a readable
    head and a hash of the whole, so two never collide by being cut at the column's limit."""
    whole = ":".join(parts)
    if len(whole) <= KEY_LIMIT:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:32]
    return f"{whole[: KEY_LIMIT - 33]}#{digest}"


def _stance_lines(rows: list[StanceRow], approvers: list[str]) -> tuple[Line, ...]:
    return tuple(
        Line(mention(r.user), PAST[r.stance] + (f": {r.reason}" if r.reason else ""))
        for r in rows
        if r.user in approvers and (r.reason or r.stance in ("object", "block"))
    )


def _announce(
    session: UnitOfWork,
    decision: Decision,
    rows: list[StanceRow],
    roles: Roles,
    summary: str,
    stamp: str,
    now: datetime,
) -> None:
    """The channel's one message about it, with the trail; its live messages follow."""
    ref = f"D-{decision.number}"
    icon = "✅" if decision.status == "accepted" else "✗"
    blocks: list[Any] = [Section(f"{icon} *{summary}*"), Context(f"“{decision.title}”")]
    reasons = _stance_lines(rows, roles.approvers)
    if reasons:
        blocks.append(ListBlock(reasons, title="Reasons given"))
    reply = Reply(
        ok=True,
        kind="signoff",
        text=summary,
        blocks=blocks,
        data={"id": ref, "status": decision.status, "signoff": decision.signoff},
        effects=(Changed(ref, "status"),),
    )
    outbox.enqueue(
        session,
        workspace=decision.workspace,
        channel=decision.channel,
        platform=platform_of(decision.workspace),
        kind="signoff",
        reply=reply,
        key=key("signoff", decision.workspace, ref, stamp),
        now=now,
    )


def _inform(
    session: UnitOfWork,
    decision: Decision,
    roles: Roles,
    summary: str,
    stamp: str,
    now: datetime,
) -> None:
    """Every informed person privately and every informed channel of this workspace, once."""
    ref = f"D-{decision.number}"
    where = roles_mod.channel_label(decision.workspace, decision.channel)
    text = f"For your information: {ref} “{decision.title}” was accepted in {where} — {summary}."
    platform = platform_of(decision.workspace)
    for target in roles.informed:
        if target.kind == "channel" and target.id == decision.channel:
            continue  # the channel itself already has its message
        reply = Reply(
            ok=True,
            kind="informed",
            text=text,
            blocks=[Section(text)],
            data={"id": ref, "status": "accepted"},
            direct_to=target.id if target.kind == "user" else None,
        )
        outbox.enqueue(
            session,
            workspace=decision.workspace,
            # A person is written to from the proposal's channel (the Teams sender reaches
            # them through its conversation); a channel is posted to directly.
            channel=decision.channel if target.kind == "user" else target.id,
            platform=platform,
            kind="informed",
            reply=reply,
            key=key("informed", decision.workspace, ref, stamp, target.kind, target.id),
            now=now,
        )


__all__ = ["PAST", "headline", "key", "reopen", "settle", "trail"]
