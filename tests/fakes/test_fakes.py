"""Tests of the HTTP fakes themselves, driven by the real SDK clients the bot uses.

If these pass, a bot test that points slack_sdk or botbuilder at the fakes exercises the
same wire protocol as production. Async scenarios run under ``asyncio.run`` so no pytest
async plugin is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
)
from botframework.connector import ConnectorClient as SyncConnectorClient
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.exceptions import HttpOperationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import FakeBotConnector, FakeSlackApi, sign_slack_request

TS_PATTERN = re.compile(r"^\d{10}\.\d{6}$")
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Decision:* ship it"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "vote",
                "text": {"type": "plain_text", "text": "Vote"},
                "value": "1",
            }
        ],
    },
]
CHANNEL_THREAD = "19:general@thread.tacv2;messageid=1700000000001"
CHANNEL = "19:general@thread.tacv2"
PERSONAL = "a:1Xb_-zQ9;x@y"  # Teams ids carry ':' ';' '@' and must be URL-encoded by botbuilder
ROSTER: list[dict[str, Any]] = [
    {
        "id": "29:1ana",
        "name": "Ana",
        "aadObjectId": "aad-ana",
        "email": "ana@example.com",
        "userPrincipalName": "ana@example.com",
        "tenantId": "tenant-1",
        "userRole": "user",
    },
    {"id": "29:1ben", "name": "Ben", "aadObjectId": "aad-ben", "tenantId": "tenant-1"},
    {"id": "29:1cai", "name": "Cai", "aadObjectId": "aad-cai", "tenantId": "tenant-1"},
]


def run_with_slack(scenario: Callable[[FakeSlackApi], Awaitable[None]]) -> None:
    """Run an async scenario against a FakeSlackApi served on the test's own event loop."""

    async def main() -> None:
        async with FakeSlackApi() as slack:
            await scenario(slack)

    asyncio.run(main())


def run_with_connector(scenario: Callable[[FakeBotConnector], Awaitable[None]]) -> None:
    """Run an async scenario against a FakeBotConnector on the test's own event loop."""

    async def main() -> None:
        async with FakeBotConnector() as connector:
            await scenario(connector)

    asyncio.run(main())


def slack_client(slack: FakeSlackApi, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.url, **kwargs)


# --------------------------------------------------------------------------------------------
# Slack
# --------------------------------------------------------------------------------------------


def test_slack_url_is_a_slack_sdk_base_url() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", slack.url)
        auth = await slack_client(slack).auth_test()
        assert auth["team_id"] == slack.team_id
        assert auth["user_id"] == slack.bot_user_id
        assert auth["bot_id"] == slack.bot_id
        assert auth["url"].startswith("https://")
        assert slack.calls_to("auth.test")[0].token == "xoxb-test"

    run_with_slack(scenario)


def test_slack_post_message_with_blocks_then_update() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)
        first = await client.chat_postMessage(channel="C0PLAN", text="fallback", blocks=BLOCKS)
        second = await client.chat_postMessage(channel="C0PLAN", text="again", thread_ts="1.2")
        assert first["ok"] and first["channel"] == "C0PLAN"
        assert TS_PATTERN.match(first["ts"]) and TS_PATTERN.match(second["ts"])
        assert float(second["ts"]) > float(first["ts"])
        assert first["message"]["blocks"] == BLOCKS
        assert second["message"]["thread_ts"] == "1.2"

        updated = await client.chat_update(channel="C0PLAN", ts=first["ts"], text="edited")
        assert (updated["channel"], updated["ts"], updated["text"]) == (
            "C0PLAN",
            first["ts"],
            "edited",
        )

        posts = slack.calls_to("chat.postMessage")
        assert [c.args["text"] for c in posts] == ["fallback", "again"]
        assert posts[0].args["blocks"] == BLOCKS  # sent as JSON by slack_sdk, kept as objects
        assert posts[0].token == "xoxb-test"
        update = slack.calls_to("chat.update")[0]
        assert update.args == {"channel": "C0PLAN", "ts": first["ts"], "text": "edited"}

    run_with_slack(scenario)


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_slack_post_message_to_user_id_lands_in_dm_and_validates_like_slack() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)
        dm = await client.chat_postMessage(channel="U0ANA", text="psst")
        assert dm["channel"] == "D0ANA"
        with pytest.raises(SlackApiError) as empty:
            await client.chat_postMessage(channel="C0PLAN")
        assert empty.value.response["error"] == "no_text"
        ephemeral = await client.chat_postEphemeral(channel="C0PLAN", user="U0ANA", text="x")
        assert TS_PATTERN.match(ephemeral["message_ts"])

    run_with_slack(scenario)


def test_slack_form_encoded_bodies_decode_nested_json_and_body_token() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = AsyncWebClient(base_url=slack.url)  # no token header: token goes in the form
        await client.api_call(
            "chat.postMessage",
            data={"token": "xoxb-form", "channel": "C0PLAN", "blocks": json.dumps(BLOCKS)},
        )
        call = slack.calls_to("chat.postMessage")[0]
        assert call.token == "xoxb-form"
        assert call.args == {"channel": "C0PLAN", "blocks": BLOCKS}

    run_with_slack(scenario)


def test_slack_views_open_update_publish() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)
        view = {
            "type": "modal",
            "callback_id": "new_decision",
            "title": {"type": "plain_text", "text": "New decision"},
            "blocks": BLOCKS[:1],
            "private_metadata": "C0PLAN",
        }
        opened = await client.views_open(trigger_id="123.456.abc", view=view)
        view_id = opened["view"]["id"]
        assert view_id.startswith("V")
        assert opened["view"]["callback_id"] == "new_decision"
        assert opened["view"]["private_metadata"] == "C0PLAN"
        assert opened["view"]["state"] == {"values": {}}
        assert slack.calls_to("views.open")[0].args["view"] == view

        updated = await client.views_update(view_id=view_id, view={**view, "blocks": []})
        assert updated["view"]["id"] == view_id

        home = await client.views_publish(user_id="U0ANA", view={"type": "home", "blocks": []})
        assert home["view"]["type"] == "home" and home["view"]["id"] != view_id

        with pytest.raises(SlackApiError) as missing_trigger:
            await client.api_call("views.open", json={"view": view})
        assert missing_trigger.value.response["error"] == "invalid_arguments"

    run_with_slack(scenario)


def test_slack_users_info_defaults_and_overrides() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.users["U0ANA"] = {
            "real_name": "Ana Lima",
            "tz": "America/Sao_Paulo",
            "is_admin": True,
            "profile": {"display_name": "ana"},
        }
        client = slack_client(slack)
        ana = (await client.users_info(user="U0ANA"))["user"]
        assert ana["id"] == "U0ANA" and ana["real_name"] == "Ana Lima"
        assert ana["tz"] == "America/Sao_Paulo" and ana["tz_offset"] == -3 * 3600
        assert ana["is_admin"] is True and ana["is_owner"] is False
        assert ana["profile"]["display_name"] == "ana"

        ben = (await client.users_info(user="U0BEN"))["user"]
        assert ben["tz"] == "Europe/Berlin" and ben["tz_offset"] in (3600, 7200)
        assert ben["is_admin"] is False and ben["profile"]["display_name"]

        with pytest.raises(SlackApiError) as bad:
            await client.users_info(user="not-a-user")
        assert bad.value.response["error"] == "user_not_found"

        call = slack.calls_to("users.info")[0]
        assert call.http_verb == "GET" and call.args == {"user": "U0ANA"}

    run_with_slack(scenario)


def test_slack_conversations_members_paginates_with_cursor() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.channel_members["C0PLAN"] = ["U1", "U2", "U3"]
        client = slack_client(slack)
        whole = await client.conversations_members(channel="C0PLAN")
        assert whole["members"] == ["U1", "U2", "U3"]
        assert whole["response_metadata"] == {"next_cursor": ""}

        pages = [
            page["members"]
            async for page in await client.conversations_members(channel="C0PLAN", limit=2)
        ]
        assert pages == [["U1", "U2"], ["U3"]]
        assert len(slack.calls_to("conversations.members")) == 3

        info = await client.conversations_info(channel="C0PLAN")
        assert info["channel"]["id"] == "C0PLAN" and info["channel"]["num_members"] == 3

    run_with_slack(scenario)


def test_slack_history_has_posts_newest_first_with_metadata_when_asked() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)
        for n in range(3):
            await client.chat_postMessage(
                channel="C0PLAN",
                text=f"m{n}",
                metadata={"event_type": "align_outbox", "event_payload": {"key": f"k{n}"}},
            )
        await client.chat_postMessage(channel="C0OTHER", text="elsewhere")
        plain = await client.conversations_history(channel="C0PLAN")
        assert [m["text"] for m in plain["messages"]] == ["m2", "m1", "m0"]
        assert all("metadata" not in m for m in plain["messages"])
        pages = [
            [(m["text"], m["metadata"]["event_payload"]["key"]) for m in page["messages"]]
            async for page in await client.conversations_history(
                channel="C0PLAN", limit=2, include_all_metadata=True
            )
        ]
        assert pages == [[("m2", "k2"), ("m1", "k1")], [("m0", "k0")]]
        assert [m["text"] for m in slack.history("C0PLAN")] == ["m0", "m1", "m2"]

    run_with_slack(scenario)


def test_a_slow_slack_answers_late_but_the_post_is_there_at_once() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.slow("chat.postMessage", 0.5)
        client = slack_client(slack)
        began, wall = time.monotonic(), time.time()
        posting = asyncio.create_task(client.chat_postMessage(channel="C0PLAN", text="slow"))
        while not slack.history("C0PLAN"):
            await asyncio.sleep(0.01)
        assert time.monotonic() - began < 0.4 and not posting.done()
        answer = await posting
        assert time.monotonic() - began >= 0.5
        assert answer["ts"] == slack.history("C0PLAN")[0]["ts"]
        (call,) = slack.calls_to("chat.postMessage")
        assert call.at - wall < 0.4  # `at` is when it arrived (wall-clock seconds)
        slack.slow("chat.postMessage", 0)
        began = time.monotonic()
        await client.chat_postMessage(channel="C0PLAN", text="fast")
        assert time.monotonic() - began < 0.4

    run_with_slack(scenario)


def test_a_slow_answer_whose_caller_gave_up_ends_when_the_fake_stops() -> None:
    """The caller cancels while the fake holds back a slow answer (a worker dying mid-send, as in
    tests/slack/test_delivery.py): aiohttp's shutdown lets that handler run on, so unless `stop()`
    ends it, a loop closed after the fake stops holds a pending task, and asyncio logs "Task was
    destroyed but it is pending!" when it is collected, in whichever test runs then."""

    async def main() -> None:
        slack = await FakeSlackApi().start()
        slack.slow("chat.postMessage", 30)
        posting = asyncio.create_task(
            slack_client(slack).chat_postMessage(channel="C0PLAN", text="slow")
        )
        while not slack.history("C0PLAN"):
            await asyncio.sleep(0.01)
        posting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await posting
        began = time.monotonic()
        await slack.stop()
        assert time.monotonic() - began < 5  # not the 30 s answer
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, left
        assert slack.calls_to("chat.postMessage") == []  # never answered

    asyncio.run(main())


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")  # slack_sdk's
def test_slack_oauth_team_and_uninstall() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = AsyncWebClient(base_url=slack.url)  # OAuth exchange has no token yet
        oauth = await client.oauth_v2_access(client_id="111.222", client_secret="s3", code="c0de")
        assert oauth["access_token"].startswith("xoxb-")
        assert oauth["token_type"] == "bot" and oauth["bot_user_id"] == slack.bot_user_id
        assert oauth["team"] == {"id": slack.team_id, "name": slack.team_name}
        assert oauth["enterprise"] is None and oauth["is_enterprise_install"] is False
        assert oauth["authed_user"]["id"]
        call = slack.calls_to("oauth.v2.access")[0]
        assert call.token is None and call.basic_auth == ("111.222", "s3")
        assert call.args["code"] == "c0de"

        bot = slack_client(slack)
        assert (await bot.team_info())["team"]["id"] == slack.team_id
        assert (await bot.apps_uninstall(client_id="111.222", client_secret="s3"))["ok"]

    run_with_slack(scenario)


def test_slack_unknown_method_and_missing_token_answer_like_slack() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        with pytest.raises(SlackApiError) as unknown:
            await slack_client(slack).api_call("nope.nothing")
        assert unknown.value.response["error"] == "unknown_method"
        with pytest.raises(SlackApiError) as anonymous:
            await AsyncWebClient(base_url=slack.url).chat_postMessage(channel="C1", text="x")
        assert anonymous.value.response["error"] == "not_authed"

        slack.respond_with("reactions.add", {})
        slack.respond_with("users.lookupByEmail", lambda call: {"user": {"id": "U0X"}})
        assert (await slack_client(slack).reactions_add(channel="C1", name="+1", timestamp="1"))[
            "ok"
        ]
        found = await slack_client(slack).users_lookupByEmail(email="x@example.com")
        assert found["user"]["id"] == "U0X"

    run_with_slack(scenario)


def test_slack_rate_limit_raises_without_retry_handler() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.fail_next("chat.postMessage", status=429, retry_after=7)
        with pytest.raises(SlackApiError) as limited:
            await slack_client(slack).chat_postMessage(channel="C1", text="hi")
        assert limited.value.response.status_code == 429
        assert limited.value.response["error"] == "ratelimited"
        assert limited.value.response.headers["Retry-After"] == "7"
        assert [c.status for c in slack.failed_calls] == [429]
        assert slack.calls_to("chat.postMessage") == []
        await slack_client(slack).chat_postMessage(channel="C1", text="hi")  # only `times=1`
        assert len(slack.calls_to("chat.postMessage")) == 1

    run_with_slack(scenario)


def test_slack_rate_limit_retry_handler_retries_and_succeeds() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.fail_next("chat.postMessage", status=429, retry_after=0)
        client = slack_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
        response = await client.chat_postMessage(channel="C1", text="hi")
        assert response["ok"]
        assert [c.args["text"] for c in slack.failed_calls] == ["hi"]
        assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == ["hi"]
        assert slack.failed_calls[0].at <= slack.calls_to("chat.postMessage")[0].at

    run_with_slack(scenario)


def test_slack_server_errors_twice_then_success_with_server_error_handler() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.fail_next("chat.update", status=500, times=2)
        fast = FixedValueRetryIntervalCalculator(fixed_internal=0.01)
        handler = AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=fast)
        client = slack_client(slack, retry_handlers=[handler])
        assert (await client.chat_update(channel="C1", ts="1.000100", text="x"))["ok"]
        assert [c.status for c in slack.failed_calls] == [500, 500]
        assert len(slack.calls_to("chat.update")) == 1

    run_with_slack(scenario)


def test_slack_scripted_api_error_with_http_200() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.fail_next("chat.post*", status=200, error="channel_not_found")
        with pytest.raises(SlackApiError) as failed:
            await slack_client(slack).chat_postMessage(channel="C1", text="x")
        assert failed.value.response.status_code == 200
        assert failed.value.response["error"] == "channel_not_found"
        assert slack.pending_failures == []

    run_with_slack(scenario)


def test_slack_files_upload_v2_records_the_bytes_where_they_were_shared() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        content = "# D-1: Ship it\n\n* Status: accepted\n" + "é" * 5000
        done = await slack_client(slack).files_upload_v2(
            channel="C0PRODUCT1",
            content=content,
            filename="decisions.md",
            title="decisions.md",
            initial_comment="Export for <@U1>",
        )
        assert done["file"]["title"] == "decisions.md"
        (upload,) = slack.uploads.values()
        assert upload.file_id == done["file"]["id"]
        assert upload.text == content  # every byte, as the SDK POSTed them
        assert (upload.filename, upload.channel_id) == ("decisions.md", "C0PRODUCT1")
        assert upload.initial_comment == "Export for <@U1>"
        (ask,) = slack.calls_to("files.getUploadURLExternal")
        assert int(ask.args["length"]) == len(content.encode())

    run_with_slack(scenario)


def test_slack_failed_upload_steps_share_nothing() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)
        slack.fail_next("files.getUploadURLExternal", status=200, error="not_in_channel")
        with pytest.raises(SlackApiError) as refused:
            await client.files_upload_v2(channel="C1", content="x", filename="a.csv")
        assert refused.value.response["error"] == "not_in_channel"
        slack.fail_next("upload", status=500)
        with pytest.raises(SlackRequestError, match="status: 500"):
            await client.files_upload_v2(channel="C1", content="x", filename="a.csv")
        assert slack.calls_to("files.completeUploadExternal") == []
        assert [(c.method, c.status) for c in slack.failed_calls] == [
            ("files.getUploadURLExternal", 200),
            ("upload", 500),
        ]
        with pytest.raises(SlackApiError) as unknown:  # completing a file never uploaded
            await client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "a"}])
        assert unknown.value.response["error"] == "file_not_found"
        assert slack.uploads == {}

    run_with_slack(scenario)


def test_slack_response_url_posts_are_recorded() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        url = slack.response_url("vote-1")
        assert url.startswith(slack.root_url)
        webhook = AsyncWebhookClient(url)
        answer = await webhook.send(text="Thanks!", response_type="ephemeral")
        assert answer.status_code == 200
        posts = await slack.wait_for_responses(1, timeout=2)
        assert posts[0].name == "vote-1"
        assert posts[0].body == {"text": "Thanks!", "response_type": "ephemeral"}

    run_with_slack(scenario)


def test_slack_response_url_failures_are_not_recorded() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        slack.fail_next("response_url", status=500)
        webhook = AsyncWebhookClient(slack.response_url("vote-1"))
        assert (await webhook.send(text="Thanks!")).status_code == 500
        assert slack.responses == []
        assert (await webhook.send(text="Thanks!")).status_code == 200
        assert [post.name for post in slack.responses] == ["vote-1"]

    run_with_slack(scenario)


def test_slack_async_wait_for_wakes_on_record_and_times_out() -> None:
    async def scenario(slack: FakeSlackApi) -> None:
        client = slack_client(slack)

        async def later() -> None:
            await asyncio.sleep(0.05)
            await client.chat_postMessage(channel="C1", text="late")

        task = asyncio.create_task(later())
        calls = await slack.wait_for("chat.postMessage", count=1, timeout=2)
        await task
        assert calls[0].args["text"] == "late"
        with pytest.raises(TimeoutError, match=r"chat\.update"):
            await slack.wait_for("chat.update", timeout=0.05)

    run_with_slack(scenario)


def test_slack_running_in_thread_with_sync_client_and_reset() -> None:
    with FakeSlackApi.running() as slack:
        client = WebClient(token="xoxb-sync", base_url=slack.url)
        timer = threading.Timer(0.05, lambda: client.chat_postMessage(channel="C1", text="bg"))
        timer.start()
        calls = slack.wait_for_sync("chat.postMessage", timeout=2)
        timer.join()
        assert calls[0].token == "xoxb-sync"
        assert client.users_info(user="U0ANA")["user"]["tz"] == "Europe/Berlin"
        with pytest.raises(TimeoutError):
            slack.wait_for_sync("views.open", timeout=0.05)

        slack.users["U0ANA"] = {"tz": "UTC"}
        slack.fail_next("auth.test")
        slack.reset()
        assert slack.calls == [] and slack.failed_calls == [] and slack.pending_failures == []
        assert client.users_info(user="U0ANA")["user"]["tz"] == "Europe/Berlin"
        url = slack.url
    assert not slack.is_running
    with pytest.raises(RuntimeError):
        _ = slack.url
    assert url.endswith("/api/")


def test_sign_slack_request_matches_slack_sdk_verifier() -> None:
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    body = b"token=xyz&team_id=T0TEST0001&command=%2Falign&text=decide+lunch"
    headers = sign_slack_request(secret, body)
    assert set(headers) == {"X-Slack-Request-Timestamp", "X-Slack-Signature"}
    verifier = SignatureVerifier(secret)
    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)

    fixed = sign_slack_request(secret, body.decode(), timestamp=1_531_420_618)
    assert fixed["X-Slack-Request-Timestamp"] == "1531420618"
    assert fixed["X-Slack-Signature"] == verifier.generate_signature(
        timestamp="1531420618", body=body
    )
    assert not verifier.is_valid_request(body, fixed)  # stale timestamps are rejected


# --------------------------------------------------------------------------------------------
# Bot Framework connector
# --------------------------------------------------------------------------------------------


def anonymous_client(connector: FakeBotConnector) -> ConnectorClient:
    return ConnectorClient(MicrosoftAppCredentials("", ""), base_url=connector.url)


def message(text: str) -> Activity:
    return Activity(
        type=ActivityTypes.message,
        text=text,
        from_property=ChannelAccount(id="28:bot", name="Align"),
    )


def test_connector_reply_update_send_delete_are_recorded_with_decoded_ids() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", connector.url)
        async with anonymous_client(connector) as client:
            reply = await client.conversations.reply_to_activity(
                CHANNEL_THREAD, "1700000000001", message("hello")
            )
            await client.conversations.update_activity(CHANNEL_THREAD, reply.id, message("edited"))
            sent = await client.conversations.send_to_conversation(PERSONAL, message("dm"))
            await client.conversations.delete_activity(PERSONAL, sent.id)

        assert reply.id and sent.id and reply.id != sent.id
        kinds = [(s.kind, s.conversation_id, s.activity_id) for s in connector.sent]
        assert kinds == [
            ("reply", CHANNEL_THREAD, "1700000000001"),
            ("update", CHANNEL_THREAD, reply.id),
            ("send", PERSONAL, None),
            ("delete", PERSONAL, sent.id),
        ]
        first = connector.sent_of("reply")[0]
        assert first.text == "hello" and first.result_id == reply.id
        assert first.activity["type"] == "message"
        assert first.activity["from"] == {"id": "28:bot", "name": "Align"}
        assert first.authorization is None  # anonymous credentials send no token
        assert connector.sent_of("update")[0].text == "edited"

    run_with_connector(scenario)


def test_connector_members_paged_members_and_single_member() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        connector.members[CHANNEL] = ROSTER
        async with anonymous_client(connector) as client:
            members = await client.conversations.get_conversation_members(CHANNEL_THREAD)
            page1 = await client.conversations.get_conversation_paged_members(CHANNEL, 2)
            page2 = await client.conversations.get_conversation_paged_members(
                CHANNEL, 2, page1.continuation_token
            )
            ana = await client.conversations.get_conversation_member(CHANNEL, "aad-ana")
            with pytest.raises(HttpOperationError) as missing:
                await client.conversations.get_conversation_member(CHANNEL, "29:nobody")

        assert [(m.id, m.name, m.aad_object_id) for m in members] == [
            ("29:1ana", "Ana", "aad-ana"),
            ("29:1ben", "Ben", "aad-ben"),
            ("29:1cai", "Cai", "aad-cai"),
        ]
        assert [m.id for m in page1.members] == ["29:1ana", "29:1ben"]
        assert [m.id for m in page2.members] == ["29:1cai"] and page2.continuation_token is None
        assert ana.id == "29:1ana"
        assert missing.value.response.status_code == 404
        assert connector.sent == []  # reads are not "sent"...
        assert [r.kind for r in connector.requests] == [  # ...but every request is logged
            "get_members",
            "get_paged_members",
            "get_paged_members",
            "get_member",
            "get_member",
        ]

    run_with_connector(scenario)


def test_connector_serves_teams_info_for_a_channel_turn() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        connector.members[CHANNEL] = ROSTER
        activity = Activity(
            type=ActivityTypes.message,
            channel_id="msteams",
            service_url=connector.url,
            conversation=ConversationAccount(id=CHANNEL_THREAD, conversation_type="channel"),
            channel_data={"team": {"id": CHANNEL}, "tenant": {"id": "tenant-1"}},
            from_property=ChannelAccount(id="29:1ana", aad_object_id="aad-ana"),
        )
        turn = TurnContext(TestAdapter(), activity)
        async with anonymous_client(connector) as client:
            turn.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY] = client
            members = await TeamsInfo.get_members(turn)
            paged = await TeamsInfo.get_paged_members(turn, page_size=50)
            ana = await TeamsInfo.get_member(turn, "29:1ana")
        assert [m.email for m in members] == ["ana@example.com", None, None]
        assert [m.name for m in paged.members] == ["Ana", "Ben", "Cai"]
        assert ana.user_principal_name == "ana@example.com" and ana.tenant_id == "tenant-1"

    run_with_connector(scenario)


def test_connector_create_conversation_is_stable_per_member() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        params = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id="28:bot"),
            members=[ChannelAccount(id="29:1ana")],
            tenant_id="tenant-1",
            channel_data={"tenant": {"id": "tenant-1"}},
        )
        async with anonymous_client(connector) as client:
            first = await client.conversations.create_conversation(params)
            again = await client.conversations.create_conversation(params)
            await client.conversations.send_to_conversation(first.id, message("nudge"))
        assert first.id == again.id and first.id.startswith("a:")
        created = connector.sent_of("create_conversation")[0]
        assert created.result_id == first.id
        assert created.activity["members"] == [{"id": "29:1ana"}]
        assert created.activity["tenantID"] == "tenant-1"  # botbuilder's own spelling on the wire
        assert connector.sent_of("send")[0].conversation_id == first.id

    run_with_connector(scenario)


class _FixedTokenCredentials(MicrosoftAppCredentials):
    """App credentials whose token comes from here, not from login.microsoftonline.com."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return "fake-aad-token"


def test_connector_records_bearer_token_when_app_id_is_configured() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        credentials = _FixedTokenCredentials("app-id", "pw")
        async with ConnectorClient(credentials, base_url=connector.url) as client:
            await client.conversations.send_to_conversation(PERSONAL, message("hi"))
        assert connector.sent[0].authorization == "Bearer fake-aad-token"

    run_with_connector(scenario)


def test_connector_failure_injection_by_kind_and_path() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        connector.fail_next("reply", status=429, retry_after=3)
        connector.fail_next("send", status=500)
        async with anonymous_client(connector) as client:
            with pytest.raises(HttpOperationError) as limited:
                await client.conversations.reply_to_activity(PERSONAL, "1", message("x"))
            with pytest.raises(HttpOperationError) as broken:
                await client.conversations.send_to_conversation(PERSONAL, message("x"))
            await client.conversations.reply_to_activity(PERSONAL, "1", message("x"))
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "3"
        assert broken.value.response.status_code == 500  # msrest never retries POSTs
        failed = [(f.kind, f.status, f.conversation_id) for f in connector.failed]
        assert failed == [("reply", 429, PERSONAL), ("send", 500, PERSONAL)]
        assert len(connector.sent_of("reply")) == 1 and connector.sent_of("send") == []

    run_with_connector(scenario)


def test_connector_5xx_on_get_is_retried_by_msrest() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        connector.members[PERSONAL] = ROSTER[:1]
        connector.fail_next("/v3/conversations/*/members", status=503, retry_after=0)
        async with anonymous_client(connector) as client:
            members = await client.conversations.get_conversation_members(PERSONAL)
        assert [m.id for m in members] == ["29:1ana"]
        assert [(f.kind, f.status) for f in connector.failed] == [("get_members", 503)]
        assert len(connector.sent_of("get_members")) == 1

    run_with_connector(scenario)


def test_connector_async_wait_for() -> None:
    async def scenario(connector: FakeBotConnector) -> None:
        async with anonymous_client(connector) as client:

            async def later() -> None:
                await asyncio.sleep(0.05)
                await client.conversations.send_to_conversation(PERSONAL, message("late"))

            task = asyncio.create_task(later())
            sent = await connector.wait_for("send", timeout=2)
            await task
        assert sent[0].text == "late"
        with pytest.raises(TimeoutError, match="reply"):
            await connector.wait_for("reply", timeout=0.05)

    run_with_connector(scenario)


def test_connector_running_in_thread_with_sync_client() -> None:
    started = time.monotonic()
    with FakeBotConnector.running() as connector:
        client = SyncConnectorClient(MicrosoftAppCredentials("", ""), base_url=connector.url)
        send = lambda: client.conversations.send_to_conversation(PERSONAL, message("bg"))  # noqa: E731
        timer = threading.Timer(0.05, send)
        timer.start()
        sent = connector.wait_for_sync("send", timeout=2)
        timer.join()
        assert sent[0].conversation_id == PERSONAL and sent[0].text == "bg"
        connector.reset()
        assert connector.sent == [] and connector.requests == []
    assert not connector.is_running
    assert time.monotonic() - started < 3
