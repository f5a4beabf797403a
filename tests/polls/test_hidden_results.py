"""`results:hidden`: until the poll closes nobody sees the tally — not in `results`, `show`, the
live message, the vote receipt, the JSON, an export, App Home, a digest or a webhook — while how
many have voted is shown. Once it closes, everything is there."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from adapters.bootstrap import App
from adapters.console.render import render
from bot import home
from bot.clock import FakeClock
from bot.views import Bars, Reply
from tests.conftest import Chat
from tests.time.helpers import outbox_rows, tick

OPTIONS = ["Zebra", "Yak", "Xerus"]
TALLY_KEYS = ("counts", "scores", "pairwise", "strongest_paths", "rounds", "condorcet_winner")
OPENING = {
    "single": 'poll "Pick" "Zebra" "Yak" "Xerus" results:hidden closes:2d',
    "multi": 'poll "Pick" "Zebra" "Yak" "Xerus" mode:multi results:hidden closes:2d',
    "ranked": 'poll "Pick" "Zebra" "Yak" "Xerus" mode:ranked method:irv results:hidden closes:2d',
    "dots": 'poll "Pick" "Zebra" "Yak" "Xerus" mode:dots:3 results:hidden public closes:2d',
}
BALLOTS = {"single": "2", "multi": "2", "ranked": "2 3 1", "dots": "2=2 3=1"}


def leaks(reply: Reply) -> list[str]:
    """What in a reply would tell the tally: tally keys in its JSON, a winner or an order, bars,
    reasons or who chose what."""
    data = reply.to_json()
    found = [k for k in TALLY_KEYS if k in data]
    if data.get("winner") or data.get("ranking") or data.get("tied"):
        found.append("winner/ranking")
    found += [k for k in ("reasons", "voters", "by_voter") if k in data]
    if any(isinstance(b, Bars) for b in reply.blocks):
        found.append("bars")
    text = render(reply)
    found += [w for w in ("Leading", "Winner", "Tie between", "Order:") if w in text]
    return found


@pytest.mark.parametrize("mode", list(OPENING))
def test_nobody_sees_the_tally_until_it_closes(
    chat: Chat, app: App, clock: FakeClock, mode: str
) -> None:
    chat.ok("item Warm up", user="cai")  # in the channel, never votes
    opened = chat.ok(OPENING[mode])
    assert opened.data["hidden"] is True and opened.data["results"] == "hidden"
    assert leaks(opened) == []
    for voter in ("ana", "ben"):
        vote = chat.ok(f"vote P-1 {BALLOTS[mode]} | I like Yak", user=voter)
        assert leaks(vote) == [], vote.to_json()  # the receipt, and the view it carries
        assert vote.text.endswith("· results are hidden until the poll closes")
    for line in ("results P-1", "show P-1"):
        reply = chat.ok(line)
        assert leaks(reply) == [], (line, reply.to_json())
        assert reply.data["participation"]["voted"] == 2  # participation is shown
        assert reply.data["participation"]["not_voted"] == ["cai", "pm"]
        assert "Results are hidden until P-1 closes at" in render(reply)
    assert chat.ok("results P-1").text.endswith("· results are hidden until it closes")
    live = app.engine.live_view(chat.actor(), "P-1")
    assert leaks(live) == [] and "2 of 4 voted" in render(live)

    clock.advance(timedelta(days=2))
    shown = chat.ok("results P-1")  # past its closing time: shown even before the tick
    assert shown.data["winner"] == "Yak" and "hidden" not in shown.data
    assert tick(app).closed == 1
    after = chat.ok("show P-1")
    assert after.data["winner"] == "Yak"
    assert ("counts" if mode in ("single", "multi") else "scores") in after.data
    assert [r["reason"] for r in after.data["reasons"]] == ["I like Yak", "I like Yak"]
    assert any(isinstance(b, Bars) for b in after.blocks)
    if mode == "dots":  # public: who chose what shows once it is closed
        assert after.data["voters"]["Yak"] == {"ana": 2, "ben": 2}


def test_exports_app_home_digests_and_webhooks_carry_no_tally_before_close(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("webhook add https://hooks.example.com/align events:poll,decision,digest")
    chat.ok('poll "Pick" "Zebra" "Yak" "Xerus" results:hidden')
    chat.ok("vote P-1 2 | Yak is fast", user="ana")
    chat.ok("vote P-1 2", user="ben")
    for fmt in ("csv", "md", "json"):
        export = chat.ok(f"export polls format:{fmt}")
        assert export.file is not None
        assert "Yak is fast" not in export.file.content
        assert "ana" not in export.file.content
    (record,) = json.loads(chat.ok("export polls format:json").file.content)  # type: ignore[union-attr]
    assert (record["winner"], record["ranking"], record["voted"]) == ("", "", 2)
    assert record["reasons"] == [] and record["results"] == "hidden"

    page = home.home(app.engine.deps, "local", "ana")
    assert "P-1" in page.data["polls"]
    assert "Yak" not in json.dumps(page.to_json()) + render(page)

    digest = chat.ok("digest now")
    assert "Yak" not in json.dumps(digest.to_json(), default=str) + render(digest)

    def webhook_payloads() -> list[dict[str, Any]]:
        return [r.payload for r in outbox_rows(app, platform="webhook")]

    opened = [p for p in webhook_payloads() if "poll.opened" in json.dumps(p)]
    assert opened, webhook_payloads()
    assert not [p for p in webhook_payloads() if "Yak is fast" in json.dumps(p)]
    assert not [p for p in webhook_payloads() if '"winner": "Yak"' in json.dumps(p)]

    chat.ok("close P-1")
    (record,) = json.loads(chat.ok("export polls format:json").file.content)  # type: ignore[union-attr]
    assert record["winner"] == "Yak"
    assert record["reasons"] == [{"voter": "ana", "reason": "Yak is fast"}]
    assert [p for p in webhook_payloads() if '"winner": "Yak"' in json.dumps(p)]


def test_a_hidden_poll_may_be_closed_by_hand_and_decided(chat: Chat) -> None:
    chat.ok('poll "Pick" "Zebra" "Yak" results:hidden')
    chat.ok("vote P-1 1", user="ana")
    assert chat.ok("results P-1").data["winner"] is None
    closed = chat.ok("close P-1 decide")
    assert closed.text.startswith("Closed P-1: Zebra · recorded D-1")
    assert chat.ok("results P-1").data["counts"] == {"Zebra": 1, "Yak": 0}
