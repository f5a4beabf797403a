"""An anonymous poll in a Slack channel, through signed requests and the fake Web API: its live
message moves only when five clicks are in, and `nudge` reminds each non-voter by DM while the
channel hears only how many."""

from __future__ import annotations

import json
from typing import Any

from adapters import runtime
from tests.slack.conftest import CHANNEL, USER, SlackServer

VOTERS = [f"U0VOTER{n:03d}" for n in range(6)]
QUIET = ["U0QUIET001", "U0QUIET002"]


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _last_update(server: SlackServer) -> str:
    updates = server.fake.calls_to("chat.update")
    return json.dumps(updates[-1].args["blocks"], ensure_ascii=False) if updates else ""


def test_the_live_message_moves_by_five_and_nudge_reminds_by_dm(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    server.paced_by_the_clock()  # an edit per click, a second apart; the nudge's posts too
    server.fake.channel_members[CHANNEL] = [USER, *VOTERS, *QUIET, server.fake.bot_user_id]
    server.post_command('poll "Reorg?" "For" "Against" anonymous')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    yes, no = _buttons(server.poll_message(1).args["blocks"])

    def click(n: int) -> None:
        button = yes if n % 2 == 0 else no
        response = server.post_action(
            action_id=button["action_id"], value=button["value"], user=VOTERS[n]
        )
        assert response.status_code == 200
        server.settle()

    for n in range(4):
        click(n)
        shown = _last_update(server)
        assert "*0*  1. For" in shown and "*0*  2. Against" in shown, shown
        assert f"{n + 1} of 9 voted" in shown and f"{n + 1} vote" in shown  # …not counted yet
    click(4)  # the fifth: the refresh after it counts the batch
    shown = _last_update(server)
    assert "*3*  1. For" in shown and "*2*  2. Against" in shown, shown
    click(5)
    shown = _last_update(server)
    assert "*3*  1. For" in shown and "1 vote not counted yet" in shown

    seen_before = len(server.fake.responses), len(server.fake.calls_to("chat.postMessage"))
    response = server.post_command("nudge P-1")
    assert response.status_code == 200
    server.settle()
    mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
    server.loop.run(mounted.tick_and_dispatch())
    replies = [r.body for r in server.fake.responses[seen_before[0] :]]
    posts = server.fake.calls_to("chat.postMessage")[seen_before[1] :]
    in_channel = [c.args for c in posts if c.args["channel"] == CHANNEL] + replies
    said = json.dumps(in_channel, ensure_ascii=False)
    assert "Reminded 3 people privately" in said
    assert not [p for p in [USER, *VOTERS, *QUIET] if p in said]  # nobody named in the channel
    dms = [c.args for c in posts if c.args["channel"] != CHANNEL]
    assert sorted(c["channel"] for c in dms) == sorted([USER, *QUIET])
    assert all("please vote on P-1" in c["text"] for c in dms)
