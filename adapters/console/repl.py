"""`align chat` and `align run`: the console surface of the one grammar.

Console-only lines switch who and where you are (`:as ana`, `:in roadmap`, `:workspace acme`);
everything else goes to the engine unchanged (a leading `/align` is fine too).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TextIO

from adapters.console.render import render
from bot.context import Actor
from bot.effects import Changed
from bot.engine import Engine
from bot.views import Reply

PROMPT = "align> "
CONSOLE_HELP = (
    "Console lines: `:as <user>` `:in <channel>` `:workspace <id>` `:who` `:quit`. "
    "Everything else is an Align command; `help` lists them."
)


def console_actor(workspace: str, channel: str, user: str) -> Actor:
    return Actor(
        workspace=workspace, channel=channel.lstrip("#"), user=user.lstrip("@"), platform="console"
    )


def emit(reply: Reply, *, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(reply.to_json(), ensure_ascii=False, default=str) + "\n")
    else:
        out.write(render(reply) + "\n")
    out.flush()


class Console:
    """A chat session in a terminal or over a pipe. Output is serialised with a lock because
    the scheduler may print a digest while you type."""

    def __init__(
        self, engine: Engine, actor: Actor, *, as_json: bool = False, out: TextIO | None = None
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.as_json = as_json
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def print_reply(self, reply: Reply) -> None:
        with self.lock:
            emit(reply, as_json=self.as_json, out=self.out)

    def print_text(self, text: str) -> None:
        with self.lock:
            if self.as_json:
                self.out.write(json.dumps({"ok": True, "kind": "console", "text": text}) + "\n")
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def line(self, text: str) -> bool:
        """Handle one input line; False means the user asked to quit."""
        text = text.strip()
        if not text or text.startswith("#"):
            return True
        if text.startswith(":"):
            return self._console_command(text)
        reply = self.engine.answer(self.actor, text)
        self.print_reply(reply)
        if reply.receipt and not self.as_json:
            # A terminal has no live message to refresh: a vote's receipt is followed by the
            # poll as its live message would now show it. (JSON Lines keep one object a line.)
            for effect in reply.effects:
                if isinstance(effect, Changed) and effect.reason == "vote":
                    self.print_reply(self.engine.live_view(self.actor, effect.ref))
        return True

    def _console_command(self, text: str) -> bool:
        name, _, arg = text[1:].partition(" ")
        arg = arg.strip()
        if name in ("q", "quit", "exit"):
            return False
        if name == "as" and arg:
            self.actor = replace(self.actor, user=arg.lstrip("@"))
        elif name == "in" and arg:
            self.actor = replace(self.actor, channel=arg.lstrip("#"))
        elif name == "workspace" and arg:
            self.actor = replace(self.actor, workspace=arg)
        elif name != "who":
            self.print_text(CONSOLE_HELP)
            return True
        self.print_text(
            f"You are @{self.actor.user} in #{self.actor.channel} ({self.actor.workspace})."
        )
        return True

    def run(self, lines: Iterable[str], *, prompt: Callable[[], None] | None = None) -> None:
        for text in lines:
            if not self.line(text):
                break
            if prompt:
                prompt()


def interactive_lines(console: Console) -> Iterable[str]:
    """Lines typed at a terminal, with history editing where readline exists."""
    with contextlib.suppress(ImportError):  # Windows has no readline
        import readline  # noqa: F401  (imported for its side effect on input())
    console.print_text("Align console — type `help`, or `:quit` to leave. " + CONSOLE_HELP)
    while True:
        try:
            yield input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            console.print_text("")
            return
