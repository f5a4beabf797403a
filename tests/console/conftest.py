"""Conversation tests through the console adapter, zulip-style: a list of (what the person types,
what the bot answers) run as one dialog through `adapters.console.repl.Console` into a StringIO.

An expected answer is either `Exact("…")` — the whole rendered reply — or a string whose non-empty
lines must each appear, in order, as lines of the reply (key lines).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.bootstrap import App
from adapters.console.repl import Console, console_actor
from bot.clock import FakeClock


@dataclass(frozen=True)
class Exact:
    text: str


@dataclass(frozen=True)
class Advance:
    """A dialog step that moves the fake clock instead of typing."""

    delta: timedelta


Step = tuple[str, "str | Exact"] | Advance


def key_lines_in_order(expected: str, got: str) -> None:
    lines = [line.rstrip() for line in got.splitlines()]
    position = 0
    for want in (w.rstrip() for w in expected.strip("\n").splitlines()):
        if not want.strip():
            continue
        for index in range(position, len(lines)):
            if lines[index].strip() == want.strip():
                position = index + 1
                break
        else:
            raise AssertionError(f"missing line {want!r} (in order) in reply:\n{got}")


class Dialog:
    """One person (switchable with `:as`) chatting in the console."""

    def __init__(self, app: App, clock: FakeClock) -> None:
        self.out = io.StringIO()
        self.clock = clock
        self.console = Console(app.engine, console_actor("local", "general", "pm"), out=self.out)

    def say(self, line: str) -> str:
        start = self.out.tell()
        self.console.line(line)
        self.out.seek(start)
        answer = self.out.read()
        return answer.rstrip("\n")

    def run(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if isinstance(step, Advance):
                self.clock.advance(step.delta)
                continue
            said, expected = step
            got = self.say(said)
            if isinstance(expected, Exact):
                assert got == expected.text.strip("\n"), f"{said!r} answered:\n{got}"
            else:
                try:
                    key_lines_in_order(expected, got)
                except AssertionError as exc:
                    raise AssertionError(f"after {said!r}: {exc}") from None


@pytest.fixture
def dialog(app: App, clock: FakeClock) -> Dialog:
    return Dialog(app, clock)


Converse = Callable[[Sequence[Step]], None]
