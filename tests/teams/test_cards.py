"""The Adaptive Card renderer over the engine's block vocabulary, and Teams' message size limit."""

from __future__ import annotations

import json

from adapters.teams import cards
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
    OutFile,
    Pre,
    Reply,
    Section,
)
from tests.teams.harness import texts_of

TEAMS_LIMIT = 28 * 1024


def test_every_block_kind_has_its_card_element() -> None:
    reply = Reply(
        ok=True,
        kind="show",
        text="D-1",
        blocks=[
            Heading("D-1 · Launch in EU"),
            Section("Because GDPR work is done.", fields=(("Status", "accepted"),)),
            Divider(),
            Bars((BarRow("1. Date", "2", 1.0, "★"),)),
            ListBlock((Line("D-1", "Launch", "accepted"),), title="Decisions"),
            Context("by <@u1>"),
            Pre("a  b\n1  2"),
            Actions((Button("Accept", "status D-1 accepted", "primary"),)),
        ],
    )
    card = cards.render(reply, names={"u1": "Ana"})
    kinds = [e["type"] for e in card["body"]]
    assert kinds == [
        "TextBlock",  # heading
        "TextBlock",  # section text
        "FactSet",  # section fields
        "ColumnSet",  # one bar row
        "TextBlock",  # list title
        "FactSet",  # list lines
        "TextBlock",  # context
        "TextBlock",  # pre, line 1
        "TextBlock",  # pre, line 2
        "ActionSet",
    ]
    heading, _, _, bars, *_ = card["body"]
    assert (heading["size"], heading["weight"]) == ("Large", "Bolder")
    assert bars.get("separator") is True  # the divider's separator lands on the next element
    assert card["body"][6] == {
        "type": "TextBlock",
        "text": "by Ana",
        "size": "Small",
        "isSubtle": True,
        "wrap": True,
    }
    assert card["body"][7]["fontType"] == "Monospace"
    [button] = card["body"][9]["actions"]
    assert button == {
        "type": "Action.Submit",
        "title": "Accept",
        "data": {"align": "status D-1 accepted"},
        "style": "positive",
    }
    assert card["version"] == "1.5" and "entities" not in card["msteams"]


def test_a_300_item_list_stays_under_the_teams_message_limit() -> None:
    lines = tuple(
        Line(f"D-{n}", f"Decision number {n} about a fairly long topic " * 2, "accepted")
        for n in range(1, 301)
    )
    reply = Reply(
        ok=True,
        kind="decisions",
        text="300 decisions",
        blocks=[Heading("Decisions"), ListBlock(lines)],
    )
    card = cards.render(reply)
    size = len(json.dumps(card, ensure_ascii=False).encode())
    assert size <= cards.MAX_CARD_BYTES < TEAMS_LIMIT
    [facts] = [e for e in card["body"] if e["type"] == "FactSet"]
    shown = len(facts["facts"])
    assert 20 <= shown < 300
    assert texts_of(card)[-1] == f"… and {300 - shown} more"
    assert facts["facts"][0]["title"] == "D-1"  # the first items are kept, in order


def test_a_small_list_is_not_cut() -> None:
    lines = tuple(Line(f"I-{n}", f"Item {n}") for n in range(1, 31))
    card = cards.render(Reply(ok=True, kind="items", text="", blocks=[ListBlock(lines)]))
    [facts] = [e for e in card["body"] if e["type"] == "FactSet"]
    assert len(facts["facts"]) == 30
    assert not any("more" in t for t in texts_of(card))


def test_a_nudge_mentions_people_for_real_and_other_views_only_name_them() -> None:
    text = "Reminder: <@aad-1>, <@aad-2> — please vote on P-1"
    names = {"aad-1": "Ana", "aad-2": "Ben"}
    nudge = cards.render(
        Reply(ok=True, kind="nudge", text=text, blocks=[Section(text)]), names=names
    )
    assert texts_of(nudge)[0] == "Reminder: <at>Ana</at>, <at>Ben</at> — please vote on P-1"
    assert nudge["msteams"]["entities"] == [
        {"type": "mention", "text": "<at>Ana</at>", "mentioned": {"id": "aad-1", "name": "Ana"}},
        {"type": "mention", "text": "<at>Ben</at>", "mentioned": {"id": "aad-2", "name": "Ben"}},
    ]
    poll = cards.render(
        Reply(ok=True, kind="poll", text="", blocks=[Context(text)]), names={"aad-1": "Ana"}
    )
    assert texts_of(poll)[0] == "Reminder: Ana, aad-2 — please vote on P-1"
    assert "entities" not in poll["msteams"]


def test_a_ranked_form_with_25_options_is_cut_to_fit_and_says_how_to_rank_the_rest() -> None:
    choices = tuple(
        (str(i), f"Option number {i} with a long descriptive title") for i in range(1, 26)
    )
    fields = tuple(
        FormField(f"rank{i}", f"Choice {i}", "choice", choices, required=i == 1)
        for i in range(1, 26)
    )
    form = Form("P-3", "ranked", "Rank the options of P-3", fields)
    card = cards.render(Reply(ok=True, kind="poll", text="", blocks=[form]))
    assert cards.size_of(card) <= cards.MAX_CARD_BYTES
    inputs = [e for e in card["body"] if e["type"] == "Input.ChoiceSet"]
    assert 3 <= len(inputs) < 25 and inputs[0]["id"] == "rank1"
    assert any("type `vote P-3 …`" in t for t in texts_of(card))
    assert card["body"][-1]["actions"][0]["data"] == {"align_form": "P-3", "mode": "ranked"}


def test_an_error_is_plain_text_with_the_usage_line_escaped_for_teams() -> None:
    reply = Reply(
        ok=False,
        kind="error",
        text="x",
        error="Only <@u1> can close P-1.",
        usage="Usage: close <P-ID> [decide]",
    )
    assert cards.as_text(reply, {"u1": "Ana"}).text == (
        "Only Ana can close P-1.\n\nUsage: close &lt;P-ID&gt; [decide]"
    )
    unresolved = Reply(ok=False, kind="error", text="x", error="I can't tell who <at>Zed</at> is.")
    assert cards.as_text(unresolved, {}).text == "I can't tell who Zed is."


def test_an_error_text_mentions_only_the_people_it_calls_on_and_only_by_a_known_name() -> None:
    """A text message's mention names the person by their `29:` id when known; someone the
    reply only names, or whose name is unknown, stays plain text with no entity."""
    reply = Reply(
        ok=False,
        kind="error",
        text="<@aad-1>, <@aad-3> and <@aad-2> could not [vote](x).",
        notify=("aad-1", "aad-2", "aad-3"),
    )
    names = {"aad-1": "Ana & Co", "aad-2": "Ben", "aad-4": "Dee"}
    shown = cards.as_text(reply, names, {"aad-1": "29:ana"})
    assert shown.text == (
        "<at>Ana &amp; Co</at>, aad-3 and <at>Ben</at> could not [vote]\u200b(x)."
    )
    assert shown.mentions == (
        {
            "type": "mention",
            "text": "<at>Ana &amp; Co</at>",
            "mentioned": {"id": "29:ana", "name": "Ana & Co"},
        },
        {"type": "mention", "text": "<at>Ben</at>", "mentioned": {"id": "aad-2", "name": "Ben"}},
    )
    assert cards.as_text(Reply(ok=False, kind="error", text="<@aad-4> failed"), names) == (
        cards.Text("Dee failed")
    )


def test_an_export_shows_the_file_inline() -> None:
    reply = Reply(
        ok=True,
        kind="export",
        text="3 decisions",
        file=OutFile("decisions.csv", "text/csv", "id,title\nD-1,A\nD-2,B"),
    )
    texts = texts_of(cards.render(reply))
    assert texts == ["3 decisions", "decisions.csv (text/csv)", "id,title", "D-1,A", "D-2,B"]
