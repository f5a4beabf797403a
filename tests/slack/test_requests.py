"""What Slack's request envelope guarantees: signatures checked, retried events handled once."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from storage.models import Decision, InboxEntry
from tests.slack.conftest import USER, SlackServer


def _decisions(server: SlackServer) -> int:
    with server.app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(Decision)).scalar_one())


def test_a_bad_signature_is_refused_and_nothing_is_stored(slack_server: SlackServer) -> None:
    body = slack_server.command_body("decide Forged decision")
    response = slack_server.post(body, "application/x-www-form-urlencoded", secret="not-the-one")
    assert response.status_code == 401
    # The same body, signed by Slack, goes through: the refusal was the signature's doing.
    assert slack_server.post(body, "application/x-www-form-urlencoded").status_code == 200
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    assert _decisions(slack_server) == 1


def test_a_stale_signature_is_refused_and_nothing_is_stored(slack_server: SlackServer) -> None:
    body = slack_server.command_body("decide Replayed decision")
    ten_minutes_ago = int(time.time()) - 600
    response = slack_server.post(
        body, "application/x-www-form-urlencoded", timestamp=ten_minutes_ago
    )
    assert response.status_code == 401
    unsigned = slack_server.http.post(
        slack_server.url + "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    slack_server.settle()
    assert _decisions(slack_server) == 0
    assert slack_server.fake.calls == []  # not even users.info: nothing ran


def test_an_event_retried_by_slack_is_handled_once(slack_server_any_db: SlackServer) -> None:
    slack_server = slack_server_any_db
    event = {"type": "app_home_opened", "user": USER, "channel": "D0HOME0001", "tab": "home"}
    first = slack_server.post_event(event, event_id="Ev0RETRY001")
    assert first.status_code == 200
    slack_server.fake.wait_for_sync("views.publish")
    retry = slack_server.post_event(event, event_id="Ev0RETRY001", retry_num=1)
    assert retry.status_code == 200
    slack_server.settle()
    assert len(slack_server.fake.calls_to("views.publish")) == 1
    with slack_server.app.db.uow() as session:
        (row,) = session.execute(select(InboxEntry)).scalars()
        assert (row.dedupe_key, row.platform, row.status) == ("slack:Ev0RETRY001", "slack", "done")
    # A new event (another id) is new work.
    slack_server.post_event(event, event_id="Ev0RETRY002")
    slack_server.fake.wait_for_sync("views.publish", count=2)
