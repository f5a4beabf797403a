"""Decisions: record, list and search, change status (with supersede links), show.

A decision with a rule is a proposal under sign-off (`bot/signoff/`): its status is then settled
by its approvers, or by hand by its owner or a workspace admin, which is recorded as an override
with the stances standing at that moment. Nobody else changes the status of a decision they
neither made nor own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select

from bot import links as object_links
from bot.common import (
    audit,
    channel_tz,
    channel_tz_column,
    channel_tz_read,
    clean_tag,
    clean_tags,
    day,
    history_view,
    load,
    tags_of,
    when,
)
from bot.context import Actor, Deps, Event
from bot.effects import Changed, Effect, Posted
from bot.errors import Conflict, Forbidden, UsageError
from bot.paging import Listing, page_query
from bot.parser import Command, join_text, parse_ref, parse_user, split_pipe
from bot.signoff import roles as signoff_roles
from bot.signoff import settling
from bot.signoff import view as signoff_view
from bot.timeparse import parse_review, parse_since, parse_when
from bot.views import Context, Heading, Later, Line, ListBlock, Reply, Section, counted, mention
from storage.db import UnitOfWork, json_list, listed
from storage.models import Decision, DecisionTag, Poll, Question

STATUSES = ("proposed", "accepted", "rejected", "superseded")

# The list's base query, built once and bound per call: building the WHERE and ORDER BY of an
# ORM select (and its cache key) every time was a third of a plain `decisions`. Filters are
# added with .where(), which SQL renders before the ORDER BY all the same. Plain rows of the
# columns the list shows, against the tables: a page of ORM objects (identity map, state, the
# JSON columns decoded, tags loaded per page through the relationship) cost 4.6 ms for forty
# decisions, on every `decisions`.
_D = cast(Table, Decision.__table__)
_DT = cast(Table, DecisionTag.__table__)
_CHANNEL_DECISIONS = (
    select(
        _D.c.id,
        _D.c.number,
        _D.c.title,
        _D.c.rationale,
        _D.c.status,
        _D.c.owner,
        _D.c.created_by,
        _D.c.created_at,
        _D.c.review_at,
        channel_tz_column(bindparam("scope_workspace"), bindparam("scope_channel")),
        select(json_list(_DT.c.tag))
        .where(_DT.c.decision_id == _D.c.id)
        .scalar_subquery()
        .label("tags"),
    )
    .where(
        _D.c.workspace == bindparam("scope_workspace"),
        _D.c.channel == bindparam("scope_channel"),
    )
    .order_by(_D.c.created_at.desc(), _D.c.number.desc())
)
_CHANNEL_LISTING = Listing(_CHANNEL_DECISIONS)
"""`decisions` with no words, tag:, status: or since: (the common case), on the raw cursor."""


def snapshot(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": decision.title,
        "rationale": decision.rationale,
        "status": decision.status,
        "owner": decision.owner,
        "tags": tags_of(decision),
    }
    if decision.rule:
        out["rule"] = decision.rule
        out["due"] = decision.due_at.isoformat() if decision.due_at else None
    if decision.review_at:
        out["review"] = decision.review_at.isoformat()
    return out


def may_change(deps: Deps, actor: Actor, decision: Decision) -> bool:
    """Its maker, its owner, or a workspace admin."""
    return (
        actor.user in (decision.created_by, decision.owner)
        or actor.is_admin
        or actor.user in deps.admins
    )


def refuse_stranger(deps: Deps, actor: Actor, decision: Decision, what: str) -> None:
    if not may_change(deps, actor, decision):
        who = [mention(decision.created_by)]
        if decision.owner and decision.owner != decision.created_by:
            who.append(mention(decision.owner))
        raise Forbidden(
            f"Only {' or '.join(who)} or a workspace admin can {what} D-{decision.number}."
        )


def parse_review_option(
    deps: Deps, session: UnitOfWork, actor: Actor, text: str | None, verb: str
) -> datetime | None:
    """`review:3m` / `review:2027-03-01`: a date in the future, when the owner is asked to
    keep or revisit the decision."""
    if text is None or text.lower() in ("none", "never", "-"):
        return None
    now = deps.clock.now()
    moment = parse_review(text, now=now, tz=channel_tz(session, actor), verb=verb)
    if moment <= now:
        raise UsageError("The review date must be in the future.", verb=verb)
    return moment


def create(
    deps: Deps,
    session: UnitOfWork,
    actor: Actor,
    *,
    title: str,
    rationale: str | None = None,
    owner: str | None = None,
    tags: list[str] | None = None,
    status: str = "accepted",
    question_id: int | None = None,
    poll_id: int | None = None,
    frozen_tally: dict[str, Any] | None = None,
    rule: str | None = None,
    due: datetime | None = None,
    review: datetime | None = None,
    roles: signoff_roles.Roles | None = None,
) -> Decision:
    """Record a decision in the caller's transaction (used by `decide`, `propose`, `answer …
    decide` and `close … decide`, so the decision and its cause commit together). A `rule`
    and `roles` make it a proposal under sign-off."""
    now = deps.clock.now()
    decision = Decision(
        workspace=actor.workspace,
        channel=actor.channel,
        number=deps.db.next_number(session, actor.workspace, "D"),
        title=title,
        rationale=rationale,
        status=status,
        owner=owner,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
        question_id=question_id,
        poll_id=poll_id,
        frozen_tally=frozen_tally,
        rule=rule,
        due_at=due,
        review_at=review,
    )
    decision.tags = [DecisionTag(tag=t) for t in sorted(set(tags or []))]
    session.add(decision)
    session.flush()
    after = snapshot(decision)
    if roles is not None:
        signoff_roles.store(session, decision.id, roles)
        after |= roles.as_json()
    audit(
        session,
        actor,
        now=now,
        action="create",
        kind="decision",
        obj=decision,
        after=after,
    )
    deps.emit(
        session,
        Event(
            "decision.recorded",
            actor.workspace,
            actor.channel,
            actor.platform,
            {"id": f"D-{decision.number}", **after},
        ),
    )
    return decision


def cmd_decide(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    before, after = split_pipe(cmd.args)
    title = join_text(before)
    rationale = join_text(after) if after is not None else None
    if not title:
        raise UsageError("A decision needs a title.", verb="decide")
    status = (cmd.option("status") or "accepted").lower()
    if status not in ("proposed", "accepted", "rejected"):
        raise UsageError(
            "A new decision's status is proposed, accepted or rejected.", verb="decide"
        )
    owner_text = cmd.option("owner")
    owner = (
        parse_user(owner_text, verb="decide", mentions=actor.mention_map()) if owner_text else None
    )
    tags = clean_tags(cmd.options.get("tag", []))
    with deps.db.uow() as session:
        review = parse_review_option(deps, session, actor, cmd.option("review"), "decide")
        decision = create(
            deps,
            session,
            actor,
            title=title,
            rationale=rationale or None,
            owner=owner,
            tags=tags,
            status=status,
            review=review,
        )
        reply = view(deps, session, actor, decision, full=False)
    reply.text = f"Recorded D-{decision.number}: {decision.title}"
    reply.kind = "decision"
    return reply


MAX_SEARCH_TERMS = 20
"""Words plus tags in one search. Each is a condition of its own: a thousand words made SQLite
fail ("Expression tree is too large") and PostgreSQL take seconds, for no better answer."""


def _like(word: str) -> str:
    """A substring pattern matching the word literally (% and _ are not wildcards here)."""
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def cmd_decisions(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = [w for w in cmd.words() if w]
    tags = cmd.options.get("tag", [])
    if len(words) + len(tags) > MAX_SEARCH_TERMS:
        raise UsageError(
            f"Search with at most {MAX_SEARCH_TERMS} words and tags "
            f"(this had {len(words) + len(tags)}); the fewest that narrow it work best.",
            verb="decisions",
        )
    with deps.db.uow() as session:
        stmt = _CHANNEL_DECISIONS
        for word in words:
            pattern = _like(word)
            stmt = stmt.where(
                or_(
                    _D.c.title.ilike(pattern, escape="\\"),
                    _D.c.rationale.ilike(pattern, escape="\\"),
                )
            )
        for tag in tags:
            stmt = stmt.where(
                _D.c.id.in_(select(_DT.c.decision_id).where(_DT.c.tag == clean_tag(tag)))
            )
        status = cmd.option("status")
        if status:
            if status.lower() not in STATUSES:
                raise UsageError(f"Status is one of {', '.join(STATUSES)}.", verb="decisions")
            stmt = stmt.where(_D.c.status == status.lower())
        since = cmd.option("since")
        if since:
            tz = channel_tz(session, actor)
            moment = parse_since(since, now=deps.clock.now(), tz=tz, verb="decisions")
            stmt = stmt.where(_D.c.created_at >= moment)
        scope = {"scope_workspace": actor.workspace, "scope_channel": actor.channel}
        if stmt is _CHANNEL_DECISIONS:
            page = _CHANNEL_LISTING.page(session, scope, cmd)
        else:
            page = page_query(session, stmt, scope, cmd, entities=False)
        rows = page.rows
        if rows:
            tz = channel_tz_read(session, actor, rows[0].channel_tz)
        lines = tuple(
            Line(
                f"D-{d.number}",
                d.title,
                f"{d.status} · {day(d.created_at, tz)}"
                + (f" · {mention(d.owner)}" if d.owner else ""),
            )
            for d in rows
        )
        data = Later(
            lambda: {
                "decisions": [_json(d, sorted(listed(d.tags))) for d in rows],
                "page": page.to_json(),
            }
        )
    title = "Decisions" + (f" matching “{' '.join(words)}”" if words else "")
    blocks: list[Any] = [
        Heading(title),
        ListBlock(
            lines,
            empty="No decisions match.",
            more_hint="Narrow it with words, tag: or since:.",
        ),
    ]
    more = page.more()
    if more:
        blocks.append(more)
    return Reply(
        ok=True,
        kind="list",
        text=counted(page.total, "decision"),
        blocks=blocks,
        data=data,
    )


def cmd_status(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 2:
        raise UsageError("Give a decision id and a status.", verb="status")
    ref = parse_ref(words[0], verb="status", expect="D")
    new_status = words[1].lower()
    if new_status not in STATUSES:
        raise UsageError(f"Status is one of {', '.join(STATUSES)}.", verb="status")
    by_text = cmd.option("by")
    if by_text and new_status != "superseded":
        raise UsageError("by: goes with superseded.", verb="status")
    effects: tuple[Effect, ...] = ()
    with deps.db.uow() as session:
        now = deps.clock.now()
        decision = load(session, actor, ref, for_update=True)
        refuse_stranger(deps, actor, decision, "change the status of")
        if decision.status == new_status and not by_text:
            raise Conflict(f"{ref} is already {new_status}.")
        under_signoff = decision.rule is not None
        if under_signoff and decision.status == "proposed" and new_status != "superseded":
            # The owner or an admin decides by hand: an override, with the stances standing.
            settling.settle(deps, session, actor, decision, new_status, how="override", now=now)
            reply = view(deps, session, actor, decision, full=False)
            reply.text = (
                f"{ref} is now {new_status} (an override; the stances standing are recorded)"
            )
            reply.receipt = True
            reply.effects = (Changed(str(ref), "status"),)
            reply.blocks.insert(0, Context(f"✓ {reply.text}"))
            return reply
        if under_signoff and new_status == "proposed":
            settling.reopen(deps, session, actor, decision, now=now, why="status")
            reply = view(deps, session, actor, decision, full=False)
            reply.text = f"{ref} is proposed again; its approvers are asked anew"
            reply.notify = tuple(signoff_roles.load(session, decision.id).approvers)
            reply.effects += (Changed(str(ref), "status"),)
            return reply
        before = snapshot(decision)
        if by_text:
            by_ref = parse_ref(by_text, verb="status", expect="D")
            if by_ref == ref:
                raise UsageError("A decision cannot supersede itself.", verb="status")
            newer = load(session, actor, by_ref)
            decision.superseded_by_id = newer.id
            audit(
                session,
                actor,
                now=now,
                action="supersedes",
                kind="decision",
                obj=newer,
                after={"supersedes": str(ref)},
            )
        elif new_status != "superseded":
            decision.superseded_by_id = None
        decision.status = new_status
        decision.updated_at = now
        audit(
            session,
            actor,
            now=now,
            action="status",
            kind="decision",
            obj=decision,
            before=before,
            after=snapshot(decision) | ({"superseded_by": by_text.upper()} if by_text else {}),
        )
        deps.emit(
            session,
            Event(
                "decision.changed",
                actor.workspace,
                actor.channel,
                actor.platform,
                {"id": str(ref), **snapshot(decision)},
            ),
        )
        if under_signoff:
            effects = (Changed(str(ref), "status"),)
        reply = view(deps, session, actor, decision, full=False)
    reply.text = f"{ref} is now {new_status}" + (f" (by {by_text.upper()})" if by_text else "")
    reply.effects += effects
    return reply


def _json(decision: Any, tags: list[str] | None = None) -> dict[str, Any]:
    """A decision (or a listed row of one, with its `tags`) as the JSON replies carry."""
    return {
        "id": f"D-{decision.number}",
        "title": decision.title,
        "rationale": decision.rationale,
        "status": decision.status,
        "owner": decision.owner,
        "tags": tags_of(decision) if tags is None else tags,
        "created_by": decision.created_by,
        "created_at": decision.created_at.isoformat(),
        "review": decision.review_at.isoformat() if decision.review_at else None,
    }


def links(session: UnitOfWork, decision: Decision) -> dict[str, Any]:
    """Everything this decision is connected to, both directions."""
    return links_many(session, [decision])[decision.id]


def links_many(session: UnitOfWork, records: list[Decision]) -> dict[int, dict[str, Any]]:
    """`links` for many decisions at once (an export): a query per kind of link, not a few per
    decision."""
    ids = [d.id for d in records]
    out: dict[int, dict[str, Any]] = {i: {} for i in ids}
    if not ids:
        return out

    def numbers(model: Any, wanted: set[int]) -> dict[int, int]:
        if not wanted:
            return {}
        found = session.execute(select(model.id, model.number).where(model.id.in_(wanted)))
        return {i: n for i, n in found.all()}

    newer = numbers(Decision, {d.superseded_by_id for d in records if d.superseded_by_id})
    questions = numbers(Question, {d.question_id for d in records if d.question_id})
    polls = numbers(Poll, {d.poll_id for d in records if d.poll_id})
    older: dict[int, list[int]] = {}
    for newer_id, number in session.execute(
        select(Decision.superseded_by_id, Decision.number).where(Decision.superseded_by_id.in_(ids))
    ).all():
        if newer_id is not None:
            older.setdefault(newer_id, []).append(number)
    by_hand = object_links.linked_many(session, "decision", ids)
    for d in records:
        found = out[d.id]
        if d.superseded_by_id in newer:
            found["superseded_by"] = f"D-{newer[d.superseded_by_id]}"
        if d.id in older:
            found["supersedes"] = [f"D-{n}" for n in sorted(older[d.id])]
        if d.question_id in questions:
            found["question"] = f"Q-{questions[d.question_id]}"
        if d.poll_id in polls:
            found["poll"] = f"P-{polls[d.poll_id]}"
        if by_hand.get(d.id):
            found["linked"] = by_hand[d.id]
    return out


def view(deps: Deps, session: UnitOfWork, actor: Actor, decision: Decision, *, full: bool) -> Reply:
    """A decision as a message. A proposal's is its live message while it is open: each
    approver's stance, advice from others, and the ways to answer."""
    tz = channel_tz(session, actor)
    ref = f"D-{decision.number}"
    linked = links(session, decision)
    fields = [
        ("Status", decision.status),
        ("Owner", mention(decision.owner)),
        ("Date", day(decision.created_at, tz)),
        ("By", mention(decision.created_by)),
    ]
    if decision.rule:
        fields.insert(1, ("Rule", decision.rule))
        if decision.due_at:
            fields.insert(2, ("Due", when(decision.due_at, tz)))
    if decision.review_at:
        fields.append(("Review", when(decision.review_at, tz)))
    if decision.tags:
        fields.append(("Tags", ", ".join(tags_of(decision))))
    blocks: list[Any] = [Heading(f"{ref} · {decision.title}")]
    blocks.append(Section(decision.rationale or "_No rationale recorded._", tuple(fields)))
    data = _json(decision) | {"links": linked}
    effects: tuple[Effect, ...] = ()
    if decision.rule:
        proposal = signoff_view.render(deps, session, decision, tz, full=full)
        blocks += proposal.blocks
        data["signoff"] = proposal.data
        if proposal.live:
            effects = (Posted(ref),)
    link_text = []
    if "superseded_by" in linked:
        link_text.append(f"superseded by {linked['superseded_by']}")
    if "supersedes" in linked:
        link_text.append(f"supersedes {', '.join(linked['supersedes'])}")
    if "question" in linked:
        link_text.append(f"answers {linked['question']}")
    if "poll" in linked:
        link_text.append(f"from poll {linked['poll']}")
    if "linked" in linked:
        link_text.append(f"linked to {', '.join(linked['linked'])}")
    if link_text:
        blocks.append(Context("Links: " + "; ".join(link_text)))
    if decision.frozen_tally:
        data["tally"] = decision.frozen_tally
        winner = decision.frozen_tally.get("winner")
        blocks.append(
            Context(
                f"Frozen tally of {linked.get('poll', 'the poll')}: winner "
                f"{winner if winner else 'none (tie)'}; ranking "
                + " > ".join(decision.frozen_tally.get("ranking", []))
            )
        )
    if full:
        history_blocks, data["history"] = history_view(session, "decision", decision.id, tz)
        blocks += history_blocks
    return Reply(
        ok=True,
        kind="decision",
        text=f"{ref}: {decision.title}",
        blocks=blocks,
        data=data,
        effects=effects,
    )


def edit(
    deps: Deps, session: UnitOfWork, actor: Actor, decision: Decision, cmd: Command
) -> dict[str, Any]:
    """Apply `edit D-n field:value…`; returns the before snapshot for the audit row. A proposal
    is its driver's: what the approvers are asked to sign off, and when, is changed only by its
    maker, its owner or a workspace admin."""
    if decision.rule is not None:
        refuse_stranger(deps, actor, decision, "edit")
    before = snapshot(decision)
    for key, values in cmd.options.items():
        value = values[-1]
        if key == "due":
            decision.due_at = _edit_due(deps, session, actor, decision, value)
        elif key == "review":
            decision.review_at = parse_review_option(deps, session, actor, value, "edit")
        elif key == "title":
            decision.title = value.strip()
        elif key == "rationale":
            decision.rationale = value.strip() or None
        elif key == "owner":
            decision.owner = parse_user(value, verb="edit", mentions=actor.mention_map())
        elif key in ("tag", "tags"):
            tags = clean_tags(values)
            decision.tags = [DecisionTag(tag=t) for t in tags]
        else:
            raise UsageError(
                f"A decision has no `{key}` to edit; use title, rationale, owner, tags, due "
                "(a proposal's) or review.",
                verb="edit",
            )
    if not decision.title:
        raise UsageError("The title cannot be empty.", verb="edit")
    return before


def _edit_due(
    deps: Deps, session: UnitOfWork, actor: Actor, decision: Decision, value: str
) -> datetime | None:
    ref = f"D-{decision.number}"
    if decision.rule is None:
        raise UsageError(f"{ref} is not a proposal, so it has no due time.", verb="edit")
    if decision.status != "proposed":
        raise Conflict(f"{ref} is {decision.status}; its due time no longer matters.")
    if value.lower() in ("none", "never", "-"):
        if decision.rule == "consent":
            raise UsageError("A consent proposal needs a due time.", verb="edit")
        return None
    now = deps.clock.now()
    moment = parse_when(value, now=now, tz=channel_tz(session, actor), verb="edit")
    if moment <= now:
        raise UsageError("The due time must be in the future.", verb="edit")
    return moment


__all__ = [
    "cmd_decide",
    "cmd_decisions",
    "cmd_status",
    "create",
    "edit",
    "may_change",
    "refuse_stranger",
    "view",
]
