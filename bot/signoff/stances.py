"""`agree`, `abstain`, `object`, `block`: a person's stance on a proposal.

Anyone in the proposal's channel may answer; an approver's stance counts under the rule, anyone
else's is shown as advice. The latest stance counts and every change is an audit row. Objecting
and blocking need a reason. A stance that meets the rule (the last approver agrees) settles the
proposal in the same transaction. The proposal row is locked for the change, so two approvers
answering at once are counted one after the other, and whichever answer completes the rule
accepts it exactly once.

The reply acknowledges (`receipt`): the proposal's live message shows the new stance.
"""

from __future__ import annotations

from sqlalchemy import select

from bot import decisions
from bot.common import audit, channel_tz, day, load
from bot.context import Actor, Deps, Event
from bot.effects import Changed
from bot.errors import Conflict, UsageError
from bot.parser import Command, Ref, join_text, parse_ref, split_pipe
from bot.signoff import roles as roles_mod
from bot.signoff import rules, settling
from bot.views import Context, Reply
from storage.models import Decision, Stance

MAX_REASON = 1000
NOUN = {"agree": "agreement", "abstain": "abstention", "object": "objection", "block": "block"}


def cmd_agree(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    return _stance(deps, actor, cmd, "agree")


def cmd_abstain(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    return _stance(deps, actor, cmd, "abstain")


def cmd_object(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    return _stance(deps, actor, cmd, "object")


def cmd_block(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    return _stance(deps, actor, cmd, "block")


def _stance(deps: Deps, actor: Actor, cmd: Command, stance: str) -> Reply:
    """`object D-7 | too risky` (the reason may also follow the id without a `|`)."""
    before, after = split_pipe(cmd.args)
    if not before:
        raise UsageError("Which proposal? Give its id, like D-7.", verb=stance)
    ref = parse_ref(before[0].text, verb=stance, expect="D")
    if after is not None and len(before) > 1:
        raise UsageError("Put only the proposal's id before the `|`.", verb=stance)
    reason = join_text(after if after is not None else before[1:]) or None
    if stance in rules.REASON_REQUIRED and not reason:
        raise UsageError(
            f"An {NOUN[stance]} needs a reason: `{stance} {ref} | <why>`."
            if stance == "object"
            else f"A block needs a reason: `{stance} {ref} | <why>`.",
            verb=stance,
        )
    if reason and len(reason) > MAX_REASON:
        raise UsageError(f"Keep the reason under {MAX_REASON} characters.", verb=stance)
    return record(deps, actor, ref, stance, reason)


def ensure_open(decision: Decision, ref: Ref, tz: str) -> None:
    if decision.rule is None:
        raise Conflict(
            f"{ref} is not a proposal: nobody was asked to sign it off "
            "(`propose <title> approvers:@a,@b` asks them)."
        )
    if decision.status != "proposed":
        settled = (decision.signoff or {}).get("at")
        since = f" since {settled[:10]}" if settled else f" since {day(decision.updated_at, tz)}"
        raise Conflict(f"{ref} is {decision.status}{since}; stances can no longer change.")


def record(deps: Deps, actor: Actor, ref: Ref, stance: str, reason: str | None) -> Reply:
    settled = False
    with deps.db.uow() as session:
        now = deps.clock.now()
        decision = load(session, actor, ref, for_update=True)
        ensure_open(decision, ref, channel_tz(session, actor))
        assert decision.rule is not None
        roles = roles_mod.load(session, decision.id)
        approver = actor.user in roles.approvers
        current = session.execute(
            select(Stance.stance, Stance.reason).where(
                Stance.decision_id == decision.id, Stance.user == actor.user
            )
        ).first()
        if current is not None and (current.stance, current.reason) == (stance, reason):
            reply = decisions.view(deps, session, actor, decision, full=False)
            reply.text = f"Your stance on {ref} is already: {stance}."
            reply.receipt = True
            reply.effects = ()
            return reply
        roles_mod.write_stance(session, decision.id, actor.user, stance, reason, now)
        audit(
            session,
            actor,
            now=now,
            action="stance",
            kind="decision",
            obj=decision,
            before={"stance": current.stance, "reason": current.reason} if current else None,
            after={"stance": stance, "reason": reason, "approver": approver},
        )
        deps.emit(
            session,
            Event(
                "decision.stance",
                decision.workspace,
                decision.channel,
                actor.platform,
                {"id": str(ref), "user": actor.user, "stance": stance, "reason": reason,
                 "approver": approver},
            ),
        )  # fmt: skip
        if approver:
            standing = rules.standing(
                decision.rule,
                roles.approvers,
                roles_mod.standing_map(roles_mod.stances(session, decision.id)),
            )
            if standing.state == "accepted":
                settling.settle(
                    deps, session, actor, decision, "accepted", how=decision.rule, now=now
                )
                settled = True
        reply = decisions.view(deps, session, actor, decision, full=False)
    changed = "Changed your stance on" if current is not None else "Recorded your"
    if current is not None:
        text = f"{changed} {ref}: you {stance}"
    else:
        text = f"{changed} {NOUN[stance]} {'to' if stance == 'object' else 'on'} {ref}"
    if reason:
        text += f" — “{reason}”"
    if not approver:
        text += " (advice: only the approvers' stances count)"
    if settled:
        text += f". {ref} is accepted."
    reply.text = text
    reply.receipt = True
    reply.effects = (Changed(str(ref), "stance"),)
    reply.blocks.insert(0, Context(f"✓ {text}"))
    return reply


__all__ = ["cmd_abstain", "cmd_agree", "cmd_block", "cmd_object", "ensure_open", "record"]
