"""`public` (everyone sees who chose what), `max:N` on multi polls (one checker for typed votes,
buttons and forms) and `options:open` (anyone here may add an option) — and every combination
that makes no sense refused with its reason, storing nothing."""

from __future__ import annotations

from bot import grammar
from bot.views import ListBlock
from tests.conftest import Chat
from tests.polls.tables import dump


def who_chose_what(reply_blocks: list[object], title: str = "Who chose what") -> list[str]:
    (block,) = [b for b in reply_blocks if isinstance(b, ListBlock) and b.title == title]
    return [f"{line.ref}: {line.text}" for line in block.lines]


def test_a_public_poll_lists_the_voters_of_each_option(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" "Tacos" mode:multi public')
    chat.ok("vote P-1 1 2 | cheese", user="ana")
    chat.ok("vote P-1 2", user="ben")
    for line in ("results P-1", "show P-1"):
        reply = chat.ok(line)
        assert reply.data["public"] is True
        assert reply.data["voters"] == {"Pizza": ["ana"], "Sushi": ["ana", "ben"], "Tacos": []}
        assert reply.data["by_voter"] == [
            {"voter": "ana", "choice": "Pizza, Sushi", "reason": "cheese"},
            {"voter": "ben", "choice": "Sushi"},
        ]
        assert who_chose_what(reply.blocks) == [
            "1. Pizza: <@ana>",
            "2. Sushi: <@ana>, <@ben>",
            "3. Tacos: —",
        ]
        # In a public poll a reason comes with its choice.
        assert reply.data["reasons"] == [
            {"voter": "ana", "reason": "cheese", "choice": "Pizza, Sushi"}
        ]


def test_public_dots_and_ranked_polls_show_points_and_orders(chat: Chat) -> None:
    chat.ok('poll "Spend" "A" "B" mode:dots:5 public')
    chat.ok("vote P-1 1=3 2=2", user="ana")
    chat.ok("vote P-1 2=5", user="ben")
    dots = chat.ok("results P-1")
    assert dots.data["voters"] == {"A": {"ana": 3}, "B": {"ana": 2, "ben": 5}}
    assert who_chose_what(dots.blocks) == ["1. A: <@ana> 3", "2. B: <@ana> 2, <@ben> 5"]
    chat.ok('poll "Rank" "A" "B" "C" mode:ranked public')
    chat.ok("vote P-2 3 1", user="ana")
    chat.ok("vote P-2 2", user="ben")
    ranked = chat.ok("show P-2")
    assert ranked.data["voters"] == {"A": [], "B": ["ben"], "C": ["ana"]}  # first choices
    assert who_chose_what(ranked.blocks, "Who ranked what") == ["<@ana>: C > A", "<@ben>: B"]


def test_an_ordinary_poll_never_says_who_chose_what(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    chat.ok("vote P-1 1", user="ana")
    reply = chat.ok("show P-1")
    assert reply.data["public"] is False
    assert "voters" not in reply.data and "by_voter" not in reply.data
    assert not [b for b in reply.blocks if isinstance(b, ListBlock) and "chose" in b.title]


def test_max_caps_a_multi_ballot_typed_or_toggled(chat: Chat) -> None:
    chat.ok('poll "Pick two" "A" "B" "C" "D" mode:multi max:2')
    assert chat.ok("show P-1").blocks[1].text.startswith("up to 2 choices")  # type: ignore[attr-defined]
    typed = chat.fails("vote P-1 1 2 3", user="ana")
    assert typed.error == "P-1 allows at most 2 choices; you picked 3."
    chat.ok("vote P-1 ~1", user="ana")  # buttons toggle one option
    chat.ok("vote P-1 ~2", user="ana")
    clicked = chat.fails("vote P-1 ~3", user="ana")
    assert clicked.error == (
        "P-1 allows at most 2 choices; that would make 3 (A, B, C). Unpick one first: click it "
        "again, or type `vote P-1 -<number>`."
    )
    assert clicked.ephemeral  # a private message on every surface that has them
    assert chat.ok("results P-1").data["counts"] == {"A": 1, "B": 1, "C": 0, "D": 0}
    chat.ok("vote P-1 ~1", user="ana")
    chat.ok("vote P-1 ~3", user="ana")
    assert chat.ok("results P-1").data["counts"] == {"A": 0, "B": 1, "C": 1, "D": 0}
    chat.ok("vote P-1 4 | just one", user="ben")  # fewer is fine


def test_options_open_lets_anyone_here_add_an_option_and_nothing_else(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" options:open')
    chat.ok("vote P-1 1", user="ben")
    added = chat.ok('edit P-1 add:"Tacos"', user="ana")
    assert added.text == "Edited P-1: options"
    assert chat.ok("results P-1").data["counts"] == {"Pizza": 1, "Sushi": 0, "Tacos": 0}
    refused = chat.fails("edit P-1 title:Dinner?", user="ana")
    assert refused.error == (
        "Only <@pm> or a workspace admin can edit P-1. Anyone here may add an option: "
        '`edit P-1 add:"…"`.'
    )
    assert (
        chat.fails('edit P-1 add:"tacos"', user="cai").error == "The option “tacos” is given twice."
    )
    assert chat.fails('edit P-1 add:"Soup"', user="ana", channel="other").error == (
        "P-1 not found in this channel."
    )
    history = chat.ok("show P-1").data["history"]
    assert [(h["actor"], h["action"]) for h in history] == [("pm", "create"), ("ana", "edit")]
    # The live message offers it: a button that asks for the option, as `edit P-1 add:"…"`.
    live = chat.app.engine.live_view(chat.actor(), "P-1")
    (add,) = [b for block in live.blocks if block.type == "actions" for b in block.buttons if b.ask]
    assert (add.label, add.command, add.into) == ("Add option", "edit P-1", "add")


def test_the_add_option_button_answer_goes_through_the_same_edit(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" options:open')
    engine = chat.app.engine
    ana = chat.actor(user="ana")
    added = engine.submit_text(ana, "edit P-1", "  Ramen ", into="add")
    assert added.ok and added.receipt  # the live message shows it; the reply acknowledges
    assert chat.ok("results P-1").data["options"] == ["Pizza", "Sushi", "Ramen"]
    twice = engine.submit_text(ana, "edit P-1", "ramen", into="add")
    assert twice.field_errors == {"reason": "The option “ramen” is given twice."}
    blank = engine.submit_text(ana, "edit P-1", "  ", into="add")
    assert blank.field_errors == {"reason": "Write something first."}
    closed = chat.app.engine.submit_text(chat.actor(user="ana"), "edit P-1", "x" * 151, into="add")
    assert closed.field_errors == {"reason": "Keep each option under 150 characters."}


def test_a_poll_without_open_options_keeps_adding_to_its_creator(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    assert chat.fails('edit P-1 add:"Tacos"', user="ana").error == (
        "Only <@pm> or a workspace admin can edit P-1."
    )
    live = chat.app.engine.live_view(chat.actor(), "P-1")
    assert not [
        b for block in live.blocks if block.type == "actions" for b in block.buttons if b.ask
    ]


# (who, line, the reason given): every combination that makes no sense, refused.
REFUSED: list[tuple[str, str, str]] = [
    (
        "pm",
        'poll "Q" "A" "B" public anonymous',
        "A poll is anonymous (nobody sees who chose what) or public (everyone does), not both.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" mode:ranked max:2',
        "max: caps the choices of a mode:multi poll; a ranked ballot orders the options instead "
        "of picking some.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" max:1',
        "max: caps the choices of a mode:multi poll; a single-choice ballot has one choice "
        "already.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" mode:dots:3 max:1',
        "max: caps the choices of a mode:multi poll; a dots ballot is capped by its points "
        "(mode:dots:N).",
    ),
    ("pm", 'poll "Q" "A" "B" mode:multi max:3', "max:3 is more than the 2 options of this poll."),
    (
        "pm",
        'poll "Q" "A" "B" mode:multi max:0',
        "max: is a number of choices, 1 or more, like max:2.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" mode:multi max:two',
        "max: is a number of choices, 1 or more, like max:2.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" results:secret',
        "results: is hidden (nobody sees the tally until the poll closes) or live.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" options:maybe',
        'options: is open (anyone here may add one with `edit P-n add:"…"`) or closed.',
    ),
    (
        "pm",
        'poll "Q" "A" "B" every:week',
        "A recurring poll needs closes: — how long each period's poll stays open (like closes:3d "
        "every:week).",
    ),
    ("pm", 'poll "Q" "A" "B" every:day closes:1d', "every: is week, 2w or month."),
    (
        "pm",
        'poll "Q" "A" "B" every:week closes:8d',
        "A poll every week closes within its period: closes: at most 7 days after it opens (like "
        "closes:3d), so one period's poll closes before the next opens.",
    ),
    (
        "pm",
        'poll "Q" "A" "B" every:month closes:30d',
        "A poll every month closes within its period: closes: at most 28 days after it opens "
        "(like closes:3d), so one period's poll closes before the next opens.",
    ),
    (
        "pm",
        "prioritize I-1 I-2 public",
        "`public` is not an item id like I-7.",
    ),
    (
        "pm",
        "prioritize I-1 I-2 every:week",
        "`prioritize` has no option `every:`. Its options: closes:, method:, mode:. To keep it as "
        'text, put it in quotes: "every:week".',
    ),
    ("pm", "vote P-1 1 2 3", "P-1 allows at most 2 choices; you picked 3."),
    (
        "pm",
        "vote P-1 +3",
        "P-1 allows at most 2 choices; that would make 3 (A, B, C). Unpick one first: click it "
        "again, or type `vote P-1 -<number>`.",
    ),
    ("ana", 'edit P-1 add:"D"', "Only <@pm> or a workspace admin can edit P-1."),
    ("pm", "edit P-1 every:off", "P-1 does not recur; there is nothing to stop."),
    (
        "pm",
        "edit P-1 every:week",
        "every: on edit only stops a recurring poll: every:off. Start a new one with "
        "`poll … closes:… every:week`.",
    ),
]


def test_what_makes_no_sense_is_refused_with_its_reason_and_stores_nothing(chat: Chat) -> None:
    chat.ok("item SSO")
    chat.ok("item Dark mode")
    chat.ok('poll "Two of three" "A" "B" "C" mode:multi max:2')
    chat.ok("vote P-1 1 2")
    before = dump(chat.app.db)
    failures = []
    for who, line, reason in REFUSED:
        reply = chat.fails(line, user=who)
        verb = line.split()[0]
        if reply.error != reason or reply.usage != grammar.usage(verb):
            failures.append((line, reply.error, reply.usage))
        assert reply.ephemeral
    assert failures == [], "\n".join(map(repr, failures))
    assert dump(chat.app.db) == before
