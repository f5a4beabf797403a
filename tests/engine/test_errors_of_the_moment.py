"""An error of the moment from the database (a lost connection, a deadlock: `storage.db.transient`)
is raised by `Engine.handle` to the inbox, which runs the command again; the console, which runs
nothing again, answers it as any failure on our side (`Engine.answer`), with a reference."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from adapters.console.repl import Console, console_actor
from tests.conftest import Chat


def _connection_lost(*_args: Any) -> Any:
    raise OperationalError(
        "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
    )


def _bug(*_args: Any) -> Any:
    raise RuntimeError("a bug of ours")


def test_handle_raises_an_error_of_the_moment_and_answers_any_other(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(chat.app.engine.handlers, "decisions", _connection_lost)
    with pytest.raises(OperationalError):
        chat.app.engine.handle(chat.actor(), "decisions")
    monkeypatch.setitem(chat.app.engine.handlers, "decisions", _bug)
    reply = chat.app.engine.handle(chat.actor(), "decisions")
    assert (reply.ok, reply.kind) == (False, "internal")


def test_the_console_answers_an_error_of_the_moment_with_a_reference(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(chat.app.engine.handlers, "decisions", _connection_lost)
    out = io.StringIO()
    console = Console(chat.app.engine, console_actor("local", "general", "pm"), out=out)
    assert console.line("decisions") is True  # the session goes on
    assert "Something went wrong on our side (ref " in out.getvalue()
    reply = chat.app.engine.answer(chat.actor(), "decisions")
    assert (reply.ok, reply.kind) == (False, "internal")
