"""The replies of `pending`, `questions` and `decisions`, pinned whole (text, blocks, data,
privacy) on one channel holding every case they tell apart: sign-offs owed with and without a
due time, answered or another's; polls open, closing later, closed by time, closed by hand or
voted in; questions overdue, due later, without a due time, answered or another's; decisions
with tags, an owner and a review date; a channel's zone and a person's own; empty channels and
pages past the end. Written before these reads moved to statements built once and the raw
cursor, so that they answer exactly as before, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import decisions
from bot.clock import FakeClock
from bot.common import channel_settings
from bot.context import Actor
from bot.views import Reply
from tests.conftest import Chat

CALLS = (
    # (user, channel or None for #general, the person's own zone or None, line)
    ("ana", None, None, "pending"),
    ("ana", None, "America/New_York", "pending"),
    ("ben", None, None, "pending"),
    ("cho", None, None, "pending"),
    ("ana", "random", None, "pending"),
    ("ana", "empty", None, "pending"),
    ("pm", None, None, "questions"),
    ("pm", None, None, "questions overdue"),
    ("ana", None, None, "questions mine"),
    ("pm", None, None, "questions all"),
    ("pm", None, "Asia/Tokyo", "questions all"),
    ("pm", None, None, "questions all page:2"),
    ("pm", "empty", None, "questions"),
    ("pm", "empty", None, "questions page:2"),
    ("pm", None, None, "questions later"),
    ("pm", None, None, "decisions"),
    ("pm", None, "Asia/Tokyo", "decisions"),
    ("pm", None, None, "decisions page:2"),
    ("pm", "empty", None, "decisions"),
    ("pm", "empty", None, "decisions page:2"),
    ("pm", "random", None, "decisions"),
    ("pm", None, None, "decisions plain tag:alpha"),
    ("pm", None, None, "decisions status:proposed"),
)


def fill(chat: Chat, clock: FakeClock) -> None:
    with chat.app.db.uow() as session:
        channel_settings(session, chat.actor()).tz = "Europe/Berlin"
    ok = chat.ok
    ok("propose No due first approvers:@ana rule:majority")
    ok("propose Due friday approvers:@ana,@ben due:fri")
    ok("propose Due tomorrow approvers:@ana due:1d")
    ok("propose Already agreed approvers:@ana due:2d")
    ok("agree D-4", user="ana")
    ok("propose Not hers approvers:@ben due:3d")
    ok("propose Elsewhere approvers:@ana due:1d", channel="random")
    ok("decide Plain one | why not owner:@cho tag:zeta tag:alpha tag:mid review:2027-03-01")
    ok("decide Second plain")
    ok('poll "Open forever?" "A" "B"')
    ok('poll "Closes later?" "A" "B" closes:fri')
    ok('poll "Closes soon?" "A" "B" closes:2h')
    ok('poll "Closed by hand?" "A" "B"')
    ok("close P-4")
    ok('poll "Voted?" "A" "B"')
    ok("vote P-5 1", user="ana")
    ok("ask Overdue soon? owner:@ana due:1h")
    ok("ask Later? owner:@ana due:fri")
    ok("ask Whenever? owner:@ana")
    ok("ask Answered? owner:@ana due:1d")
    ok("answer Q-4 yes")
    ok("ask Bens? owner:@ben due:1h")
    ok("ask Nobodys?")
    clock.advance(timedelta(hours=3))


def shown(reply: Reply) -> dict[str, Any]:
    return {
        "json": reply.to_json(),
        "blocks": [repr(block) for block in reply.blocks],
        "ephemeral": reply.ephemeral,
    }


def replies(chat: Chat, clock: FakeClock) -> dict[str, dict[str, Any]]:
    fill(chat, clock)
    out: dict[str, dict[str, Any]] = {}
    for user, channel, tz, line in CALLS:
        actor = Actor(chat.workspace, channel or chat.channel, user, tz=tz)
        out[f"{user} #{channel or chat.channel} {tz or '-'}: {line}"] = shown(
            chat.app.engine.handle(actor, line)
        )
    return out


EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "list_replies.json").read_text(encoding="utf-8")
)
"""Every reply as the code before the rewrite gave it, keyed as `replies` keys them."""


def test_list_replies_are_as_pinned(chat: Chat, clock: FakeClock) -> None:
    got = replies(chat, clock)
    assert list(got) == list(EXPECTED)
    for key, expected in EXPECTED.items():
        assert got[key] == expected, key


def test_a_decision_recorded_while_a_page_is_read_leaves_the_pages_tags_right(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each statement of a read sees what was committed before it ran: the tags
    of the page listed come with its rows, in the same statement, so a decision recorded while
    the page is read changes neither (choosing the page again in SQL shifted it by one)."""
    for n in range(41):
        chat.ok(f"decide Decision {n} tag:t{n}")
    listing = decisions._CHANNEL_LISTING
    page = listing.page

    def then_another(*args: Any, **kwargs: Any) -> Any:
        found = page(*args, **kwargs)
        writer = threading.Thread(target=chat.ok, args=("decide Recorded meanwhile tag:new",))
        writer.start()  # a write of its own, committed before the tags are read
        writer.join()
        return found

    monkeypatch.setattr(listing, "page", then_another)
    reply = chat.ok("decisions")
    listed = reply.data["decisions"]
    assert [d["id"] for d in listed] == [f"D-{n}" for n in range(41, 1, -1)]
    assert [d["tags"] for d in listed] == [[f"t{n - 1}"] for n in range(41, 1, -1)]


def test_a_pages_tags_come_sorted_and_a_decision_without_tags_has_none(chat: Chat) -> None:
    chat.ok("decide Untagged")
    chat.ok("decide Tagged tag:zeta,alpha tag:mid")
    listed = chat.ok("decisions").data["decisions"]
    assert [(d["id"], d["tags"]) for d in listed] == [
        ("D-2", ["alpha", "mid", "zeta"]),
        ("D-1", []),
    ]
    filtered = chat.ok("decisions tag:mid").data["decisions"]  # the filtered query, too
    assert [(d["id"], d["tags"]) for d in filtered] == [("D-2", ["alpha", "mid", "zeta"])]
