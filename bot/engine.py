"""The engine: one entry point from every surface — who, where, what — to a Reply.

Adapters call `Engine.handle(actor, text)` for typed commands and button clicks alike (a button
carries the command text) and `Engine.submit_form` for ballot forms. Known failures come back as
error replies with the verb's usage line; anything else is logged with a reference the user can
quote, and the transaction it happened in is rolled back, so nothing half-done is stored.
"""

from __future__ import annotations

import functools
import importlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from bot import grammar, polls, postings
from bot.common import seen
from bot.context import Actor, Deps
from bot.errors import AlignError, UnknownVerb, UsageError
from bot.parser import Command, Token, parse, parse_ref
from bot.postings import UpdateClaim
from bot.sanitize import refuse_unstorable_input
from bot.views import Context, Reply, Section
from storage.db import transient

log = logging.getLogger("align.engine")
SEEN_EVERY = timedelta(minutes=10)
SEEN_LIMIT = 10_000
VERBS_REMEMBERED = 1024

Handler = Callable[[Deps, Actor, Command], Reply]


def _handler(verb: grammar.Verb) -> Handler:
    """The function the grammar names for a verb (`decisions.cmd_decide` under `bot/`)."""
    module, _, name = verb.handler.rpartition(".")
    found: Handler = getattr(importlib.import_module(f"bot.{module}"), name)
    return found


@functools.lru_cache(maxsize=VERBS_REMEMBERED)
def _verb_of(text: str) -> grammar.Verb | None:
    """The grammar's entry for the verb of a command line, or None when it does not parse (what
    an adapter asks before the command runs; `Engine.handle` answers the line itself).

    Remembered for the last VERBS_REMEMBERED lines: an adapter asks twice per command (whether
    it only reads, before recording it; whether it needs the person's profile, before running
    it), and people send the same lines again (`decisions`, a poll's buttons), each ask parsing
    the line anew. A line's verb depends on the line alone."""
    try:
        return grammar.BY_NAME[parse(text).verb]
    except Exception:  # whatever does not parse is answered by `handle`
        return None


class Engine:
    """The alignment engine. Holds no per-request state; safe to call from many threads."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._seen_at: dict[tuple[str, str, str], datetime] = {}
        self._seen_lock = threading.Lock()
        self.handlers: dict[str, Handler] = {v.name: _handler(v) for v in grammar.VERBS}

    def handle(self, actor: Actor, text: str) -> Reply:
        """Run one command line. Every outcome is a Reply, but for an error of the moment from
        the database (`storage.db.transient`: a deadlock, a lost connection), raised for the
        caller to run the command again (the inbox); a caller that does not, `answer`."""
        verb: str | None = None
        try:
            refuse_unstorable_input(actor, text)
            command = parse(text)
            verb = command.verb
            if grammar.BY_NAME[verb].reads:
                # Read transactions, no write lock; the note that the person was here (rare:
                # once per SEEN_EVERY) is a write of its own after them.
                with self.deps.db.reading():
                    reply = self.handlers[verb](self.deps, actor, command)
                self._remember(actor)
                return reply
            with self._one_transaction():
                reply = self.handlers[command.verb](self.deps, actor, command)
                self._remember(actor)
            return reply
        except AlignError as exc:
            return self.error_reply(exc, verb)
        except Exception as exc:
            if transient(exc):  # the caller's to run again (`_internal`)
                raise
            return self._internal(actor, verb)

    def answer(self, actor: Actor, text: str) -> Reply:
        """`handle`, for a caller that runs nothing again (the console, `align run`): an error
        of the moment is answered as any failure on our side is, with a reference."""
        try:
            return self.handle(actor, text)
        except Exception as exc:
            if not transient(exc):
                raise
            verb = _verb_of(text)
            return self._internal(actor, None if verb is None else verb.name)

    @staticmethod
    def only_reads(text: str) -> bool:
        """Whether the command line `text` only reads (its verb is marked `reads` in the
        grammar): it stores nothing, so an adapter may run it without recording the request
        first — run twice it does no harm, lost to a crash it loses no data. False for anything
        that does not parse: `handle` answers that."""
        verb = _verb_of(text)
        return verb is not None and verb.reads

    @staticmethod
    def _internal(actor: Actor, verb: str | None) -> Reply:
        """The answer to a command that failed on our side (logged, with a reference). Not
        for a conflict with other transactions or the connection lost (`storage.db.transient`:
        a deadlock, a serialization failure, a restart), which is raised to the caller
        instead: the inbox runs such a call again at once (`storage.db.attempted`), and in a
        group, alone once the group it met the error in is over — answered with this, it was
        marked answered and never counted (two groups of votes side by side on PostgreSQL,
        tests/inbox/test_runs_together.py)."""
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
        """A ballot form (modal or card) submitted: the same vote path as a typed `vote`; a
        refusal carries `field_errors` (by input name) for the form to show inline."""
        try:
            refuse_unstorable_input(actor, poll, mode, *values, *values.values())
            ref = parse_ref(poll, verb="vote", expect="P")
            with self._one_transaction():
                reply = polls.submit_form(self.deps, actor, ref, mode, values)
                self._remember(actor)
            return reply
        except AlignError as exc:
            reply = self.error_reply(exc, "vote")
        if reply.field_errors:
            try:
                form = polls.ballot_form(self.deps, actor, ref, reply.field_errors)
            except AlignError:
                form = None
            if form is not None:
                reply.blocks.append(form)
        return reply

    def submit_text(
        self,
        actor: Actor,
        command: str,
        text: str | None,
        *,
        field: str = "reason",
        into: str | None = None,
    ) -> Reply:
        """A button that asked for a line of text (`Button.ask`) was answered: its command runs
        with the text after `|` — the one path a typed `object D-7 | <why>` takes — or, for a
        button with `into`, as that option's value (`edit P-3` + "Tacos" runs as
        `edit P-3 add:"Tacos"`). The text is one token, taken as given (no quotes or options
        read in it). A refusal is put next to the input (`field_errors[field]`)."""
        verb: str | None = None
        try:
            refuse_unstorable_input(actor, command, text or "", into or "")
            parsed = parse(command)
            verb = parsed.verb
            answer = (text or "").strip()
            if into is not None:
                if into not in grammar.BY_NAME[verb].options:
                    raise UsageError(f"`{verb}` has no option `{into}:`.", verb=verb)
                if not answer:
                    raise UsageError("Write something first.", verb=verb)
                parsed.options.setdefault(into, []).append(answer)
            elif answer:
                parsed.args += [Token("|", pipe=True), Token(answer, quoted=True)]
            with self._one_transaction():
                reply = self.handlers[verb](self.deps, actor, parsed)
                self._remember(actor)
            # The button sits on the object's live message, which its effects update: the
            # reply only acknowledges (no second copy of the poll in the channel).
            reply.receipt = True
            return reply
        except AlignError as exc:
            reply = self.error_reply(exc, verb)
            reply.field_errors = reply.field_errors or {field: exc.message}
            return reply
        except Exception as exc:
            if transient(exc):  # the caller's to run again (`_internal`)
                raise
            return self._internal(actor, verb)

    @staticmethod
    def needs_profile(text: str) -> bool:
        """Whether running the command line `text` may read the person's profile (admin rights,
        their time zone), so an adapter should look it up first; False for a verb the grammar
        marks `profile=False` (a vote). True for anything that does not parse: `handle` answers
        that, and the lookup is only what it was before."""
        verb = _verb_of(text)
        return verb is None or verb.profile

    def live_view(self, actor: Actor, ref: str) -> Reply:
        """What the live message of `ref` (`P-3`) shows now, for adapters keeping it current."""
        try:
            refuse_unstorable_input(actor, ref)
            return postings.live_view(self.deps, actor, ref)
        except AlignError as exc:
            return self.error_reply(exc, "show")

    def remember_posting(
        self, actor: Actor, ref: str, *, conversation: str, message_id: str
    ) -> None:
        """Note where the live message of `ref` was posted on the actor's platform."""
        postings.remember(self.deps, actor, ref, conversation=conversation, message_id=message_id)

    def postings(self, actor: Actor, ref: str) -> list[tuple[str, str]]:
        """(conversation, message id) of every live message of `ref` on the actor's platform."""
        return postings.locations(self.deps, actor, ref)

    def forget_posting(self, actor: Actor, ref: str, *, conversation: str, message_id: str) -> None:
        """Stop updating a live message the platform says is gone."""
        postings.forget(self.deps, actor, ref, conversation=conversation, message_id=message_id)

    def posting_changed(self, actor: Actor, ref: str) -> int:
        """Count a change of `ref` on its live messages (shared by every replica)."""
        return postings.mark_changed(self.deps, actor, ref)

    def claim_posting_update(
        self, actor: Actor, ref: str, *, worker: str, lease: timedelta
    ) -> UpdateClaim | None:
        """Take the turn to update `ref`'s live messages that are behind, if nobody has it."""
        return postings.claim_update(self.deps, actor, ref, worker=worker, lease=lease)

    def finish_posting_update(
        self,
        claim: UpdateClaim,
        *,
        worker: str,
        next_update_at: datetime,
        failed: Mapping[int, datetime] | None = None,
    ) -> None:
        """Record what the updated messages show, and when they may be updated next; those
        whose edit `failed` (id → retry at) stay behind, one more failure counted, to be tried
        again from then."""
        postings.finish_update(
            self.deps, claim, worker=worker, next_update_at=next_update_at, failed=failed
        )

    def postings_behind(self, platforms: list[str]) -> list[tuple[Actor, str]]:
        """Live messages left behind by a worker that stopped updating them."""
        return postings.behind(self.deps, platforms)

    @contextmanager
    def _one_transaction(self) -> Iterator[None]:
        """A command and the note that its author was here (`_remember`) commit as one
        transaction (`Database.command`): its first unit of work opens it, the later ones are
        savepoints of it (as they are when the inbox runs a command), so a vote by someone new
        costs one commit, not two — on PostgreSQL each commit waits for the disk — and no
        savepoint. A refusal (`AlignError`) keeps what the command finished before it, as it
        did with a commit per unit of work; any other error rolls the whole command back."""
        with self.deps.db.command():
            try:
                yield
            except AlignError as exc:
                refused = exc
            else:
                return
        raise refused

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
        # In the command's transaction as it is: an upsert refuses nothing, so it needs no
        # savepoint of its own (an error in it rolls the command back, like any other).
        with self.deps.db.uow(savepoint=False) as session:
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
            field_errors=dict(exc.fields),
        )
