"""Console polish (issue 14): long lists come in pages that say how to go on, hints name only
what exists, and counts read as English — as the console shows them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.console.render import render
from bot.paging import PAGE_SIZE
from bot.views import Form, Reply
from tests.conftest import Chat
from tests.console.conftest import Dialog


def lines(reply: Reply) -> list[str]:
    return [" ".join(line.split()) for line in render(reply).splitlines()]


def test_a_two_option_ranked_poll_offers_a_ballot_it_accepts(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                'poll "Lunch?" "Pizza" "Sushi" mode:ranked',
                "Rank the options of P-1: type `vote P-1 2 1`",
            ),
            ("vote P-1 2 1", "✓ Recorded your vote on P-1: Sushi > Pizza"),
            (
                'poll "Spend" "Infra" "UX" mode:dots:3',
                "Spread up to 3 points: type `vote P-2 1=2 2=1`",
            ),
            ("vote P-2 1=2 2=1", "✓ Recorded your vote on P-2: Infra 2, UX 1"),
        ]
    )


@pytest.mark.parametrize("options", [2, 3, 7])
def test_every_typed_ballot_hint_is_a_vote_the_poll_takes(chat: Chat, options: int) -> None:
    texts = " ".join(f'"O{i}"' for i in range(1, options + 1))
    for number, mode in enumerate(("ranked", "dots:1", "dots:2", "dots:10"), start=1):
        opened = chat.ok(f'poll "Q{number}" {texts} mode:{mode}')
        form = next(b for b in opened.blocks if isinstance(b, Form))
        assert form.typed.startswith(f"vote P-{number} ")
        chat.ok(form.typed, user="ana")


def test_long_lists_come_in_pages_that_say_how_many_remain(chat: Chat) -> None:
    total = PAGE_SIZE + 5
    for n in range(1, total + 1):
        chat.ok(f"item Task {n} lane:later")
        chat.ok(f"decide Choice {n}")
        chat.ok(f"ask Question {n}?")
    for line, key in (
        ("priorities lane:later", "items"),
        ("decisions", "decisions"),
        ("questions", "questions"),
    ):
        first = chat.ok(line)
        assert len(first.data[key]) == PAGE_SIZE
        assert first.data["page"] == {"page": 1, "pages": 2, "total": total, "remaining": 5}
        shown = lines(first)
        assert "… 5 more: page:2" in shown
        assert not any("Filter with" in text or "… and" in text for text in shown)
        second = chat.ok(f"{line} page:2")
        assert len(second.data[key]) == 5
        assert second.data["page"]["remaining"] == 0
        assert not any("more: page" in text for text in lines(second))
        # the pages together are the whole list, each row once
        ids = [row["id"] for row in first.data[key] + second.data[key]]
        assert len(set(ids)) == total
        past = chat.fails(f"{line} page:3")
        assert past.error == f"There are 2 pages ({total} in all); page:3 is past the end."
    assert chat.ok("decisions").data["decisions"][0]["title"] == f"Choice {total}"  # newest first
    assert chat.ok('decisions "Choice 4"').data["page"]["total"] == 7  # 4 and 40 … 45
    bad = chat.fails("decisions page:0")
    assert bad.error == "page: is a page number like page:2, not `0`."
    assert (bad.usage or "").startswith("Usage: decisions")


def test_a_lane_filter_never_suggests_another_lane_filter(chat: Chat) -> None:
    chat.ok("item Only one lane:later")
    reply = chat.ok("priorities lane:later")
    assert "Filter with lane:now." not in render(reply)
    assert all(getattr(b, "more_hint", "") == "" for b in reply.blocks)
    assert lines(chat.ok("priorities lane:now"))[-1] == "Nothing in now."


def test_counts_read_as_english(chat: Chat) -> None:
    chat.ok("decide Use Postgres")
    one = chat.ok("export decisions")
    assert one.text == "Exported 1 decision as md"
    assert lines(one)[0] == "Exported 1 decision as `decisions-general.md`."
    assert chat.ok("decisions").text == "1 decision"
    chat.ok("decide Use Redis")
    assert chat.ok("export decisions format:csv").text == "Exported 2 decisions as csv"
    assert chat.ok("export polls").text == "Exported 0 polls as csv"
