"""Prioritization votes feed `priorities by:votes` and `show I-n`; `nudge` reminds only those
who have not voted (for anonymous polls, known from participation alone, and privately)."""

from __future__ import annotations

import json

from adapters.bootstrap import App
from adapters.console.render import render
from bot.clock import FakeClock
from tests.conftest import Chat
from tests.time.helpers import Recorder, deliver, outbox_rows


def test_a_prioritization_orders_priorities_by_votes_and_shows_on_each_item(chat: Chat) -> None:
    for title in ("SSO", "Dark mode", "Audit log", "Not in the vote"):
        chat.ok(f"item {title} reach:100 impact:1 confidence:80% effort:1")
    opened = chat.ok("prioritize I-1 I-2 I-3 mode:dots:5")
    assert opened.data["options"] == ["I-1 SSO", "I-2 Dark mode", "I-3 Audit log"]
    chat.ok("vote P-1 3=4 1=1", user="ana")
    chat.ok("vote P-1 3=2 2=3", user="ben")
    chat.ok("vote P-1 2=1 1=1", user="cy")
    # Before the close, votes do not reorder anything.
    assert chat.ok("priorities by:votes").data["items"][0]["vote_rank"] is None
    chat.ok("close P-1")
    by_votes = chat.ok("priorities by:votes").data["items"]
    assert [(i["id"], i["vote_rank"]) for i in by_votes] == [
        ("I-3", 1),
        ("I-2", 2),
        ("I-1", 3),
        ("I-4", None),
    ]
    shown = chat.ok("show I-3")
    assert shown.data["vote_rank"] == 1 and shown.data["vote_poll"] == "P-1"
    assert "  Vote rank:   #1 in P-1" in render(shown).splitlines()


def test_a_ranked_prioritization_with_a_tie_shares_the_rank(chat: Chat) -> None:
    for title in ("A", "B", "C"):
        chat.ok(f"item {title}")
    chat.ok("prioritize I-1 I-2 I-3")
    chat.ok("vote P-1 1 2 3", user="ana")
    chat.ok("vote P-1 2 1 3", user="ben")
    chat.ok("close P-1")
    ranks = {i["id"]: i["vote_rank"] for i in chat.ok("priorities by:votes").data["items"]}
    assert ranks == {"I-1": 1, "I-2": 1, "I-3": 3}


def test_prioritize_only_items_of_this_channel(chat: Chat) -> None:
    chat.ok("item Here")
    chat.ok("item Elsewhere", channel="other")
    assert chat.fails("prioritize I-1 I-2").error == "I-2 not found in this channel."


def test_nudge_names_only_those_who_have_not_voted(chat: Chat) -> None:
    for who in ("ana", "ben", "cy"):
        chat.ok("item Hello " + who, user=who)
    chat.ok('poll "Q" "A" "B"')
    chat.ok("vote P-1 1", user="ana")
    chat.ok("vote P-1 2", user="pm")
    nudge = chat.ok("nudge P-1")
    assert nudge.data["nudged"] == ["ben", "cy"]
    assert nudge.text == "Reminder: <@ben>, <@cy> — please vote on P-1 “Q”."


def test_nudge_on_an_anonymous_poll_reminds_privately_and_names_nobody(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    for who in ("ana", "ben", "cy"):
        chat.ok("item Hello " + who, user=who)
    chat.ok('poll "Secret" "A" "B" anonymous closes:2026-11-27T12:00')
    chat.ok("vote P-1 1", user="ben")
    chat.ok("vote P-1 2", user="ben")  # a changed vote is still one voter
    nudge = chat.ok("nudge P-1")
    # The channel hears how many were reminded, never who: names before and after a tally
    # everyone can watch would tell who voted what.
    assert nudge.text == (
        "Reminded 3 people privately to vote on P-1: it is anonymous, so nobody is named here."
    )
    assert nudge.data == {"id": "P-1", "reminded": 3, "privately": True}
    blob = json.dumps(nudge.to_json()) + render(nudge)
    assert not [p for p in ("ana", "ben", "cy", "pm") if p in blob]
    # Each non-voter gets their own private message, through the outbox like any DM.
    rows = outbox_rows(app, kind="nudge")
    assert sorted((r.channel, r.payload["direct_to"]) for r in rows) == [
        ("general", "ana"),
        ("general", "cy"),
        ("general", "pm"),
    ]
    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 3
    direct = [m for _, m in console.sent if m.reply.direct_to]
    assert sorted(m.reply.direct_to or "" for m in direct) == ["ana", "cy", "pm"]
    assert {m.reply.text for m in direct} == {
        "Reminder: please vote on P-1 “Secret” before it closes Fri 2026-11-27 12:00 UTC."
    }
    for who in ("ana", "cy", "pm"):
        chat.ok("vote P-1 1", user=who)
    assert chat.ok("nudge P-1").data["nudged"] == []
    chat.ok("close P-1")
    assert chat.fails("nudge P-1").error == "P-1 closed on Wed 2026-11-25 09:00 UTC."
