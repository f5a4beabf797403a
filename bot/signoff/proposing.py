"""`propose`: a decision with status `proposed` that named approvers sign off.

The reply is the proposal's live message — each approver's stance and the Agree / Abstain /
Object / Block buttons — and it calls on the approvers (`Reply.notify`), so Teams mentions them
when it is posted; later refreshes of it name them without pinging again.
"""

from __future__ import annotations

from bot import decisions
from bot.common import channel_tz, clean_tags
from bot.context import Actor, Deps
from bot.errors import UsageError
from bot.parser import Command, join_text, parse_user, split_pipe
from bot.signoff import rules
from bot.signoff.roles import Roles, parse_targets
from bot.timeparse import parse_when
from bot.views import Reply, mention

VERB = "propose"


def cmd_propose(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    before, after = split_pipe(cmd.args)
    title = join_text(before)
    rationale = join_text(after) if after is not None else None
    if not title:
        raise UsageError("A proposal needs a title.", verb=VERB)
    approvers = [
        t.id
        for t in parse_targets(
            cmd.options.get("approvers", []), actor=actor, verb=VERB, role="approvers"
        )
    ]
    if not approvers:
        raise UsageError(
            "Name who signs it off: approvers:@ana,@ben (their stances decide).", verb=VERB
        )
    consulted = [
        t.id
        for t in parse_targets(
            cmd.options.get("consulted", []), actor=actor, verb=VERB, role="consulted"
        )
    ]
    informed = parse_targets(
        cmd.options.get("informed", []), actor=actor, verb=VERB, role="informed", channels=True
    )
    rule = (cmd.option("rule") or "all").lower()
    if rule not in rules.RULES:
        raise UsageError(f"rule is one of {', '.join(rules.RULES)}.", verb=VERB)
    owner_text = cmd.option("owner")
    owner = (
        parse_user(owner_text, verb=VERB, mentions=actor.mention_map())
        if owner_text
        else actor.user
    )
    tags = clean_tags(cmd.options.get("tag", []))
    with deps.db.uow() as session:
        now = deps.clock.now()
        due_text = cmd.option("due")
        due = None
        if due_text is not None:
            due = parse_when(due_text, now=now, tz=channel_tz(session, actor), verb=VERB)
            if due <= now:
                raise UsageError("The due time must be in the future.", verb=VERB)
        if rule == "consent" and due is None:
            raise UsageError(
                "rule:consent needs due: — it is accepted at that time unless someone objects.",
                verb=VERB,
            )
        review = decisions.parse_review_option(deps, session, actor, cmd.option("review"), VERB)
        decision = decisions.create(
            deps,
            session,
            actor,
            title=title,
            rationale=rationale or None,
            owner=owner,
            tags=tags,
            status="proposed",
            rule=rule,
            due=due,
            review=review,
            roles=Roles(approvers, consulted, informed),
        )
        reply = decisions.view(deps, session, actor, decision, full=False)
    reply.text = (
        f"Proposed D-{decision.number}: {title} — "
        f"{', '.join(mention(a) for a in approvers)}, please sign it off"
    )
    reply.notify = tuple(approvers)
    return reply


__all__ = ["cmd_propose"]
