"""User text through Slack: NUL and lone surrogates get a clear private answer and store nothing
(on SQLite and PostgreSQL); ``` typed into a title does not turn the message into a code block."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from sqlalchemy import func, select

from storage.models import Decision
from tests.slack.conftest import SlackServer


def decisions(server: SlackServer) -> int:
    with server.app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(Decision)).scalar_one())


def test_nul_and_lone_surrogates_get_a_clear_answer_and_store_nothing(
    slack_server_any_db: SlackServer,
) -> None:
    server = slack_server_any_db
    body = server.command_body("decide placeholder").replace(
        "text=decide+placeholder", "text=" + quote("decide Use\x00Postgres")
    )
    assert server.post(body, "application/x-www-form-urlencoded").status_code == 200
    click = server.action_payload(action_id="align_cmd_0", value="decide Half \ud83d emoji")
    # json.dumps writes the lone surrogate as the escape \ud83d, as a JSON sender may.
    payload = urlencode({"payload": json.dumps(click)})
    assert server.post(payload, "application/x-www-form-urlencoded").status_code == 200
    answers = [r.body for r in server.fake.wait_for_responses_sync(2)]
    server.settle()
    texts = sorted(a["text"] for a in answers)
    assert "NUL characters" in texts[0] and "broken character" in texts[1], texts
    assert all(a["response_type"] == "ephemeral" for a in answers)
    assert decisions(server) == 0
    assert server.fake.calls_to("chat.postMessage") == []


def test_a_code_fence_in_a_title_stays_inside_the_title(slack_server: SlackServer) -> None:
    slack_server.post_command("decide Ship ```now``` | the ``` fence")
    (decided,) = slack_server.fake.wait_for_sync("chat.postMessage")
    listing = slack_server.post_command("decisions").json()  # a read: answered in its ack
    slack_server.settle()
    for message in (decided.args, listing):
        blocks = message["blocks"]
        mrkdwn = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "mrkdwn"]
        texts = [message["text"], *mrkdwn]
        assert not any("```" in t for t in texts), texts
    listed = json.dumps(listing["blocks"], ensure_ascii=False)
    assert "Ship '''now'''" in listed
