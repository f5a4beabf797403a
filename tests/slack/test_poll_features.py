"""The poll features through Slack: the Add option button and its one-field modal (refusals shown
under the input), a multi cap refused privately on a click, a hidden tally that the message does
not show until close, a public poll naming its voters, and a recurring poll posted by the
scheduler that votes then update in place."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from adapters import runtime
from bot.clock import FakeClock
from bot.context import Actor
from tests.slack.conftest import CHANNEL, USER, SlackServer, running_slack_server

BEN = "U0BEN00001"


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def open_poll(server: SlackServer, line: str) -> Any:
    server.post_command(line)
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()  # the posting is remembered once chat.postMessage has answered
    return server.poll_message(1)


def click(server: SlackServer, button: dict[str, Any], *, user: str, ts: str) -> None:
    response = server.post_action(
        action_id=button["action_id"], value=button["value"], user=user, message_ts=ts
    )
    assert response.status_code == 200
    server.settle()


def results(server: SlackServer, poll: str = "P-1") -> dict[str, Any]:
    actor = Actor(workspace=f"slack:{server.team}", channel=CHANNEL, user=USER, platform="slack")
    reply = server.app.engine.handle(actor, f"results {poll}")
    assert reply.ok, reply.error
    return reply.data


def test_add_option_opens_a_modal_refuses_inline_and_updates_the_poll_message(
    slack_server: SlackServer,
) -> None:
    server = slack_server
    posted = open_poll(server, 'poll "Lunch?" "Pizza" "Sushi" options:open')
    ts = posted.result["ts"]
    (add,) = [b for b in buttons(posted.args["blocks"]) if b["action_id"].startswith("align_ask_")]
    assert add["text"]["text"] == "Add option"
    assert json.loads(add["value"])["into"] == "add"

    server.post_action(
        action_id=add["action_id"], value=add["value"], user=BEN, message_ts=ts, trigger_id="77.1"
    )
    (opened,) = server.fake.wait_for_sync("views.open")
    assert opened.args["trigger_id"] == "77.1"
    view = opened.args["view"]
    assert view["callback_id"] == "align_reason"
    assert view["title"]["text"] == "Add option · P-1"
    (field,) = view["blocks"]
    assert field["block_id"] == "reason" and field["element"]["multiline"] is False
    assert field["label"]["text"] == "A new option for P-1"

    def typed(text: str) -> dict[str, Any]:
        return {"reason": {"value": {"type": "plain_text_input", "value": text}}}

    twice = server.post_payload(server.view_submission(view, typed("pizza"), user=BEN))
    assert twice.status_code == 200
    assert twice.json() == {
        "response_action": "errors",
        "errors": {"reason": "The option “pizza” is given twice."},
    }
    assert results(server)["options"] == ["Pizza", "Sushi"]

    added = server.post_payload(server.view_submission(view, typed("Ramen"), user=BEN))
    assert added.status_code == 200 and added.text == ""  # the modal closes
    server.settle()
    assert results(server)["options"] == ["Pizza", "Sushi", "Ramen"]
    update = server.fake.calls_to("chat.update")[-1]
    assert (update.args["channel"], update.args["ts"]) == (CHANNEL, ts)
    assert [b["text"]["text"] for b in buttons(update.args["blocks"])] == [
        "Pizza",
        "Sushi",
        "Ramen",
        "Add option",
    ]
    (receipt,) = server.fake.calls_to("chat.postEphemeral")
    assert receipt.args["user"] == BEN and receipt.args["text"] == "Edited P-1: options"
    assert len(server.fake.calls_to("chat.postMessage")) == 1  # no second copy of the poll


def test_a_click_past_the_cap_is_refused_privately(slack_server: SlackServer) -> None:
    server = slack_server
    posted = open_poll(server, 'poll "Two at most" "A" "B" "C" mode:multi max:2')
    ts = posted.result["ts"]
    a, b, c = buttons(posted.args["blocks"])
    click(server, a, user=BEN, ts=ts)
    click(server, b, user=BEN, ts=ts)
    click(server, c, user=BEN, ts=ts)
    refusal = server.fake.responses[-1].body
    assert refusal["response_type"] == "ephemeral"
    assert "P-1 allows at most 2 choices; that would make 3 (A, B, C)." in refusal["text"]
    assert results(server)["counts"] == {"A": 1, "B": 1, "C": 0}


def test_a_hidden_tally_stays_off_the_message_until_the_poll_closes(
    slack_server: SlackServer,
) -> None:
    server = slack_server
    posted = open_poll(server, 'poll "Secret ballot" "Yes" "No" results:hidden')
    yes, _ = buttons(posted.args["blocks"])
    click(server, yes, user=BEN, ts=posted.result["ts"])
    update = text_of(server.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "Results are hidden until P-1 closes (by hand)." in update
    assert "1 of" in update and "voted" in update
    assert "█" not in update and "░" not in update and "Leading" not in update
    receipt = server.fake.responses[-1].body["text"]
    assert receipt == ("Recorded your vote on P-1: Yes · results are hidden until the poll closes")
    server.post_command("close P-1")
    server.fake.wait_for_sync("chat.update", count=2)
    server.settle()
    final = text_of(server.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "Winner: Yes" in final and "█" in final


def test_a_public_poll_message_names_who_chose_what(slack_server: SlackServer) -> None:
    server = slack_server
    posted = open_poll(server, 'poll "Lunch?" "Pizza" "Sushi" public')
    _, sushi = buttons(posted.args["blocks"])
    click(server, sushi, user=BEN, ts=posted.result["ts"])
    update = text_of(server.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "*Who chose what*" in update
    assert f"*2. Sushi*  <@{BEN}>" in update


def test_a_recurring_poll_is_posted_by_the_scheduler_and_votes_update_it(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        start = clock.now()
        open_poll(server, 'poll "Pulse?" "Up" "Down" closes:2d every:week')
        mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
        clock.set(start + timedelta(days=2))
        assert server.loop.run(mounted.tick_and_dispatch()) == 1  # P-1's result
        clock.set(start + timedelta(weeks=1))
        assert server.loop.run(mounted.tick_and_dispatch()) == 1  # P-2, once
        assert server.loop.run(mounted.tick_and_dispatch()) == 0
        server.settle()
        second = server.poll_message(2)
        assert second.args["channel"] == CHANNEL
        assert second.args["text"] == "P-2 is open: Pulse? (every week, after P-1)"
        where = Actor(workspace=f"slack:{server.team}", channel=CHANNEL, user="", platform="slack")
        assert server.app.engine.postings(where, "P-2") == [(CHANNEL, second.result["ts"])]
        up, _ = buttons(second.args["blocks"])
        click(server, up, user=BEN, ts=second.result["ts"])
        update = server.fake.calls_to("chat.update")[-1]
        assert update.args["ts"] == second.result["ts"]
        assert "1 of" in text_of(update.args["blocks"])
