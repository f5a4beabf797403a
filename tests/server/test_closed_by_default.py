"""A Slack-only deployment has no Teams endpoint: an anonymous activity to `/api/messages`
naming a `serviceUrl` of the caller's choosing is a 404 — nothing stored, nobody called (no
roster read, no reply to that URL). Proven on the real server as tests build it, and on a real
`align serve` process configured only for Slack."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func, select

from adapters.bootstrap import App, build
from adapters.server import create_web_app
from bot.clock import FakeClock
from storage.models import ConversationRef, Decision, InboxEntry, OutboxMessage
from tests.conftest import make_settings, opened
from tests.fakes import FakeBotConnector, FakeSlackApi
from tests.server.process import align, free_port
from tests.slack.conftest import running_slack_server
from tests.teams.harness import message

MODELS = (Decision, ConversationRef, OutboxMessage)


def stored(app: App) -> dict[str, int]:
    """Rows of what a Teams activity would store (the inbox: Teams' requests only)."""
    with app.db.uow() as session:
        counts = {
            m.__name__: int(session.scalar(select(func.count()).select_from(m)) or 0)
            for m in MODELS
        }
        teams = select(func.count()).where(InboxEntry.platform == "teams")
        counts["InboxEntry"] = int(session.scalar(teams) or 0)
        return counts


@pytest.fixture
def connector() -> Iterator[FakeBotConnector]:
    """Where the attacker's `serviceUrl` points: it must hear nothing."""
    with FakeBotConnector.running() as running:
        yield running


def forged_posts(base: str, connector: FakeBotConnector) -> list[int]:
    activity = message("decide Ship it", service_url=connector.url)
    statuses = []
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = httpx.post(f"{base}/api/messages", json=activity, headers=headers, timeout=10)
        statuses.append(response.status_code)
    return statuses


def test_a_slack_only_server_answers_404_on_api_messages_and_calls_nobody(
    migrated_sqlite_url: str, clock: FakeClock, connector: FakeBotConnector
) -> None:
    with running_slack_server(migrated_sqlite_url, clock) as server:
        assert forged_posts(server.url, connector) == [404, 404]
        assert server.post_command("help").status_code == 200  # Slack itself is there
        server.settle()
        assert connector.requests == []
        assert stored(server.app) == dict.fromkeys(
            ("Decision", "ConversationRef", "InboxEntry", "OutboxMessage"), 0
        )


def test_a_socket_mode_server_exposes_neither_platform_route(
    migrated_sqlite_url: str, clock: FakeClock, connector: FakeBotConnector
) -> None:
    settings = make_settings(
        migrated_sqlite_url,
        SLACK_APP_TOKEN="xapp-1",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_API_URL="http://x/",
    )
    app = build(settings, clock=clock)

    async def main() -> list[int]:
        runner = web.AppRunner(await create_web_app(app), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with httpx.AsyncClient() as http:
                events = await http.post(f"{base}/slack/events", content=b"{}")
                health = await http.get(f"{base}/healthz")
            statuses = await asyncio.to_thread(forged_posts, base, connector)
            return [events.status_code, health.status_code, *statuses]
        finally:
            await runner.cleanup()

    try:
        assert asyncio.run(main()) == [404, 200, 404, 404]
        assert connector.requests == []
        assert sum(stored(app).values()) == 0
    finally:
        app.db.dispose()


def test_a_real_slack_only_align_serve_has_no_teams_endpoint(
    tmp_path: Path, connector: FakeBotConnector
) -> None:
    url = f"sqlite:///{tmp_path / 'align.db'}"
    port = free_port()
    with FakeSlackApi.running() as slack:
        env = {
            "ALIGN_DATABASE_URL": url,
            "ALIGN_SECRET": "s",
            "ALIGN_PORT": str(port),
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.url,
        }
        with align(tmp_path, "serve", port=port, **env) as serve:
            serve.wait_listening()
            # Slack over HTTP needs a public address; the Teams route is simply not there.
            assert f"Align listening on http://0.0.0.0:{port}" in serve.output
            assert forged_posts(f"http://127.0.0.1:{port}", connector) == [404, 404]
            serve.send(signal.SIGTERM)
            assert serve.wait(timeout=30) == 0
        assert [c.method for c in slack.calls] == ["auth.test"]  # the start-up check only
    assert connector.requests == []
    with opened(url) as app:
        assert sum(stored(app).values()) == 0
