"""Text no database can store (NUL, lone surrogates) is refused at the engine's door with a clear
message, from every entry point; a search is capped at 20 words and tags; % and _ in a search
are plain characters — on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest

from adapters.bootstrap import App
from bot.context import Actor
from bot.decisions import MAX_SEARCH_TERMS
from tests.conftest import Chat
from tests.engine.dump import dump

ME = Actor("local", "general", "pm")
NUL = "\x00"
SURROGATES = ["\ud800", "\udfff", "\udc00", "\ud83d"]  # the last: half an emoji


@pytest.mark.parametrize("bad", [NUL, *SURROGATES], ids=["nul", "hi", "lo-end", "lo", "half"])
def test_every_entry_point_refuses_unstorable_text(app: App, chat: Chat, bad: str) -> None:
    chat.ok('poll "Spend?" "a" "b" mode:dots:5')
    before = dump(app)
    engine = app.engine
    replies = [
        engine.handle(ME, f"decide Use{bad}Postgres"),
        engine.handle(ME, f"decisions pricing{bad}"),
        engine.handle(ME, f"item SSO tag:a{bad}b"),
        engine.handle(Actor("local", "general", f"p{bad}m"), "decide Fine title"),
        engine.handle(Actor("local", f"gen{bad}", "pm"), "decisions"),
        engine.handle(Actor("local", "general", "pm", tz=f"Europe/{bad}"), "roadmap"),
        engine.submit_form(ME, "P-1", "dots", {"option1": f"2{bad}"}),
        engine.submit_form(ME, "P-1", "dots", {f"option{bad}": "2"}),
        engine.live_view(Actor("local", "general", f"p{bad}m"), "P-1"),
    ]
    for reply in replies:
        assert not reply.ok
        assert reply.kind == "error", reply.error
        assert reply.data["code"] == "usage"
        assert ("NUL" if bad == NUL else "broken character") in (reply.error or "")
    assert dump(app) == before


def test_fuzzed_lines_with_nul_and_surrogates_never_fail_inside(app: App, chat: Chat) -> None:
    chat.ok('poll "Ship?" "Date" "Scope"')
    chat.ok("decide Use Postgres")
    rng = random.Random(5)
    pieces = ["decide", "item", "ask", "poll", "vote", "P-1", "decisions", "edit D-1", "title:",
              "tag:", "\"x", "“y”", "1", "é", "🚀", NUL, *SURROGATES, " ", "|"]  # fmt: skip
    internal = []
    refused = 0
    for _ in range(400):
        line = "".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(1, 8)))
        reply = app.engine.handle(ME, line)
        if reply.kind == "internal":
            internal.append(line)
        if NUL in line or any(s in line for s in SURROGATES):
            assert not reply.ok, repr(line)
            refused += 1
    assert internal == []
    assert refused > 100  # the hostile lines were really exercised


def test_a_thousand_word_search_is_refused_with_a_message(app: App, chat: Chat) -> None:
    chat.ok("decide Use Postgres for billing")
    reply = chat.fails("decisions " + " ".join(f"w{n}" for n in range(1000)))
    assert reply.kind == "error"
    assert reply.error == (
        f"Search with at most {MAX_SEARCH_TERMS} words and tags (this had 1000); "
        "the fewest that narrow it work best."
    )
    words = " ".join(["postgres"] * (MAX_SEARCH_TERMS - 1))
    assert [d["id"] for d in chat.ok(f"decisions {words} billing").data["decisions"]] == ["D-1"]
    tags = " ".join(f"tag:t{n}" for n in range(MAX_SEARCH_TERMS))
    assert chat.fails(f"decisions postgres {tags}").data["code"] == "usage"


def test_percent_and_underscore_in_a_search_are_plain_characters(chat: Chat) -> None:
    chat.ok("decide Cut price by 20%")
    chat.ok("decide Rename snake_case fields")
    chat.ok("decide Use Postgres")
    found = [d["title"] for d in chat.ok("decisions %").data["decisions"]]
    assert found == ["Cut price by 20%"]
    assert [d["title"] for d in chat.ok("decisions _").data["decisions"]] == [
        "Rename snake_case fields"
    ]
    assert chat.ok("decisions 2_%").data["decisions"] == []
