"""The engine: one entry point from every surface — who, where, what — to a Reply.

Adapters call `Engine.handle(actor, text)` for typed commands and button clicks alike (a button
carries the command text) and `Engine.submit_form` for ballot forms. Known failures come back as
error replies with the verb's usage line; anything else is logged with a reference the user can
quote, and the transaction it happened in is rolled back, so nothing half-done is stored.
"""

from __future__ import annotations

import importlib
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot import grammar, polls
from bot.common import load, seen
from bot.context import Actor, Deps
from bot.errors import AlignError, UnknownVerb, UsageError
from bot.parser import Command, parse, parse_ref
from bot.views import Context, Reply, Section
from storage.models import PollMessage

log = logging.getLogger("align.engine")
SEEN_EVERY = timedelta(minutes=10)
SEEN_LIMIT = 10_000

Handler = Callable[[Deps, Actor, Command], Reply]


def _handler(verb: grammar.Verb) -> Handler:
    """The function the grammar names for a verb (`decisions.cmd_decide` under `bot/`)."""
    module, _, name = verb.handler.rpartition(".")
    found: Handler = getattr(importlib.import_module(f"bot.{module}"), name)
    return found


class Engine:
    """The alignment engine. Holds no per-request state; safe to call from many threads."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._seen_at: dict[tuple[str, str, str], datetime] = {}
        self._seen_lock = threading.Lock()
        self.handlers: dict[str, Handler] = {v.name: _handler(v) for v in grammar.VERBS}

    def handle(self, actor: Actor, text: str) -> Reply:
        """Run one command line. Never raises: every outcome is a Reply."""
        verb: str | None = None
        try:
            command = parse(text)
            verb = command.verb
            reply = self.handlers[command.verb](self.deps, actor, command)
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
