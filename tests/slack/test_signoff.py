"""Sign-off in a Slack channel, through signed requests and the fake Web API: the proposal's
message with Agree / Abstain buttons and Object / Block modals (a reason is required, refused
inline), updated in place as approvers answer; the acceptance in the channel and the informed
person's DM, once; `pending` privately; App Home's "Waiting for your sign-off"."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from adapters import runtime
from storage.models import Stance
from tests.fakes.slack_api import Call
from tests.slack.conftest import CHANNEL, USER, SlackServer

PM, ANA, BEN, DEE = USER, "U0ANA00002", "U0BEN00002", "U0DEE00002"
OTHER_CHANNEL = "C0OTHER001"


def command(server: SlackServer, text: str, *, user: str = PM, channel: str = CHANNEL) -> None:
    response = server.post_command(text, user=user, channel=channel)
    assert response.status_code == 200, response.text
    server.settle()


def posts_in(server: SlackServer, channel: str) -> list[Call]:
    return [c for c in server.fake.calls_to("chat.postMessage") if c.args["channel"] == channel]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def click(server: SlackServer, button: dict[str, Any], *, user: str, ts: str, **kw: Any) -> None:
    response = server.post_action(
        action_id=button["action_id"], value=button["value"], user=user, message_ts=ts, **kw
    )
    assert response.status_code == 200
    server.settle()


def stances(server: SlackServer) -> int:
    with server.app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(Stance)).scalar_one())


def wake(server: SlackServer) -> int:
    mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
    return server.loop.run(mounted.tick_and_dispatch())


def test_a_proposal_is_answered_with_buttons_and_a_modal_and_its_message_follows(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    server.paced_by_the_clock()  # the proposal's message is edited after each answer
    command(
        server,
        f"propose Launch in EU first | GDPR work is done approvers:<@{ANA}|ana>,<@{BEN}> "
        f"informed:<@{DEE}>",
    )
    (posted,) = posts_in(server, CHANNEL)
    ts = posted.result["ts"]
    assert f"<@{ANA}>" in posted.args["text"] and "please sign it off" in posted.args["text"]
    found = buttons(posted.args["blocks"])
    assert list(found) == ["Agree", "Abstain", "Object", "Block"]
    assert found["Agree"]["value"] == "agree D-1" and found["Agree"]["style"] == "primary"
    assert found["Object"]["action_id"].startswith("align_ask_")
    assert found["Block"]["style"] == "danger"

    click(server, found["Agree"], user=ANA, ts=ts)
    update = server.fake.calls_to("chat.update")[-1]
    assert (update.args["channel"], update.args["ts"]) == (CHANNEL, ts)
    assert f"*<@{ANA}>*  ✅ agrees" in text_of(update.args["blocks"])
    assert "1 of 2 approvers agree" in text_of(update.args["blocks"])
    receipt = server.fake.responses[-1].body
    assert receipt["response_type"] == "ephemeral"
    assert receipt["text"] == "Recorded your agreement on D-1"
    assert len(posts_in(server, CHANNEL)) == 1  # an answer adds no post to the channel

    server.post_action(
        action_id=found["Object"]["action_id"],
        value=found["Object"]["value"],
        user=BEN,
        message_ts=ts,
        trigger_id="7777.1.obj",
    )
    (opened,) = server.fake.wait_for_sync("views.open")
    assert opened.args["trigger_id"] == "7777.1.obj"
    modal = opened.args["view"]
    assert modal["callback_id"] == "align_reason"
    (field,) = modal["blocks"]
    assert field["block_id"] == "reason" and field["label"]["text"] == "Why do you object?"
    assert field.get("optional") is not True

    blank = {"reason": {"value": {"type": "plain_text_input", "value": "   "}}}
    refused = server.post_payload(server.view_submission(modal, blank, user=BEN))
    assert refused.status_code == 200
    assert refused.json() == {
        "response_action": "errors",
        "errors": {"reason": "An objection needs a reason: `object D-1 | <why>`."},
    }
    assert stances(server) == 1  # nothing stored

    given = {"reason": {"value": {"type": "plain_text_input", "value": "legal has not signed"}}}
    accepted = server.post_payload(server.view_submission(modal, given, user=BEN))
    assert (accepted.status_code, accepted.text) == (200, "")
    server.settle()
    update = server.fake.calls_to("chat.update")[-1]
    assert update.args["ts"] == ts
    blocks = text_of(update.args["blocks"])
    assert f"*<@{BEN}>*  ⚠️ objects: legal has not signed" in blocks
    assert f"held by <@{BEN}>" in blocks
    assert server.fake.calls_to("chat.postEphemeral")[-1].args["user"] == BEN

    click(server, found["Agree"], user=BEN, ts=ts)
    final = server.fake.calls_to("chat.update")[-1]
    assert final.args["ts"] == ts
    assert "Accepted (all)." in text_of(final.args["blocks"])
    assert buttons(final.args["blocks"]) == {}  # settled: no more buttons
    assert "D-1 is accepted." in server.fake.responses[-1].body["text"]

    assert wake(server) == 2  # the channel's message and the informed person's DM
    (announced,) = posts_in(server, CHANNEL)[1:]
    assert announced.args["text"] == f"D-1 accepted — <@{ANA}>, <@{BEN}> agreed"
    (dm,) = posts_in(server, DEE)
    assert dm.result["channel"].startswith("D")  # posted to the user id: the app's DM
    assert dm.args["text"].startswith("For your information: D-1 “Launch in EU first” was")
    assert f"<#{CHANNEL}>" in dm.args["text"]
    assert wake(server) == 0
    assert len(posts_in(server, DEE)) == 1 and len(posts_in(server, CHANNEL)) == 2


def test_a_stranger_cannot_accept_and_another_channel_does_not_find_it(
    slack_server: SlackServer,
) -> None:
    server = slack_server
    command(server, f"propose Raise prices approvers:<@{ANA}>")
    (posted,) = posts_in(server, CHANNEL)
    command(server, "status D-1 accepted", user=BEN)
    refusal = server.fake.responses[-1].body
    assert refusal["response_type"] == "ephemeral"
    assert "Only <@" in refusal["blocks"][0]["text"]["text"]
    agree = buttons(posted.args["blocks"])["Agree"]
    server.post_action(
        action_id=agree["action_id"], value=agree["value"], user=ANA, channel=OTHER_CHANNEL
    )
    server.settle()
    assert "D-1 not found in this channel." in json.dumps(server.fake.responses[-1].body)
    assert stances(server) == 0
    assert server.fake.calls_to("chat.update") == []


def test_pending_is_private_and_app_home_lists_what_waits_for_your_sign_off(
    slack_server: SlackServer,
) -> None:
    server = slack_server
    server.fake.channel_members[CHANNEL] = [PM, ANA, server.fake.bot_user_id]
    # U0OUTSIDER is named, but is not in the channel: a title must not leak to their App Home.
    command(server, f"propose Raise prices approvers:<@{ANA}>,<@U0OUTSIDER> due:fri")
    read = server.post_command("pending", user=ANA)
    answer = read.json()  # a read: answered in its ack
    assert answer["response_type"] == "ephemeral"
    assert "Sign-offs you owe" in text_of(answer["blocks"])
    assert "Raise prices" in text_of(answer["blocks"])
    assert len(posts_in(server, CHANNEL)) == 1  # only the proposal itself

    event = {"type": "app_home_opened", "user": ANA, "channel": "D0HOME0002", "tab": "home"}
    assert server.post_event(event).status_code == 200
    (publish,) = server.fake.wait_for_sync("views.publish")
    home = text_of(publish.args["view"]["blocks"])
    assert "Waiting for your sign-off" in home and "*D-1*  Raise prices" in home
    assert f"<#{CHANNEL}>" in home

    event = {"type": "app_home_opened", "user": "U0OUTSIDER", "channel": "D0OUT", "tab": "home"}
    server.post_event(event)
    publishes = server.fake.wait_for_sync("views.publish", count=2)
    assert "Raise prices" not in text_of(publishes[-1].args["view"]["blocks"])
