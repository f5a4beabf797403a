"""Block Kit rendering stays inside Slack's limits, whatever the engine hands it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack import blocks
from bot.views import (
    Actions,
    BarRow,
    Bars,
    Button,
    Context,
    Divider,
    Form,
    FormField,
    Heading,
    Line,
    ListBlock,
    Pre,
    Reply,
    Section,
)


def _reply(*view: object) -> Reply:
    return Reply(ok=True, kind="list", text="x", blocks=list(view))  # type: ignore[arg-type]


def test_a_two_hundred_item_list_is_cut_with_a_count_and_the_views_hint() -> None:
    lines = tuple(Line(f"D-{n}", f"Decision {n} " + "w" * 80, "accepted") for n in range(200))
    rendered = blocks.render(
        _reply(Heading("Decisions"), ListBlock(lines, more_hint="Narrow it with tag:."))
    )
    assert len(rendered) <= blocks.MESSAGE_BLOCKS
    assert all(len(b["text"]["text"]) <= 3000 for b in rendered if b["type"] == "section")
    last = rendered[-1]
    assert last["type"] == "context"
    assert last["elements"][0]["text"] == "… and 160 more. Narrow it with tag:."
    assert "*D-0*  Decision 0" in rendered[1]["text"]["text"]


def test_many_blocks_end_in_a_note_instead_of_an_error() -> None:
    view = [Section(f"Section {n}") for n in range(120)]
    rendered = blocks.render(_reply(*view))
    assert len(rendered) == 50
    assert rendered[-1]["type"] == "context"
    assert "71 more blocks" in rendered[-1]["elements"][0]["text"]
    home = blocks.render(_reply(*view), limit=blocks.VIEW_BLOCKS)
    assert len(home) == 100


def test_long_texts_fields_and_buttons_are_clipped_to_slacks_sizes() -> None:
    fields = tuple((f"Field {n}", "v" * 3000) for n in range(23))
    buttons = tuple(Button("L" * 200, f"vote P-1 {n}") for n in range(12))
    rendered = blocks.render(
        _reply(
            Heading("H" * 400),
            Section("t" * 5000, fields),
            Pre("p" * 5000),
            Context("c" * 5000),
            Actions(buttons),
        )
    )
    header, *rest = rendered
    assert len(header["text"]["text"]) == 150
    sections = [b for b in rest if b["type"] == "section"]
    assert [len(s.get("fields", [])) for s in sections[:3]] == [10, 10, 3]
    assert all(len(f["text"]) <= 2000 for s in sections for f in s.get("fields", []))
    assert all(len(s["text"]["text"]) <= 3000 for s in sections if "text" in s)
    context = next(b for b in rest if b["type"] == "context")
    assert len(context["elements"][0]["text"]) <= 2000
    actions = [b for b in rest if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [5, 5, 2]
    elements = [e for a in actions for e in a["elements"]]
    assert all(len(e["text"]["text"]) == 75 for e in elements)
    assert [e["action_id"] for e in elements] == [f"align_cmd_{n}" for n in range(12)]


def test_mentions_pass_and_everything_else_is_escaped() -> None:
    (section,) = blocks.render(_reply(Section("<@U0ANA00001|ana> & <!here> in <#C0PROD001>")))
    assert section["text"]["text"] == "<@U0ANA00001|ana> &amp; &lt;!here&gt; in <#C0PROD001>"


_REF_KEEP = re.compile(r"<(?:[@#][A-Z0-9]+(?:\|[^<>]*)?)>")
_REF_FENCE = re.compile(r"`{3,}")


def _reference_escape(text: str) -> str:
    """escape as it was before its fast paths: the straightforward definition."""
    out: list[str] = []
    last = 0
    for match in _REF_KEEP.finditer(text):
        out.append(_reference_plain(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_reference_plain(text[last:]))
    return "".join(out)


def _reference_plain(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _REF_FENCE.sub(lambda m: "'" * len(m.group(0)), text)


# Pieces that make mentions, near-mentions and everything escape treats specially.
_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "&",
        "@",
        "#",
        "|",
        "`",
        "``",
        "```",
        "````",
        "U0",
        "C1",
        "ab",
        " ",
        "\n",
        "·",
        "é",
        "🙂",
        "<@U0USER0003>",
        "<#C0PROD001|prod>",
        "<@U1|a & b>",
        "<@U1|x```y>",
        "<!here>",
        "<@u1>",
        "<@>",
        "<@U1|",
        "&amp;",
        "&lt;",
    ]
)
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=30).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_TEXT)
def test_escape_equals_the_straightforward_version_for_any_text(text: str) -> None:
    assert blocks.escape(text) == _reference_escape(text)
    assert blocks._escape_plain(text) == _reference_plain(text)


_LINE = "Q-3 Bench question 3? · open · <@U0USER0003> · due Fri 2026-11-27 16:04 UTC\n"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("", ""),
        ("plain · text", "plain · text"),
        (_LINE * 20, _LINE * 20),
        ("R&D <b> <@U1>", "R&amp;D &lt;b&gt; <@U1>"),
        ("<@U1> > 2", "<@U1> &gt; 2"),
        ("<<@U1>>", "&lt;<@U1>&gt;"),
        ("<@U1|a & ```b> ```", "<@U1|a & ```b> '''"),
        ("<@U1|a>b>", "<@U1|a>b&gt;"),
        ("``<@U1>`", "``<@U1>`"),
        ("````x <#C1>", "''''x <#C1>"),
        ("<@u1> <!channel>", "&lt;@u1&gt; &lt;!channel&gt;"),
    ],
)
def test_escape_examples(text: str, escaped: str) -> None:
    assert blocks.escape(text) == escaped == _reference_escape(text)


def test_bars_divider_and_a_ballot_form() -> None:
    rows = (BarRow("1. Date", "4", 1.0, "★"), BarRow("2. Scope", "2", 0.5))
    form = Form("P-3", "ranked", "Rank", (FormField("rank1", "Choice 1", "choice", (("1", "A"),)),))
    rendered = blocks.render(_reply(Bars(rows), Divider(), form))
    bars, divider, button = rendered
    assert bars["text"]["text"] == ("`████████████` *4*  1. Date ★\n`██████░░░░░░` *2*  2. Scope")
    assert divider == {"type": "divider"}
    assert button["elements"][0]["action_id"] == "align_form"
    assert button["elements"][0]["value"] == "P-3"


def test_an_error_reply_shows_its_message_and_usage() -> None:
    error = Reply(ok=False, kind="error", text="bad", error="Bad input.", usage="vote <P-ID> …")
    rendered = blocks.render(error)
    assert rendered[0]["text"]["text"] == ":warning: Bad input."
    assert rendered[1]["elements"][0]["text"] == "vote &lt;P-ID&gt; …"
