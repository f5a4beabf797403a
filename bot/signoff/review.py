"""`review D-n keep [next:time]` and `review D-n revisit`: answering a review reminder.

A decision with `review:` (on `decide`, `propose` or `edit`) is brought back to its owner on that
date with Keep / Revisit buttons (`bot/jobs.py`). Keep records that it still holds, optionally
with the next review date; revisit reopens it as `proposed`, asking its approvers again. Only its
maker, its owner or a workspace admin answers.
"""

from __future__ import annotations

from bot import decisions
from bot.common import audit, channel_tz, load, when
from bot.context import Actor, Deps
from bot.effects import Changed
from bot.errors import Conflict, UsageError
from bot.parser import Command, parse_ref
from bot.signoff import roles as roles_mod
from bot.signoff import settling
from bot.views import Context, Reply, counted

VERB = "review"


def cmd_review(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = [w.lower() for w in cmd.words()]
    if len(words) != 2 or words[1] not in ("keep", "revisit"):
        raise UsageError("Give a decision id and keep or revisit.", verb=VERB)
    ref = parse_ref(words[0], verb=VERB, expect="D")
    answer = words[1]
    next_text = cmd.option("next")
    if next_text is not None and answer != "keep":
        raise UsageError("next: goes with keep.", verb=VERB)
    with deps.db.uow() as session:
        now = deps.clock.now()
        decision = load(session, actor, ref, for_update=True)
        decisions.refuse_stranger(deps, actor, decision, "review")
        before = {"review": decision.review_at.isoformat() if decision.review_at else None}
        if answer == "keep":
            if decision.status == "proposed":
                raise Conflict(f"{ref} is still proposed: there is nothing to keep yet.")
            decision.review_at = decisions.parse_review_option(
                deps, session, actor, next_text, VERB
            )
            decision.updated_at = now
            audit(
                session,
                actor,
                now=now,
                action="review",
                kind="decision",
                obj=decision,
                before=before,
                after={
                    "kept": decision.status,
                    "review": decision.review_at.isoformat() if decision.review_at else None,
                },
            )
            reply = decisions.view(deps, session, actor, decision, full=False)
            tz = channel_tz(session, actor)
            reply.text = f"Kept {ref} as {decision.status}" + (
                f"; next review {when(decision.review_at, tz)}" if decision.review_at else ""
            )
            reply.blocks.insert(0, Context(f"✓ {reply.text}"))
            return reply
        if decision.status == "proposed":
            raise Conflict(f"{ref} is already proposed.")
        if decision.status == "superseded":
            raise Conflict(f"{ref} is superseded; revisit the decision that replaced it.")
        decision.review_at = None
        audit(
            session,
            actor,
            now=now,
            action="review",
            kind="decision",
            obj=decision,
            before=before,
            after={"revisit": True},
        )
        settling.reopen(deps, session, actor, decision, now=now, why="review")
        approvers = roles_mod.load(session, decision.id).approvers
        reply = decisions.view(deps, session, actor, decision, full=False)
    reply.text = f"Reopened {ref} as proposed" + (
        f" — {counted(len(approvers), 'approver')} asked again" if approvers else ""
    )
    reply.notify = tuple(approvers)
    reply.effects += (Changed(str(ref), "status"),)
    reply.blocks.insert(0, Context(f"↺ {reply.text}"))
    return reply


__all__ = ["cmd_review"]
