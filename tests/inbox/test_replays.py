"""A request sent again is answered and not run twice: the same signed Slack request replayed
inside Slack's five-minute window (issue 10 measured two decisions stored), a click or a modal
submission replayed; a Teams activity that could not be stored in time. (Events API retries:
tests/slack/test_requests.py, tests/slack/test_hostile_requests.py; a Teams activity delivered
again: tests/teams/test_messages.py.) On both databases."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.models import AuditEntry, Ballot, Decision, InboxEntry
from tests.fakes import sign_slack_request
from tests.slack.conftest import USER, SlackServer
from tests.slack.test_hostile_requests import write_locked
from tests.teams.harness import message, teams_server

FORM = "application/x-www-form-urlencoded"


def replay_twice(server: SlackServer, body: str) -> list[httpx.Response]:
    """The very bytes and headers of one signed request, sent twice — what someone who captured
    the request can do within the five minutes its signature stays fresh."""
    headers = {"Content-Type": FORM, **sign_slack_request(server.signing_secret, body)}
    return [
        server.http.post(server.url + "/slack/events", content=body.encode(), headers=headers)
        for _ in range(2)
    ]


def count(server: SlackServer, model: Any, *where: Any) -> int:
    with server.app.db.uow() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(session.execute(query).scalar_one())


def test_a_replayed_signed_command_is_answered_and_runs_once(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    first, again = replay_twice(server, server.command_body("decide Replayed once"))
    assert (first.status_code, again.status_code) == (200, 200)
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    assert count(server, Decision) == 1
    assert len(server.fake.calls_to("chat.postMessage")) == 1
    # One row, done: the replay found it and ran nothing.
    assert count(server, InboxEntry) == 1
    assert count(server, InboxEntry, InboxEntry.status == "done") == 1


def test_a_replayed_click_and_a_replayed_ballot_count_once(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    server.post_command('poll "Ship date or scope?" "Date" "Scope"')
    server.fake.wait_for_sync("chat.postMessage")
    server.settle()
    blocks = server.poll_message(1).args["blocks"]
    date = next(e for b in blocks if b["type"] == "actions" for e in b["elements"])
    click = server.action_payload(action_id=date["action_id"], value=date["value"])
    statuses = replay_twice(server, urlencode({"payload": json.dumps(click)}))
    assert [r.status_code for r in statuses] == [200, 200]
    server.settle()
    assert count(server, AuditEntry, AuditEntry.action == "vote") == 1

    server.post_command('poll "Which first?" "Search" "Billing" mode:ranked')
    server.fake.wait_for_sync("chat.postMessage", count=2)
    server.post_action(action_id="align_form", value="P-2")
    (opened,) = server.fake.wait_for_sync("views.open")
    choice = {"value": {"type": "static_select", "selected_option": {"value": "2"}}}
    submission = server.view_submission(opened.args["view"], {"rank1": choice})
    statuses = replay_twice(server, urlencode({"payload": json.dumps(submission)}))
    assert [(r.status_code, r.text) for r in statuses] == [(200, "")] * 2
    server.settle()
    assert count(server, AuditEntry, AuditEntry.action == "vote") == 2
    assert count(server, Ballot) == 2  # one in each poll
    # Each click was answered once: one receipt for the button, one for the modal.
    assert len(server.fake.responses) == 1
    assert len(server.fake.calls_to("chat.postEphemeral")) == 1


def test_the_same_words_from_two_people_are_two_commands(slack_server: SlackServer) -> None:
    """The key is Slack's id of the request, not its content: two people's identical
    commands are two commands."""
    server = slack_server
    server.post_command("decide Same words", user=USER)
    server.post_command("decide Same words", user="U0BEN00001")
    server.fake.wait_for_sync("chat.postMessage", count=2)
    server.settle()
    assert count(server, Decision) == 2


def test_teams_gets_a_503_when_the_activity_cannot_be_stored_and_it_runs_once_stored(
    migrated_db_url: str, clock: FakeClock
) -> None:
    """The Teams half of "do not acknowledge what is not stored": with the database locked the
    activity gets a 503 within the budget; the insert that was waiting lands when the lock goes
    and the activity runs from its row (answered in its conversation); Teams' redelivery is
    then answered without running it again."""

    async def scenario() -> None:
        async with teams_server(migrated_db_url, clock) as server:
            activity = message("decide Stored late", service_url=server.service_url)
            with write_locked(str(server.app.db.url)):
                began = time.monotonic()
                assert await server.post(activity) == 503
                assert time.monotonic() - began < 3.0
            await server.connector.wait_for("reply", timeout=30)
            await server.app.inbox.idle()
            assert await server.post(activity) == 200
            assert len(server.connector.sent_of("reply")) == 1
            with server.app.db.uow() as session:
                assert session.scalar(select(func.count()).select_from(Decision)) == 1

    asyncio.run(scenario())
