"""Every malformed poll command gets one short reason and the verb's usage, and stores nothing."""

from __future__ import annotations

import pytest

from bot import grammar
from tests.conftest import Chat
from tests.polls.tables import dump

# (who, line, the reason given). Polls: P-1 single, P-2 ranked, P-3 dots:5, P-4 multi, all by
# pm in #general; P-5 lives in #other.
CASES: list[tuple[str, str, str]] = [
    ("pm", "poll", "A poll needs a question and options, each in quotes."),
    ("pm", 'poll "Q" "A"', "A poll has 2 to 25 options; you gave 1."),
    (
        "pm",
        'poll "Q" ' + " ".join(f'"o{i}"' for i in range(26)),
        "A poll has 2 to 25 options; you gave 26.",
    ),
    ("pm", 'poll "Q" "Tea" "tea "', "The option “tea” is given twice."),
    ("pm", 'poll "Q" Tea Coffee', "Put the question and each option in quotes (`Tea` is not)."),
    ("pm", 'poll "" "A" "B"', "The question cannot be empty."),
    ("pm", 'poll "Q" "A" " "', "An option cannot be empty."),
    (
        "pm",
        'poll "Q" "A" "B" mode:dots',
        "dots needs a point budget from 1 to 1000, like mode:dots:5.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" mode:dots:0',
        "dots needs a point budget from 1 to 1000, like mode:dots:5.",
    ),
    ("pm", 'poll "Q" "A" "B" mode:fancy', "mode is single, multi, ranked or dots:N."),
    ("pm", 'poll "Q" "A" "B" method:borda', "method: applies to ranked polls only."),
    ("pm", 'poll "Q" "A" "B" mode:dots:3 method:irv', "method: applies to ranked polls only."),
    ("pm", 'poll "Q" "A" "B" mode:ranked method:coin', "method is schulze, borda or irv."),
    ("pm", 'poll "Q" "A" "B" closes:2020-01-01', "The closing time must be in the future."),
    ("pm", 'poll "Q" "A" "B" "C', 'A quote was opened but not closed: "C…'),
    ("pm", "prioritize I-1", "Prioritize 2 to 25 items; you gave 1."),
    ("pm", "prioritize I-1 I-1", "An item is listed twice."),
    ("pm", "prioritize I-1 I-2 mode:single", "A prioritization vote is ranked or dots:N."),
    ("pm", "prioritize I-1 D-1", "D-1 is not an item id like I-7."),
    ("pm", "prioritize I-1 I-99", "I-99 not found in this channel."),
    ("pm", "vote", "Which poll?"),
    ("pm", "vote Lunch 1", "`Lunch` is not a poll id like P-5."),
    ("pm", "vote P-1", "Give your choice for P-1."),
    ("pm", "vote P-1 0", "P-1 has options 1 to 3."),
    ("pm", "vote P-1 99", "P-1 has options 1 to 3."),
    ("pm", "vote P-1 Mango", "P-1 has no option “Mango”; use its number 1–3."),
    ("pm", "vote P-1 1 2", "P-1 takes one choice."),
    ("pm", "vote P-2 1 2 1", "Option 1 is ranked twice."),
    ("pm", "vote P-2 Date 1", "Option 1 is ranked twice."),
    ("pm", "vote P-3 1=6", "That is 6 points; P-3 allows at most 5."),
    ("pm", "vote P-3 1=3 2=3", "That is 6 points; P-3 allows at most 5."),
    ("pm", "vote P-3 1", "Spread your points as option=points, like 1=3 2=2."),
    ("pm", "vote P-3 1=-2", "Points are a whole number, 0 or more (like 1=3)."),
    ("pm", "vote P-3 1=0", "Give at least one point."),
    ("pm", "vote P-3 1=2 1=1", "Option 1 is given points twice."),
    ("pm", "vote P-4 1 1", "Option 1 is picked twice."),
    ("pm", "vote P-4 -1", "That leaves your ballot empty; pick at least one option."),
    ("pm", "vote P-5 1", "P-5 not found in this channel."),
    ("pm", "vote P-77 1", "P-77 not found in this channel."),
    ("pm", "vote D-1 1", "D-1 is not a poll id like P-5."),
    ("ana", "close P-1", "Only <@pm> or a workspace admin can close P-1."),
    ("pm", "close", "Give a poll id, optionally followed by decide."),
    ("pm", "close P-1 now", "Give a poll id, optionally followed by decide."),
    ("pm", "close P-5", "P-5 not found in this channel."),
    ("ana", 'edit P-1 add:"Later"', "Only <@pm> or a workspace admin can edit P-1."),
    ("pm", 'edit P-1 add:"date"', "The option “date” is given twice."),
    (
        "pm",
        "edit P-1 owner:@ana",
        "A poll has no `owner` to edit; use title, closes, add or every:off.",
    ),
    ("pm", "edit P-1 closes:2020-01-01", "The closing time must be in the future."),
    ("pm", "results", "Which poll?"),
    ("pm", "results P-5", "P-5 not found in this channel."),
    ("pm", "nudge P-5", "P-5 not found in this channel."),
]


def _setup(chat: Chat) -> None:
    chat.ok("decide Keep it simple")
    chat.ok("item SSO")
    chat.ok("item Dark mode")
    chat.ok('poll "When?" "Date" "Scope" "Both"')
    chat.ok('poll "Order?" "Date" "Scope" "Both" mode:ranked')
    chat.ok('poll "Spend?" "Infra" "UX" mode:dots:5')
    chat.ok('poll "Days?" "Mon" "Tue" mode:multi')
    chat.ok('poll "Elsewhere?" "X" "Y"', channel="other")


def test_every_malformed_poll_command_says_why_shows_usage_and_stores_nothing(
    chat: Chat,
) -> None:
    _setup(chat)
    before = dump(chat.app.db)
    failures = []
    for who, line, reason in CASES:
        reply = chat.fails(line, user=who)
        verb = line.split()[0]
        if reply.error != reason or reply.usage != grammar.usage(verb):
            failures.append((line, reply.error, reply.usage))
        assert "\n" not in (reply.error or "")
        assert reply.ephemeral
    assert failures == [], "\n".join(map(repr, failures))
    assert dump(chat.app.db) == before


@pytest.mark.parametrize(
    "line", ['poll "Q" "A" "B" mode:dots:1001', 'poll "Q" "A" "B" mode:dots:x']
)
def test_a_dots_budget_must_be_a_sensible_number(chat: Chat, line: str) -> None:
    assert chat.fails(line).error == "dots needs a point budget from 1 to 1000, like mode:dots:5."
