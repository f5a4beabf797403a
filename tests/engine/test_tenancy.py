"""An object lives in its workspace and channel: from anywhere else its id answers "not found",
changes nothing, and no list or export shows it — a title must never leak."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from adapters.bootstrap import App
from bot.context import Actor
from bot.views import Reply
from tests.engine.dump import dump

HERE = Actor("local", "general", "pm", is_admin=True)
ELSEWHERE = {
    "other channel": Actor("local", "secret", "pm", is_admin=True),
    "other workspace": Actor("acme", "general", "pm", is_admin=True),
}
OBJECTS = (
    "decide {} plan",
    "item {} A",
    "item {} B",
    "ask {} question?",
    'poll "{} poll?" "x" "y"',
)


def ok(app: App, actor: Actor, line: str) -> Reply:
    reply = app.engine.handle(actor, line)
    assert reply.ok, f"{line}: {reply.error}"
    return reply


def world(app: App, foreign: Actor) -> None:
    """Ours: D-1, I-1, I-2, Q-1, P-1 here. Theirs: D-2, I-3, I-4, Q-2, P-2 and P-3 (a
    prioritization), elsewhere — the same numbers whether elsewhere is a channel or a workspace."""
    for line in OBJECTS:
        ok(app, HERE, line.format("Ours"))
    if foreign.workspace != HERE.workspace:
        for line in OBJECTS:
            ok(app, replace(foreign, channel="padding"), line.format("Padding"))
    for line in OBJECTS:
        ok(app, foreign, line.format("Secret"))
    ok(app, foreign, "prioritize I-3 I-4")
    ok(app, foreign, "vote P-2 1")


FOREIGN_ID_COMMANDS = [
    ("show D-2", "D-2"),
    ("show i-3", "I-3"),
    ("show Q-2", "Q-2"),
    ("show P-2", "P-2"),
    ("status D-2 rejected", "D-2"),
    ("status D-1 superseded by:D-2", "D-2"),
    ("score I-3 impact:1", "I-3"),
    ("move I-3 now", "I-3"),
    ("answer Q-2 yes decide", "Q-2"),
    ("vote P-2 1", "P-2"),
    ("vote P-3 1 2", "P-3"),
    ("results P-2", "P-2"),
    ("close P-2 decide", "P-2"),
    ("edit D-2 title:Leaked", "D-2"),
    ("edit I-3 title:Leaked", "I-3"),
    ("edit Q-2 text:Leaked", "Q-2"),
    ("edit P-2 title:Leaked", "P-2"),
    ("nudge P-2", "P-2"),
    ("nudge Q-2", "Q-2"),
    ("prioritize I-1 I-3", "I-3"),
    ("prioritize I-3 I-4", "I-3"),
]


@pytest.mark.parametrize("where", list(ELSEWHERE))
def test_foreign_ids_are_not_found_and_change_nothing(app: App, where: str) -> None:
    world(app, ELSEWHERE[where])
    before = dump(app)
    for line, ref in FOREIGN_ID_COMMANDS:
        reply = app.engine.handle(HERE, line)
        assert (reply.ok, reply.kind) == (False, "error"), line
        assert reply.error == f"{ref} not found in this channel.", line
        assert "Secret" not in json.dumps(reply.to_json()), line
    assert dump(app) == before


LISTS = [
    "decisions",
    "decisions secret",
    "questions all",
    "priorities",
    "priorities lane:later",
    "roadmap",
    "export decisions",
    "export decisions format:json",
    "export items format:csv",
    "export questions format:json",
    "export polls format:json",
]


@pytest.mark.parametrize("where", list(ELSEWHERE))
def test_lists_and_exports_show_only_this_channel(app: App, where: str) -> None:
    world(app, ELSEWHERE[where])
    for line in LISTS:
        shown = json.dumps(ok(app, HERE, line).to_json(), ensure_ascii=False)
        assert "Secret" not in shown and "Padding" not in shown, line
    assert [d["id"] for d in ok(app, HERE, "decisions").data["decisions"]] == ["D-1"]
    assert [q["id"] for q in ok(app, HERE, "questions all").data["questions"]] == ["Q-1"]
    assert [i["id"] for i in ok(app, HERE, "priorities").data["items"]] == ["I-1", "I-2"]
    assert ok(app, HERE, "export polls format:json").data["count"] == 1


def test_the_owner_channel_still_sees_its_objects(app: App) -> None:
    secret = ELSEWHERE["other channel"]
    world(app, secret)
    assert ok(app, secret, "show D-2").data["title"] == "Secret plan"
    assert [d["id"] for d in ok(app, secret, "decisions").data["decisions"]] == ["D-2"]
