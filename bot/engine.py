"""The engine: one entry point from every surface — who, where, what — to a Reply.

Adapters call `Engine.handle(actor, text)` for typed commands and button clicks alike (a button
carries the command text) and `Engine.submit_form` for ballot forms. Known failures come back as
error replies with the verb's usage line; anything else is logged with a reference the user can
quote, and the transaction it happened in is rolled back, so nothing half-done is stored.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot import decisions, digest, exports, grammar, items, polls, questions, webhooks
from bot.common import audit, channel_tz, load, seen, when
from bot.context import Actor, Deps
from bot.errors import AlignError, Conflict, UnknownVerb, UsageError
from bot.parser import Command, parse, parse_ref
from bot.sanitize import refuse_unstorable_input
from bot.views import Context, Heading, Line, ListBlock, Reply, Section, mention
from storage.models import PollMessage

log = logging.getLogger("align.engine")
SEEN_EVERY = timedelta(minutes=10)
SEEN_LIMIT = 10_000

Handler = Callable[[Deps, Actor, Command], Reply]


class Engine:
    """The alignment engine. Holds no per-request state; safe to call from many threads."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._seen_at: dict[tuple[str, str, str], datetime] = {}
        self._seen_lock = threading.Lock()
        self.handlers: dict[str, Handler] = {
            "help": cmd_help,
            "decide": decisions.cmd_decide,
            "decisions": decisions.cmd_decisions,
            "status": decisions.cmd_status,
            "show": cmd_show,
            "item": items.cmd_item,
            "score": items.cmd_score,
            "move": items.cmd_move,
            "priorities": items.cmd_priorities,
            "roadmap": items.cmd_roadmap,
            "ask": questions.cmd_ask,
            "questions": questions.cmd_questions,
            "answer": questions.cmd_answer,
            "poll": polls.cmd_poll,
            "prioritize": polls.cmd_prioritize,
            "vote": polls.cmd_vote,
            "results": polls.cmd_results,
            "close": polls.cmd_close,
            "edit": cmd_edit,
            "nudge": cmd_nudge,
            "export": exports.cmd_export,
            "digest": digest.cmd_digest,
            "webhook": webhooks.cmd_webhook,
        }

    def handle(self, actor: Actor, text: str) -> Reply:
        """Run one command line. Never raises: every outcome is a Reply."""
        verb: str | None = None
        try:
            refuse_unstorable_input(actor, text)
            command = parse(text)
            verb = command.verb
            handler = self.handlers.get(command.verb)
            if handler is None:
                raise UsageError(
                    f"`{command.verb}` is not available in this version yet.", verb=command.verb
                )
            reply = handler(self.deps, actor, command)
            self._remember(actor)
            return reply
        except AlignError as exc:
            return self.error_reply(exc, verb)
        except Exception:
            ref = secrets.token_hex(4)
            log.exception(
                "command failed [ref %s] verb=%s workspace=%s channel=%s",
                ref,
                verb,
                actor.workspace,
                actor.channel,
            )
            return Reply(
                ok=False,
                kind="internal",
                text="Something went wrong",
                error=f"Something went wrong on our side (ref {ref}). Nothing was "
                "changed; please try again.",
                ephemeral=True,
            )

    def submit_form(
        self, actor: Actor, poll: str, mode: str, values: dict[str, str | None]
    ) -> Reply:
        """A ballot form (modal or card) submitted: the same vote path as a typed `vote`."""
        try:
            refuse_unstorable_input(actor, poll, mode, *values, *values.values())
            ref = parse_ref(poll, verb="vote", expect="P")
            tokens = polls.form_tokens(mode, values)
            if not tokens:
                raise UsageError("Fill in at least one choice.", verb="vote")
            reply = polls.record_vote(self.deps, actor, ref, tokens)
            self._remember(actor)
            return reply
        except AlignError as exc:
            return self.error_reply(exc, "vote")

    def view_poll(self, actor: Actor, poll: str) -> Reply:
        """The current poll message, for adapters refreshing a posted poll in place."""
        try:
            refuse_unstorable_input(actor, poll)
            ref = parse_ref(poll, verb="results", expect="P")
            with self.deps.db.uow() as session:
                return polls.poll_view(self.deps, session, actor, load(session, actor, ref))
        except AlignError as exc:
            return self.error_reply(exc, "results")

    def remember_poll_message(
        self, actor: Actor, poll: str, *, conversation: str, message_id: str
    ) -> None:
        """Note where a poll was posted on a platform, so later votes can update it in place."""
        ref = parse_ref(poll, verb="results", expect="P")
        with self.deps.db.uow() as session:
            found = load(session, actor, ref)
            session.add(
                PollMessage(
                    poll_id=found.id,
                    platform=actor.platform,
                    conversation=conversation,
                    message_id=message_id,
                    created_at=self.deps.clock.now(),
                )
            )

    def poll_messages(self, actor: Actor, poll: str) -> list[tuple[str, str]]:
        """(conversation, message id) of every posting of this poll on the actor's platform."""
        ref = parse_ref(poll, verb="results", expect="P")
        with self.deps.db.uow() as session:
            found = load(session, actor, ref)
            rows = session.execute(
                select(PollMessage.conversation, PollMessage.message_id)
                .where(PollMessage.poll_id == found.id, PollMessage.platform == actor.platform)
                .order_by(PollMessage.id)
            ).all()
        return [(c, m) for c, m in rows]

    def _remember(self, actor: Actor) -> None:
        """Note the person as a member of the channel, at most once per SEEN_EVERY per process:
        a write per command would make every read command take the write lock."""
        key = (actor.workspace, actor.channel, actor.user)
        now = self.deps.clock.now()
        with self._seen_lock:
            last = self._seen_at.get(key)
            if last is not None and timedelta(0) <= now - last < SEEN_EVERY:
                return
            if len(self._seen_at) >= SEEN_LIMIT:
                # Entries older than SEEN_EVERY decide nothing any more; keep the map bounded.
                self._seen_at = {k: t for k, t in self._seen_at.items() if now - t < SEEN_EVERY}
            self._seen_at[key] = now
        with self.deps.db.uow() as session:
            seen(session, actor, now)

    @staticmethod
    def error_reply(exc: AlignError, verb: str | None) -> Reply:
        usage = grammar.usage(exc.verb or verb) if not isinstance(exc, UnknownVerb) else None
        data: dict[str, Any] = {"code": exc.code}
        if isinstance(exc, UnknownVerb) and exc.suggestion:
            data["suggestion"] = exc.suggestion
        blocks: list[Any] = [Section(exc.message)]
        if usage:
            blocks.append(Context(usage))
        return Reply(
            ok=False,
            kind="error",
            text=exc.message,
            blocks=blocks,
            data=data,
            error=exc.message,
            usage=usage,
            ephemeral=True,
        )


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
                    "`vote P-4 2`, ranked `vote P-4 3 1 2`, dots `vote P-4 1=3 2=2`. "
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
        if ref.prefix == "D":
            return decisions.view(session, actor, obj, full=True)
        if ref.prefix == "I":
            return items.view(session, actor, obj, full=True)
        if ref.prefix == "Q":
            return questions.view(session, actor, obj, full=True)
        reply = polls.view_full(deps, session, actor, obj)
        reply.kind = "poll"
        return reply


EDITORS = {"D": decisions, "I": items, "Q": questions, "P": polls}


def cmd_edit(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1 or not cmd.options:
        raise UsageError("Give one id and at least one field:value.", verb="edit")
    ref = parse_ref(words[0], verb="edit")
    module: Any = EDITORS[ref.prefix]
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
        if ref.prefix == "P":
            reply = polls.poll_view(deps, session, actor, obj)
        else:
            reply = module.view(session, actor, obj, full=False)
    changed = [k for k in after if before.get(k) != after.get(k)]
    reply.text = f"Edited {ref}: {', '.join(changed)}"
    return reply


def cmd_nudge(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    if len(words) != 1:
        raise UsageError("Give a poll or question id.", verb="nudge")
    ref = parse_ref(words[0], verb="nudge", expect="PQ")
    with deps.db.uow() as session:
        tz = channel_tz(session, actor)
        obj = load(session, actor, ref)
        now = deps.clock.now()
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
            text = (
                f"Reminder: {', '.join(mention(p) for p in people)} — please vote on {ref} "
                f"“{obj.question}”{closes}."
            )
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
