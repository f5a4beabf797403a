"""Multi-workspace installs, end to end over HTTP: `align serve` with a client id and secret, a
browser's way through /slack/install and /slack/oauth_redirect (the state cookie included), the
code exchange against the fake Slack Web API, and what a stored installation then authorises —
or, after `app_uninstalled`, no longer does. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import aiohttp
import pytest
from aiohttp import web
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, event, func, select

from adapters.bootstrap import App, build
from adapters.runtime import Dispatcher
from adapters.server import create_web_app
from adapters.slack.installs import BOT_SCOPES, installation_store, oauth_settings
from adapters.web_keys import SENDERS
from bot import outbox
from bot.clock import FakeClock
from bot.context import Actor
from bot.views import Reply
from tests.conftest import make_settings
from tests.fakes import FakeSlackApi, sign_slack_request

pytestmark = pytest.mark.filterwarnings(
    "ignore:BasicAuth is deprecated:DeprecationWarning"  # slack_sdk's oauth.v2.access call
)

SIGNING_SECRET = "oauth-test-signing-secret"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-test-client-secret"
COOKIE = "slack-app-oauth-state"
CHANNEL = "C0OAUTH001"


def _store_metadata() -> MetaData:
    """The tables exactly as slack-sdk's stores define them."""
    metadata = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states")
    return metadata


# --------------------------------------------------------------------------------------------
# Schema and stores (no HTTP)
# --------------------------------------------------------------------------------------------


def test_migration_creates_the_tables_the_stores_define(app: App) -> None:
    metadata = _store_metadata()
    with app.db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _parent: (
                    type_ != "table" or name in metadata.tables
                ),
            },
        )
        diff = compare_metadata(context, metadata)
    assert diff == [], f"migration 0002 differs from slack-sdk's tables: {diff}"
    with app.db.engine.connect() as conn:  # and they exist (an empty diff on no tables is easy)
        for table in metadata.sorted_tables:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_single_workspace_mode_has_no_oauth(app: App) -> None:
    assert oauth_settings(app) is None
    assert installation_store(app) is None


def test_threaded_stores_save_find_and_forget(migrated_db_url: str, clock: FakeClock) -> None:
    from slack_sdk.oauth.installation_store import Installation

    built = build(
        make_settings(
            migrated_db_url, SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET
        ),
        clock=clock,
    )
    try:
        settings = oauth_settings(built)
        assert settings is not None
        assert list(settings.scopes or []) == list(BOT_SCOPES)
        store = settings.installation_store

        async def scenario() -> None:
            for team in ("T0ONE00001", "T0TWO00002"):
                await store.async_save(
                    Installation(
                        app_id="A0APP00001",
                        team_id=team,
                        bot_token=f"xoxb-{team}",
                        bot_id="B0BOT00001",
                        bot_user_id="U0BOT00001",
                        bot_scopes=",".join(BOT_SCOPES),
                        user_id="U0INSTALL1",
                    )
                )
            bot = await store.async_find_bot(enterprise_id=None, team_id="T0ONE00001")
            assert bot is not None and bot.bot_token == "xoxb-T0ONE00001"
            await store.async_delete_all(enterprise_id=None, team_id="T0ONE00001")
            assert await store.async_find_bot(enterprise_id=None, team_id="T0ONE00001") is None
            other = await store.async_find_bot(enterprise_id=None, team_id="T0TWO00002")
            assert other is not None and other.bot_token == "xoxb-T0TWO00002"

            state = await settings.state_store.async_issue()
            assert await settings.state_store.async_consume(state) is True
            assert await settings.state_store.async_consume(state) is False  # once only

        asyncio.run(scenario())
    finally:
        built.db.dispose()


# --------------------------------------------------------------------------------------------
# Over HTTP
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    app: App
    url: str
    slack: FakeSlackApi
    http: aiohttp.ClientSession
    web_app: web.Application

    async def install(self) -> tuple[str, str]:
        """GET /slack/install like a browser: returns (the page's authorize URL, the cookie)."""
        async with self.http.get(self.url + "/slack/install", allow_redirects=False) as resp:
            assert resp.status in (200, 302), await resp.text()
            location = resp.headers.get("Location") or _authorize_link(await resp.text())
            cookie = resp.cookies[COOKIE].value
        return location, cookie

    async def redirect(self, query: dict[str, str], cookie: str | None) -> tuple[int, str]:
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie is not None else {}
        async with self.http.get(
            self.url + "/slack/oauth_redirect?" + urlencode(query), headers=headers
        ) as resp:
            return resp.status, await resp.text()

    async def command(self, text: str, *, team: str) -> tuple[int, str]:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": team,
                "team_domain": "oauth-test",
                "channel_id": CHANNEL,
                "channel_name": "product",
                "user_id": "U0ANA00001",
                "user_name": "ana",
                "command": "/align",
                "text": text,
                "api_app_id": self.slack.app_id,
                "is_enterprise_install": "false",
                "response_url": self.slack.response_url(f"cmd-{time.monotonic_ns()}"),
                "trigger_id": f"{time.time_ns()}.738474920.8088930838d88f008e0",
            }
        )
        return await self._signed(body, "application/x-www-form-urlencoded")

    async def event(self, event: dict[str, Any], *, team: str) -> tuple[int, str]:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team,
                "api_app_id": self.slack.app_id,
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{time.monotonic_ns()}",
                "event_time": int(time.time()),
            }
        )
        return await self._signed(body, "application/json")

    async def _signed(self, body: str, content_type: str) -> tuple[int, str]:
        headers = {"Content-Type": content_type, **sign_slack_request(SIGNING_SECRET, body)}
        async with self.http.post(self.url + "/slack/events", data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    def rows(self, table: str, team: str) -> list[dict[str, Any]]:
        t = _store_metadata().tables[table]
        with self.app.db.engine.connect() as conn:
            result = conn.execute(select(t).where(t.c.team_id == team))
            return [dict(row) for row in result.mappings()]


def _authorize_link(page: str) -> str:
    found = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page)
    assert found, f"no link to Slack's authorize page in: {page[:500]}"
    return html.unescape(found[1])


@asynccontextmanager
async def serving(migrated_db_url: str, clock: FakeClock) -> AsyncIterator[Server]:
    async with FakeSlackApi() as slack:
        app = build(
            make_settings(
                migrated_db_url,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_CLIENT_ID=CLIENT_ID,
                SLACK_CLIENT_SECRET=CLIENT_SECRET,
                SLACK_API_URL=slack.url,
            ),
            clock=clock,
        )
        web_app = await create_web_app(app)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as http:
                yield Server(app, f"http://127.0.0.1:{port}", slack, http, web_app)
        finally:
            await runner.cleanup()
            app.db.dispose()


def run(
    migrated_db_url: str, clock: FakeClock, scenario: Callable[[Server], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with serving(migrated_db_url, clock) as server:
            await scenario(server)

    asyncio.run(main())


def test_install_links_to_slacks_consent_page_with_a_state(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        location, cookie = await server.install()
        url = urlparse(location)
        assert (url.scheme, url.netloc, url.path) == ("https", "slack.com", "/oauth/v2/authorize")
        query = parse_qs(url.query)
        assert query["client_id"] == [CLIENT_ID]
        assert query["scope"] == [",".join(BOT_SCOPES)]
        assert query["state"] == [cookie]  # the browser carries the same state back
        table = _store_metadata().tables["slack_oauth_states"]
        with server.app.db.engine.connect() as conn:
            stored = conn.execute(select(table.c.state)).scalars().all()
        assert stored == [cookie]

    run(migrated_db_url, clock, scenario)


def test_oauth_redirect_saves_the_install_and_its_token_authorises_commands(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        slack = server.slack
        _, state = await server.install()
        status, page = await server.redirect({"code": "c0de-from-slack", "state": state}, state)
        assert status == 200, page

        (exchange,) = slack.calls_to("oauth.v2.access")
        assert exchange.args["code"] == "c0de-from-slack"
        assert exchange.basic_auth == (CLIENT_ID, CLIENT_SECRET)
        token = f"xoxb-{slack.team_id}-{slack.bot_user_id}-fakeaccesstoken"
        (installation,) = server.rows("slack_installations", slack.team_id)
        assert installation["bot_token"] == token
        assert installation["client_id"] == CLIENT_ID
        (bot,) = server.rows("slack_bots", slack.team_id)
        assert bot["bot_token"] == token and bot["bot_user_id"] == slack.bot_user_id

        before = len(slack.calls)
        status, _ = await server.command("decide Ship the EU launch first", team=slack.team_id)
        assert status == 200
        await slack.wait_for("chat.postMessage")
        used = [call for call in slack.calls[before:] if call.token is not None]
        assert used, slack.calls_summary()
        assert {call.token for call in used} == {token}, slack.calls_summary()
        actor = Actor(workspace=f"slack:{slack.team_id}", channel=CHANNEL, user="U0ANA00001")
        listed = server.app.engine.handle(actor, "decisions")
        assert "Ship the EU launch first" in json.dumps(dict(listed.data))

        # The token is checked with Slack (auth.test) once, not on every command.
        checks = len(slack.calls_to("auth.test"))
        status, answer = await server.command("decisions", team=slack.team_id)
        assert status == 200
        assert "Ship the EU launch first" in answer  # a read: answered in its ack
        assert len(slack.calls_to("auth.test")) == checks

    run(migrated_db_url, clock, scenario)


def test_a_bad_state_is_refused_and_nothing_is_saved(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        slack = server.slack
        _, state = await server.install()
        forged = "00000000-0000-0000-0000-000000000000"
        # The browser's cookie matches, but our database never issued this state.
        status, page = await server.redirect({"code": "c0de", "state": forged}, forged)
        assert status == 401, page  # Bolt's "invalid_state"
        # A real state, but not from this browser (no cookie): someone else's link.
        status, page = await server.redirect({"code": "c0de", "state": state}, None)
        assert status == 400, page  # Bolt's "invalid_browser"
        assert slack.calls_to("oauth.v2.access") == []
        assert server.rows("slack_installations", slack.team_id) == []
        assert server.rows("slack_bots", slack.team_id) == []
        # The real state is still good for its own browser, once.
        status, page = await server.redirect({"code": "c0de", "state": state}, state)
        assert status == 200, page
        status, page = await server.redirect({"code": "c0de", "state": state}, state)
        assert status == 401, page  # consumed: a replayed redirect installs nothing
        assert len(slack.calls_to("oauth.v2.access")) == 1

    run(migrated_db_url, clock, scenario)


def test_uninstall_forgets_the_tokens_and_keeps_the_data(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        slack = server.slack
        _, state = await server.install()
        assert (await server.redirect({"code": "c0de", "state": state}, state))[0] == 200
        status, _ = await server.command("decide Keep the data on uninstall", team=slack.team_id)
        assert status == 200
        await slack.wait_for("chat.postMessage")  # the engine's work happens after the ack
        assert server.rows("slack_bots", slack.team_id)

        status, _ = await server.event({"type": "app_uninstalled"}, team=slack.team_id)
        assert status == 200
        await _until(lambda: not server.rows("slack_installations", slack.team_id))
        assert server.rows("slack_bots", slack.team_id) == []

        actor = Actor(workspace=f"slack:{slack.team_id}", channel=CHANNEL, user="U0ANA00001")
        listed = server.app.engine.handle(actor, "decisions")
        assert "Keep the data on uninstall" in json.dumps(dict(listed.data))

        # With no token left, a command from that workspace is not served; Bolt tells the
        # user (through the response_url) to reinstall.
        before = len(slack.responses)
        status, _ = await server.command("decisions", team=slack.team_id)
        assert status == 200
        responses = await slack.wait_for_responses(before + 1)
        assert "reinstall" in json.dumps(responses[-1].body).lower()

    run(migrated_db_url, clock, scenario)


def test_tokens_revoked_for_the_bot_forgets_its_token(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        slack = server.slack
        _, state = await server.install()
        assert (await server.redirect({"code": "c0de", "state": state}, state))[0] == 200
        event = {"type": "tokens_revoked", "tokens": {"bot": [slack.bot_user_id]}}
        status, _ = await server.event(event, team=slack.team_id)
        assert status == 200
        await _until(lambda: not server.rows("slack_bots", slack.team_id))

    run(migrated_db_url, clock, scenario)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Bolt acks an event before its listener finishes; wait (briefly) for the listener."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def test_an_outbox_pass_reads_each_workspaces_installation_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def scenario(server: Server) -> None:
        slack = server.slack
        _, state = await server.install()
        assert (await server.redirect({"code": "c0de", "state": state}, state))[0] == 200
        workspace = f"slack:{slack.team_id}"
        with server.app.db.uow() as session:
            for n in range(6):  # three channels, two messages each: three lanes
                outbox.enqueue(
                    session,
                    workspace=workspace,
                    channel=f"C0LANE000{n % 3}",
                    platform="slack",
                    kind="digest",
                    reply=Reply(ok=True, kind="digest", text=f"Digest {n}"),
                    key=f"digest:{n}",
                    now=clock.now(),
                )
        lookups: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "FROM slack_bots" in statement:
                lookups.append(statement)

        event.listen(server.app.db.engine, "before_cursor_execute", count)
        try:
            dispatcher = Dispatcher(server.app, server.web_app[SENDERS], pacing={"slack": 0.0})
            assert await dispatcher.run_once() == 6
        finally:
            event.remove(server.app.db.engine, "before_cursor_execute", count)
        posts = slack.calls_to("chat.postMessage")
        assert sorted(p.args["text"] for p in posts) == [f"Digest {n}" for n in range(6)]
        assert len(lookups) == 1

        # The next pass looks again: a token revoked between passes is not used.
        with server.app.db.uow() as session:
            outbox.enqueue(
                session,
                workspace=workspace,
                channel="C0LANE0000",
                platform="slack",
                kind="digest",
                reply=Reply(ok=True, kind="digest", text="Digest 6"),
                key="digest:6",
                now=clock.now(),
            )
        event.listen(server.app.db.engine, "before_cursor_execute", count)
        try:
            assert await dispatcher.run_once() == 1
        finally:
            event.remove(server.app.db.engine, "before_cursor_execute", count)
        assert len(lookups) == 2

    run(migrated_db_url, clock, scenario)
