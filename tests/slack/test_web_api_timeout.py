"""A Slack that does not answer costs a call at most WEB_API_TIMEOUT, not aiohttp's five
minutes: slack-sdk applies its own timeout only to sessions it opens, and every Web API call
of a server runs on the one pool it shares (`shared_session`)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from slack_sdk.errors import SlackClientError

from adapters.slack import client
from adapters.slack.client import shared_session, web_client
from tests.conftest import make_settings


async def _slack_that_never_answers() -> tuple[web.AppRunner, str, asyncio.Event]:
    released = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await released.wait()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/{method}", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/api/", released


def test_a_web_api_call_on_the_shared_pool_gives_up_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "WEB_API_TIMEOUT", 0.5)

    async def main() -> float:
        runner, url, released = await _slack_that_never_answers()
        settings = make_settings("sqlite://", SLACK_API_URL=url)
        session = shared_session()
        try:
            slack = web_client(settings, token="xoxb-test", interactive=False, session=session)
            started = time.monotonic()
            with pytest.raises((SlackClientError, asyncio.TimeoutError)):
                # Bounded here too, so a missing timeout fails the test instead of hanging it.
                await asyncio.wait_for(slack.chat_postMessage(channel="C1", text="hi"), 10)
            return time.monotonic() - started
        finally:
            released.set()
            await session.close()
            await runner.cleanup()

    waited = asyncio.run(main())
    assert waited < 5, f"gave up after {waited:.1f} s, not after the shared pool's timeout"
