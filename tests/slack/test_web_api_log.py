"""slack-sdk writes a debug line for every Web API call and response_url answer — the whole
request and reply, Block Kit included — and builds it whenever its logger has no level of its
own, only to have it dropped unless debug output is on. Align's clients build it only when it
is logged (`align -v`), and then log it as before."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from adapters.slack.client import web_client
from adapters.slack.listeners import pooled
from tests.conftest import make_settings
from tests.fakes import FakeSlackApi
from tests.slack.conftest import SlackServer


class Shown(str):
    """Message text that counts how often it is written into a line of text (`repr`); the
    request's JSON is encoded without it."""

    written = 0

    def __repr__(self) -> str:
        Shown.written += 1
        return super().__repr__()


def post_and_answer(text: str) -> None:
    """chat.postMessage with Align's Web API client, and an answer to a response_url with
    the one a listener uses (`pooled`), both to the fake Slack."""

    async def main() -> None:
        async with FakeSlackApi() as fake, aiohttp.ClientSession() as session:
            settings = make_settings("sqlite://", SLACK_API_URL=fake.url)
            client = web_client(settings, token="xoxb-test", session=session)
            await client.chat_postMessage(channel="C0PRODUCT1", text=text)

            async def respond(**body: object) -> None:
                raise AssertionError("Bolt's own respond: not the pooled one")

            respond.response_url = fake.response_url("log")  # type: ignore[attr-defined]
            await pooled(respond, session)(text=text, response_type="ephemeral")
            assert len(fake.calls_to("chat.postMessage")) == len(fake.responses) == 1

    asyncio.run(main())


def test_without_debug_output_no_debug_line_is_built(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    Shown.written = 0
    post_and_answer(Shown("Ship it"))
    assert Shown.written == 0


def test_with_debug_output_both_calls_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    Shown.written = 0
    post_and_answer(Shown("Ship it"))
    assert Shown.written > 0
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sending")]
    assert any("chat.postMessage" in m and "Ship it" in m for m in sent)
    assert any("/response/log" in m and "Ship it" in m for m in sent)


def test_bolts_clients_log_as_the_apps_does(
    slack_server: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The client a listener gets is one Bolt builds per request, from the app's."""
    caplog.set_level(logging.DEBUG)
    slack_server.post_command("decide Log the client")  # a read would answer in its ack
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    assert any(
        r.name == "slack_sdk.web.async_base_client" and "chat.postMessage" in r.getMessage()
        for r in caplog.records
    )
