"""The verbs that work on any kind of object, or on none: help, show, edit and nudge."""

from __future__ import annotations

from typing import Any

from bot import grammar, kinds, links, polls
from bot.common import audit, channel_tz, load, when
from bot.context import Actor, Deps
from bot.effects import Changed
from bot.errors import Conflict, UsageError
from bot.parser import Command, parse_ref
from bot.polls import reminding
from bot.signoff import asking
from bot.signoff.stances import ensure_open
from bot.views import Context, Divider, Heading, Line, ListBlock, Reply, Section, mention


def cmd_help(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if words:
        name = words[0].lower().lstrip("/")
        if name not in grammar.BY_NAME:
            suggestion = grammar.closest(name)
            hint = f" Did you mean `{suggestion}`?" if suggestion else ""
            raise UsageError(f"There is no command `{name[:30]}`.{hint}", verb="help")
        spec = grammar.BY_NAME[name]
        blocks: list[Any] = [Heading(spec.name), Section(spec.summary), Context(spec.usage)]
        if spec.example:
            blocks.append(Section(f"Example: `{spec.example}`"))
        if name == "poll":
            blocks.append(
                Section(
                    "Modes: single (one choice), multi (any number), ranked (an order; unranked "
                    "options share the bottom; counted by Schulze unless method:borda or irv), "
                    "dots:N (spread up to N points). Vote with option numbers or texts: "
                    "`vote P-4 2`, ranked `vote P-4 3 1 2`, dots `vote P-4 1=3 2=2`; a reason "
                    "after `|`: `vote P-4 2 | it ships sooner`. "
                    "max:N caps a multi ballot; public shows who chose what; results:hidden "
                    "keeps the tally until it closes; options:open lets anyone add an option "
                    '(`edit P-4 add:"…"`); every:week|2w|month with closes: opens a new poll '
                    "each period (`edit P-4 every:off` stops it). "
                    "Times: 2026-12-01, fri, friday 17:00, 17:00, 3d, 48h, 2w."
                )
            )
        return Reply(
            ok=True,
            kind="help",
            text=spec.usage,
            blocks=blocks,
            data={"verb": spec.name, "usage": spec.usage},
            ephemeral=True,
        )
    groups: dict[str, list[grammar.Verb]] = {}
    for spec in grammar.VERBS:
        groups.setdefault(spec.group, []).append(spec)
    blocks = [Heading("Align — keep the team aligned")]
    for group, specs in groups.items():
        blocks.append(
            ListBlock(
                tuple(Line(s.name, s.summary, s.usage) for s in specs), title=group.capitalize()
            )
        )
    blocks.append(Context("`help <command>` shows its usage and an example."))
    return Reply(
        ok=True,
        kind="help",
        text="Align commands",
        blocks=blocks,
        data={"verbs": [{"verb": s.name, "usage": s.usage} for s in grammar.VERBS]},
        ephemeral=True,
    )


def cmd_show(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1:
        raise UsageError("Give one id.", verb="show")
    ref = parse_ref(words[0], verb="show")
    with deps.db.uow() as session:
        obj = load(session, actor, ref)
        reply = kinds.module(ref.prefix).view(deps, session, actor, obj, full=True)
        if ref.prefix != "D":  # a decision's view names its links itself
            _add_links(reply, links.linked(session, ref.kind, obj.id))
        return reply


def _add_links(reply: Reply, linked: list[str]) -> None:
    """`link D-7 I-3` is read both ways: `show I-3` names D-7 (before the history)."""
    if not linked:
        return
    at = next((i for i, b in enumerate(reply.blocks) if isinstance(b, Divider)), len(reply.blocks))
    reply.blocks.insert(at, Context("Links: linked to " + ", ".join(linked)))
    reply.data["linked"] = linked


def cmd_edit(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1 or not cmd.options:
        raise UsageError("Give one id and at least one field:value.", verb="edit")
    ref = parse_ref(words[0], verb="edit")
    module = kinds.module(ref.prefix)
    with deps.db.uow() as session:
        now = deps.clock.now()
        obj = load(session, actor, ref, for_update=True)
        before = module.edit(deps, session, actor, obj, cmd)
        session.flush()
        after = module.snapshot(obj)
        if after == before:
            raise Conflict(f"Nothing changed on {ref}.")
        obj.updated_at = now
        audit(
            session,
            actor,
            now=now,
            action="edit",
            kind=ref.kind,
            obj=obj,
            before=before,
            after=after,
        )
        reply = module.view(deps, session, actor, obj, full=False)
    # Live messages of the object (a poll's, anywhere it was posted) show the old state.
    reply.effects += (Changed(str(ref), "edit"),)
    changed = [k for k in after if before.get(k) != after.get(k)]
    reply.text = f"Edited {ref}: {', '.join(changed)}"
    return reply


def cmd_nudge(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1:
        raise UsageError("Give a poll, question or proposal id.", verb="nudge")
    ref = parse_ref(words[0], verb="nudge", expect="PQD")
    with deps.db.uow() as session:
        tz = channel_tz(session, actor)
        obj = load(session, actor, ref)
        now = deps.clock.now()
        if ref.prefix == "D":
            ensure_open(obj, ref, tz)
            people = asking.waiting(session, obj)
            if not people:
                text = f"Every approver has answered {ref}."
                return Reply(
                    ok=True,
                    kind="nudge",
                    text=text,
                    blocks=[Section(text)],
                    data={"id": str(ref), "nudged": []},
                )
            return asking.reminder(obj, people, tz)
        if ref.prefix == "P":
            closed = polls.closed_on(obj, now)
            if closed:
                raise Conflict(f"{ref} closed on {when(closed, tz)}.")
            people = polls.non_voters(deps, session, obj)
            if not people:
                return Reply(
                    ok=True,
                    kind="nudge",
                    text=f"Everyone has voted on {ref}.",
                    blocks=[Section(f"Everyone has voted on {ref}. 🎉")],
                    data={"id": str(ref), "nudged": []},
                )
            closes = f" before it closes {when(obj.closes_at, tz)}" if obj.closes_at else ""
            if obj.anonymous:
                asked = f"Reminder: please vote on {ref} “{obj.question}”{closes}."
                stamp = now.isoformat(timespec="microseconds")
                key = f"nudge:{obj.workspace}:{ref}:{stamp}"
                reminded = reminding.privately(session, obj, people, asked, key=key, now=now)
                text = reminding.summary(obj, reminded)
                return Reply(
                    ok=True,
                    kind="nudge",
                    text=text,
                    blocks=[Section(text)],
                    data={"id": str(ref), "reminded": reminded, "privately": True},
                )
            text = reminding.in_channel(obj, people, closes)
        else:
            if obj.status != "open":
                raise Conflict(f"{ref} is already answered.")
            if not obj.owner:
                raise Conflict(
                    f"{ref} has no owner to remind; set one with `edit {ref} owner:@someone`."
                )
            people = [obj.owner]
            due = f" (due {when(obj.due_at, tz)})" if obj.due_at else ""
            text = f"Reminder: {mention(obj.owner)}, {ref} “{obj.text}” is waiting for you{due}."
    return Reply(
        ok=True,
        kind="nudge",
        text=text,
        blocks=[Section(text)],
        data={"id": str(ref), "nudged": people},
    )
