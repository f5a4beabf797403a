"""Polls in a channel: buttons that vote, a message that follows the votes, modals for ballots."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from bot.context import Actor
from storage.models import Ballot
from tests.slack.conftest import CHANNEL, USER, SlackServer


def _ballots(server: SlackServer) -> int:
    with server.app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(Ballot)).scalar_one())


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def open_poll(server: SlackServer) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Post a poll, its edits paced by the clock; the ts of its message and its two buttons."""
    server.paced_by_the_clock()
    server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    posted = server.poll_message(1)
    date, scope = _buttons(posted.args["blocks"])
    return posted.result["ts"], date, scope


def _text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_fifty_people_click_at_once_and_the_last_update_shows_fifty_votes(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    voters = [f"U0VOTER{n:03d}" for n in range(50)]
    server.fake.channel_members[CHANNEL] = [*voters, "U0QUIET001", server.fake.bot_user_id]
    server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    date, scope = _buttons(server.poll_message(1).args["blocks"])

    def click(n: int) -> int:
        button = date if n % 5 else scope  # 40 for Date, 10 for Scope
        return server.post_action(
            action_id=button["action_id"], value=button["value"], user=voters[n]
        ).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(click, range(50)))
    assert statuses == [200] * 50
    server.fake.wait_for_responses_sync(50, timeout=60)
    server.settle(60)

    assert _ballots(server) == 50
    updates = server.fake.calls_to("chat.update")
    assert updates, server.fake.calls_summary()
    assert len(updates) < 50  # coalesced: a burst does not cost one update per click
    final = updates[-1]
    assert final.args["channel"] == CHANNEL
    text = _text(final.args["blocks"])
    assert "*40*  1. Date" in text and "*10*  2. Scope" in text
    assert "50 of 51 voted" in text  # the roster counts the quiet member, not the bot
    receipts = server.fake.responses
    assert all(r.body["response_type"] == "ephemeral" for r in receipts)
    assert any("Recorded your vote on P-1: Date" in r.body["text"] for r in receipts)


def test_a_ranked_ballot_goes_through_a_modal(slack_server: SlackServer) -> None:
    server = slack_server
    server.post_command('poll "Which first?" "Search" "Billing" "Export" mode:ranked')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    (vote,) = _buttons(server.poll_message(1).args["blocks"])
    assert (vote["action_id"], vote["value"]) == ("align_form", "P-1")

    server.post_action(action_id="align_form", value="P-1", trigger_id="4242.1.abc")
    (opened,) = server.fake.wait_for_sync("views.open")
    assert opened.args["trigger_id"] == "4242.1.abc"
    view = opened.args["view"]
    assert view["callback_id"] == "align_ballot"
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["block_id"] for b in inputs] == ["rank1", "rank2", "rank3", "reason"]
    selects, (reason,) = inputs[:3], inputs[3:]
    assert reason["optional"] is True  # a ballot without a reason is fine
    assert reason["element"]["type"] == "plain_text_input"
    assert reason["element"]["max_length"] == 1000
    assert [o["text"]["text"] for o in selects[0]["element"]["options"]] == [
        "Search",
        "Billing",
        "Export",
    ]

    def choice(value: str) -> dict[str, Any]:
        return {"value": {"type": "static_select", "selected_option": {"value": value}}}

    why = {"value": {"type": "plain_text_input", "value": "  billing pays for search  "}}
    values = {"rank1": choice("2"), "rank2": choice("3"), "rank3": {"value": {}}, "reason": why}
    response = server.post_payload(server.view_submission(view, values))
    assert response.status_code == 200
    assert response.text == ""  # an empty ack closes the modal
    server.settle()
    result = server.app.engine.handle(
        Actor(workspace=f"slack:{server.team}", channel=CHANNEL, user="U0OPS00001"), "results P-1"
    )
    assert result.data["ballots"] == 1 and result.data["winner"] == "Billing"
    assert result.data["reasons"] == [{"voter": USER, "reason": "billing pays for search"}]
    assert "Leading: Billing" in _text(server.fake.calls_to("chat.update")[-1].args["blocks"])
    (receipt,) = server.fake.calls_to("chat.postEphemeral")
    assert "Billing &gt; Export" in receipt.args["text"]  # mrkdwn: Slack shows ">"


def test_a_dots_ballot_over_budget_is_refused_in_the_modal(slack_server: SlackServer) -> None:
    server = slack_server
    server.post_command('poll "Spend the points" "A" "B" "C" mode:dots:5')
    server.fake.wait_for_sync("chat.postMessage")
    server.post_action(action_id="align_form", value="P-1")
    (opened,) = server.fake.wait_for_sync("views.open")
    view = opened.args["view"]
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["element"]["type"] for b in inputs] == ["number_input"] * 3 + ["plain_text_input"]

    def points(value: str | None) -> dict[str, Any]:
        return {"value": {"type": "number_input", "value": value}}

    over = {"option1": points("4"), "option2": points("3"), "option3": points(None)}
    response = server.post_payload(server.view_submission(view, over))
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"option1", "option2"}
    assert answer["errors"]["option1"] == "That is 7 points; P-1 allows at most 5."
    assert answer["errors"]["option2"] == answer["errors"]["option1"]
    server.settle()
    assert _ballots(server) == 0

    within = {"option1": points("4"), "option2": points("1"), "option3": points(None)}
    response = server.post_payload(server.view_submission(view, within))
    assert response.status_code == 200 and response.text == ""
    server.settle()
    assert _ballots(server) == 1


def test_a_twenty_five_option_poll_fits_slack_limits(slack_server: SlackServer) -> None:
    options = " ".join(f'"Option {n} ' + "x" * 90 + '"' for n in range(1, 26))
    slack_server.post_command(f'poll "Big one?" {options} mode:multi')
    (post,) = slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    blocks = post.args["blocks"]
    assert len(blocks) <= 50
    actions = [b for b in blocks if b["type"] == "actions"]
    assert all(len(a["elements"]) <= 5 for a in actions)
    buttons = _buttons(blocks)
    assert len(buttons) == 25
    assert all(len(b["text"]["text"]) <= 75 for b in buttons)
    assert buttons[24]["value"] == "vote P-1 ~25"
    assert len({b["action_id"] for b in buttons}) == 25
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000

    # A multi vote from the last button, and the poll message follows.
    slack_server.post_action(action_id=buttons[24]["action_id"], value=buttons[24]["value"])
    slack_server.fake.wait_for_sync("chat.update")
    slack_server.settle()
    assert "1 of 1 voted" in _text(slack_server.fake.calls_to("chat.update")[-1].args["blocks"])


def test_closing_a_poll_updates_its_message_and_removes_the_buttons(
    slack_server: SlackServer,
) -> None:
    slack_server.post_command('poll "Go?" "Yes" "No"')
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()  # the posting is recorded just after chat.postMessage answers
    slack_server.post_command("close P-1")
    slack_server.fake.wait_for_sync("chat.update")
    slack_server.settle()
    final = slack_server.fake.calls_to("chat.update")[-1].args["blocks"]
    assert _buttons(final) == []
    assert "closed" in _text(final)


def test_a_typed_vote_is_confirmed_privately_and_updates_the_poll_message(
    slack_server: SlackServer,
) -> None:
    slack_server.post_command('poll "Tea or coffee?" "Tea" "Coffee"')
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    slack_server.post_command("vote P-1 coffee", user="U0BEN00001")
    (receipt,) = slack_server.fake.wait_for_responses_sync()
    assert receipt.body["response_type"] == "ephemeral"
    assert "Recorded your vote on P-1: Coffee" in receipt.body["text"]
    (update,) = slack_server.fake.wait_for_sync("chat.update")
    where = Actor(
        workspace=f"slack:{slack_server.team}", channel=CHANNEL, user="", platform="slack"
    )
    assert slack_server.app.engine.postings(where, "P-1") == [(CHANNEL, update.args["ts"])]
    assert "*1*  2. Coffee" in _text(update.args["blocks"])
    assert len(slack_server.fake.calls_to("chat.postMessage")) == 1  # no second poll message


def test_the_engine_says_a_vote_needs_no_profile_and_anything_else_does(
    slack_server: SlackServer,
) -> None:
    engine = slack_server.app.engine
    assert not engine.needs_profile("vote P-1 2")
    assert engine.needs_profile("close P-1")
    assert engine.needs_profile("poll")  # what does not parse is answered by handle: as before
    assert engine.needs_profile("")


def test_a_burst_of_new_people_costs_no_connection_and_no_posting_lookup_per_click(
    slack_server_any_db: SlackServer, monkeypatch: Any
) -> None:
    """Thirty people never seen before click one poll at once: every vote is counted once and
    answered once, privately — through the server's shared connection pool (Bolt's respond
    opened a new HTTP session per answer), and without looking the clicked card's postings up
    in the database again for each click (the first click's lookup serves them all, those that
    land while it runs too: a burst's replies are shown together, once their group committed)."""
    import aiohttp

    server = slack_server_any_db
    voters = [f"U0NEW{n:05d}" for n in range(30)]
    server.fake.channel_members[CHANNEL] = [*voters, server.fake.bot_user_id]
    server.post_command('poll "Lunch?" "Tacos" "Soup"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    tacos, soup = _buttons(server.poll_message(1).args["blocks"])
    answers_before = len(server.fake.responses)

    sessions: list[object] = []

    opened = aiohttp.ClientSession

    def counted(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        sessions.append(args)
        return opened(*args, **kwargs)

    monkeypatch.setattr(aiohttp, "ClientSession", counted)
    lookups: list[str] = []
    looked_up = server.app.engine.postings

    def postings(actor: Actor, ref: str) -> list[tuple[str, str]]:
        lookups.append(ref)
        return looked_up(actor, ref)

    monkeypatch.setattr(server.app.engine, "postings", postings)

    def click(n: int) -> int:
        button = tacos if n % 3 else soup  # 20 Tacos, 10 Soup
        return server.post_action(
            action_id=button["action_id"], value=button["value"], user=voters[n]
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(click, range(30)))
    assert statuses == [200] * 30
    server.fake.wait_for_responses_sync(answers_before + 30, timeout=60)
    server.settle(60)

    assert _ballots(server) == 30
    answers = server.fake.responses[answers_before:]
    assert len(answers) == 30
    assert all(a.body.get("response_type") == "ephemeral" for a in answers)
    assert sessions == []  # every answer went through the shared pool
    assert lookups == ["P-1"]  # looked up once: the clicks meanwhile waited for that lookup
    asked = {c.args.get("user") for c in server.fake.calls_to("users.info")}
    assert not asked & set(voters)  # a vote reads no profile (Engine.needs_profile)
    final = _text(server.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "*20*  1. Tacos" in final and "*10*  2. Soup" in final


def test_a_failed_last_edit_is_tried_again_by_the_catch_up_not_recorded_as_shown(
    slack_server_any_db: SlackServer,
) -> None:
    """The last vote of a burst: its edit of the poll message fails (Slack answers an error
    the client does not retry). No later change comes to try again, so the message must be
    left behind (not recorded as shown) for the worker's periodic catch-up — which edits it
    once its retry slot has come, and not at once in a loop (a platform that failed or
    rate-limits is not hammered)."""
    from adapters.postings import RETRY_FAILED
    from adapters.runtime import RUNTIME_KEY

    server = slack_server_any_db
    ts, date, _ = open_poll(server)
    server.fake.fail_next("chat.update", status=200, error="fatal_error")

    clicked = server.post_action(action_id=date["action_id"], value=date["value"], message_ts=ts)
    assert clicked.status_code == 200
    server.fake.wait_for_responses_sync(1)
    server.settle()
    assert _ballots(server) == 1
    assert len(server.fake.failed_calls) == 1  # the edit was tried once, and failed
    assert server.fake.calls_to("chat.update") == []

    runtime = server.web_app[RUNTIME_KEY]
    server.loop.run(runtime.dispatch())  # the worker's wake-up, before the retry slot
    server.settle()
    assert server.fake.calls_to("chat.update") == []  # not hammered

    server.app.clock.advance(RETRY_FAILED)
    server.loop.run(runtime.dispatch())  # the next wake-up after it: caught up
    server.settle()
    (update,) = server.fake.calls_to("chat.update")
    assert "*1*  1. Date" in _text(update.args["blocks"])
    server.loop.run(runtime.dispatch())
    server.settle()
    assert len(server.fake.calls_to("chat.update")) == 1  # up to date: nothing more
