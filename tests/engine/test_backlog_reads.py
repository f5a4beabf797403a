"""`priorities` and `roadmap` as they read today, pinned before their queries were rewritten
for speed (issue 15): the order (RICE, then unscored last, ties by number; by votes, the vote
rank first, then RICE with an unscored item and a zero alike), medians of several scorers and
their disagreement, tags in order, lanes (done only when asked for), other channels and
workspaces left out, empty states and pages — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from adapters.console.render import render
from bot.paging import PAGE_SIZE
from bot.views import Reply
from tests.conftest import Chat

BACKLOG: list[tuple[str, dict[str, str]]] = [
    ("item SSO reach:100 impact:1 confidence:80% effort:2 lane:now tag:zeta tag:alpha", {}),
    ("item Dark mode reach:100 impact:1 confidence:80% effort:2 lane:now", {}),
    ("item Unscored A lane:now", {}),
    ("item Partial reach:10 lane:next", {}),
    ("item Zero reach:10 impact:1 confidence:0% effort:1 lane:next tag:beta", {}),
    ("item Split reach:100 impact:3 confidence:90% effort:1 lane:later", {}),
    ("score I-6 reach:10 impact:0.25 confidence:20% effort:4", {"user": "ana"}),
    ("score I-6 reach:40 impact:1 confidence:50% effort:2", {"user": "ben"}),
    ("item Fraction reach:7 impact:0.5 confidence:33% effort:3 lane:later", {}),
    ("item Shipped reach:1 impact:1 confidence:100% effort:1 lane:later", {}),
    ("move I-8 done", {}),
    ("item Unscored B", {}),
    ("item Elsewhere reach:1000 impact:3 confidence:100% effort:1 lane:now", {"channel": "other"}),
    ("item Away reach:1000 impact:3 confidence:100% effort:1 lane:now", {"workspace": "w2"}),
    ("prioritize I-1 I-2 I-5 I-7", {}),
    ("vote P-1 3 4 1 2", {"user": "ana"}),
    ("vote P-1 4 3 1 2", {"user": "ben"}),
    ("close P-1", {}),
]

ALL_RICE = """
Priorities by rice
──────────────────
  I-1 SSO  (RICE 40 · vote #3)
  I-2 Dark mode  (RICE 40 · vote #4)
  I-6 Split  (RICE 10 · ⚠ scorers disagree)
  I-7 Fraction  (RICE 0.39 · vote #1)
  I-5 Zero  (RICE 0 · vote #1)
  I-3 Unscored A  (RICE —)
  I-4 Partial  (RICE —)
  I-9 Unscored B  (RICE —)
"""
ALL_VOTES = """
Priorities by votes
───────────────────
  I-7 Fraction  (RICE 0.39 · vote #1)
  I-5 Zero  (RICE 0 · vote #1)
  I-1 SSO  (RICE 40 · vote #3)
  I-2 Dark mode  (RICE 40 · vote #4)
  I-6 Split  (RICE 10 · ⚠ scorers disagree)
  I-3 Unscored A  (RICE —)
  I-4 Partial  (RICE —)
  I-9 Unscored B  (RICE —)
"""
ROADMAP = """
Roadmap
───────
Now:
  I-1 SSO  (RICE 40 · vote #3)
  I-2 Dark mode  (RICE 40 · vote #4)
  I-3 Unscored A  (RICE —)
Next:
  I-5 Zero  (RICE 0 · vote #1)
  I-4 Partial  (RICE —)
Later:
  I-6 Split  (RICE 10 · ⚠ scorers disagree)
  I-7 Fraction  (RICE 0.39 · vote #1)
  I-9 Unscored B  (RICE —)
"""


def _item(n: int, title: str, lane: str, rice: float | None, rank: int | None, *tags: str) -> Any:
    return {
        "id": f"I-{n}",
        "title": title,
        "lane": lane,
        "rice": rice,
        "vote_rank": rank,
        "tags": list(tags),
    }


SSO = _item(1, "SSO", "now", 40.0, 3, "alpha", "zeta")
DARK = _item(2, "Dark mode", "now", 40.0, 4)
UNSCORED_A = _item(3, "Unscored A", "now", None, None)
PARTIAL = _item(4, "Partial", "next", None, None)
ZERO = _item(5, "Zero", "next", 0.0, 1, "beta")
SPLIT = _item(6, "Split", "later", 10.0, None)
FRACTION = _item(7, "Fraction", "later", 0.39, 1)
SHIPPED = _item(8, "Shipped", "done", 1.0, None)
UNSCORED_B = _item(9, "Unscored B", "later", None, None)


def _one_page(total: int) -> dict[str, int]:
    return {"page": 1, "pages": 1, "total": total, "remaining": 0}


def _hints(reply: Reply) -> list[str | None]:
    return [getattr(block, "more_hint", None) for block in reply.blocks]


def test_an_empty_channel(chat: Chat) -> None:
    empty = chat.ok("priorities")
    assert (empty.kind, empty.text) == ("list", "0 items by rice")
    assert empty.data == {"by": "rice", "items": [], "page": _one_page(0)}
    assert render(empty).splitlines() == [
        "Priorities by rice",
        "──────────────────",
        "  The backlog is empty. Add one with `item <title>`.",
    ]
    assert _hints(empty) == [None, "Filter with lane:now, lane:next or lane:later."]
    lane = chat.ok("priorities lane:NOW by:VOTES")
    assert (lane.text, lane.data["by"]) == ("0 items by votes", "votes")
    assert render(lane).splitlines() == [
        "Priorities by votes · NOW",
        "─────────────────────────",
        "  Nothing in now.",
    ]
    assert _hints(lane) == [None, ""]
    roadmap = chat.ok("roadmap")
    assert (roadmap.kind, roadmap.text) == ("roadmap", "Roadmap: 0 item(s)")
    assert roadmap.data == {"lanes": {"now": [], "next": [], "later": []}}
    assert render(roadmap) == "Roadmap\n───────\nNow:\n  —\nNext:\n  —\nLater:\n  —"
    assert _hints(roadmap) == [
        None,
        "All of them: priorities lane:now",
        "All of them: priorities lane:next",
        "All of them: priorities lane:later",
    ]
    past = chat.fails("priorities page:2")
    assert past.error == "There is 1 page (0 in all); page:2 is past the end."


def test_the_order_by_rice_and_by_votes(chat: Chat) -> None:
    for line, who in BACKLOG:
        chat.ok(line, **who)
    by_rice = chat.ok("priorities")
    assert by_rice.text == "8 items by rice"
    assert render(by_rice) == ALL_RICE.strip("\n")
    assert by_rice.data == {
        "by": "rice",
        "items": [SSO, DARK, SPLIT, FRACTION, ZERO, UNSCORED_A, PARTIAL, UNSCORED_B],
        "page": _one_page(8),
    }
    by_votes = chat.ok("priorities by:votes")
    assert by_votes.text == "8 items by votes"
    assert render(by_votes) == ALL_VOTES.strip("\n")
    assert by_votes.data == {
        "by": "votes",
        "items": [FRACTION, ZERO, SSO, DARK, SPLIT, UNSCORED_A, PARTIAL, UNSCORED_B],
        "page": _one_page(8),
    }
    assert _hints(by_votes) == [None, "Filter with lane:now, lane:next or lane:later."]
    now = chat.ok("priorities lane:NOW by:VOTES")
    assert now.text == "3 items by votes"
    assert render(now).splitlines()[0] == "Priorities by votes · NOW"
    assert now.data["items"] == [SSO, DARK, UNSCORED_A]
    later = chat.ok("priorities lane:later by:votes")
    assert later.data["items"] == [FRACTION, SPLIT, UNSCORED_B]
    assert chat.ok("priorities lane:next page:1").data["items"] == [ZERO, PARTIAL]
    done = chat.ok("priorities lane:done")
    assert done.data == {"by": "rice", "items": [SHIPPED], "page": _one_page(1)}
    assert render(done).splitlines()[-1] == "  I-8 Shipped  (RICE 1)"
    past = chat.fails("priorities page:2")
    assert past.error == "There is 1 page (8 in all); page:2 is past the end."


def test_the_roadmap(chat: Chat) -> None:
    for line, who in BACKLOG:
        chat.ok(line, **who)
    roadmap = chat.ok("roadmap")
    assert roadmap.text == "Roadmap: 8 item(s)"
    assert render(roadmap) == ROADMAP.strip("\n")
    assert roadmap.data == {
        "lanes": {
            "now": [SSO, DARK, UNSCORED_A],
            "next": [ZERO, PARTIAL],
            "later": [SPLIT, FRACTION, UNSCORED_B],
        }
    }


def test_pages_are_cut_from_the_ranking(chat: Chat) -> None:
    total = PAGE_SIZE + 3
    for n in range(1, total + 1):
        scored = f" reach:{n % 7} impact:1 confidence:100% effort:1" if n % 5 else ""
        chat.ok(f"item Task {n} lane:{('now', 'next', 'later')[n % 3]}{scored}")
    first = chat.ok("priorities")
    second = chat.ok("priorities page:2")
    ranked = [row["id"] for row in first.data["items"] + second.data["items"]]
    rice = {n: n % 7 for n in range(1, total + 1) if n % 5}
    expected = sorted(rice, key=lambda n: (-rice[n], n)) + [n for n in range(5, total + 1, 5)]
    assert ranked == [f"I-{n}" for n in expected]
    assert first.data["page"] == {"page": 1, "pages": 2, "total": total, "remaining": 3}
    assert second.data["page"] == {"page": 2, "pages": 2, "total": total, "remaining": 0}
    assert render(first).splitlines()[-1] == "… 3 more: page:2"
    roadmap = chat.ok("roadmap")
    assert roadmap.text == f"Roadmap: {total} item(s)"
    by_lane = [row["id"] for lane in roadmap.data["lanes"].values() for row in lane]
    assert sorted(by_lane) == sorted(ranked)
    assert [row["id"] for row in roadmap.data["lanes"]["now"]] == [
        i for i in ranked if int(i[2:]) % 3 == 0
    ]


@pytest.mark.parametrize("line", ["roadmap", "priorities", "priorities by:votes lane:now"])
def test_one_statement_reads_the_items_their_scores_and_tags(chat: Chat, line: str) -> None:
    """Not one query per lane and two more per query for the scores and tags (a `roadmap` sent
    nine). SQLite shows each statement it runs; the code is the same on PostgreSQL."""
    if chat.app.db.dialect != "sqlite":
        pytest.skip("SQLite traces its statements; the code path is the same on PostgreSQL")
    for command, who in BACKLOG:
        chat.ok(command, **who)
    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(chat.app.db.engine, "checkout", trace)
    try:
        chat.ok(line)
    finally:
        event.remove(chat.app.db.engine, "checkout", trace)
    items = [s for s in statements if "item" in s.lower()]
    assert len(items) == 1, items
