"""`align serve --role web|worker|all`: a web process answers the platforms and delivers nothing
on its own; a worker runs the scheduler and the outbox dispatcher with the platform senders and
serves only /healthz; `all` is both. Replicas split that way on one PostgreSQL behave as one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiohttp import web

from adapters import recovery, runtime
from adapters.bootstrap import build
from adapters.server import create_web_app
from adapters.web_keys import SENDERS, Serving
from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.teams.harness import message

BOTH = {
    "SLACK_SIGNING_SECRET": "sig",
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never called here
    "MICROSOFT_APP_ID": "0b6fe6d1-0000-4000-8000-000000000001",
    "MICROSOFT_APP_PASSWORD": "p",
}

ACTIVITY = message("help", service_url="http://127.0.0.1:9/")  # a whole activity, no token


def serve_as(
    role: str, migrated_sqlite_url: str, clock: FakeClock
) -> tuple[dict[str, int], set[str], bool]:
    """(status of each route, the senders registered, whether the runtime and the inbox
    recovery are mounted — both or neither)."""
    app = build(make_settings(migrated_sqlite_url, **BOTH), clock=clock)

    async def main() -> tuple[dict[str, int], set[str], bool]:
        web_app = await create_web_app(app, serving=Serving(role=role))
        background = {runtime.RUNTIME_KEY in web_app, recovery.RECOVERY in web_app}
        assert len(background) == 1, "the runtime and the inbox recovery go together"
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                statuses = {
                    "/healthz": (await http.get("/healthz")).status_code,
                    # unsigned / tokenless: 401 where the route exists, 404 where it does not
                    "/slack/events": (await http.post("/slack/events", content=b"{}")).status_code,
                    "/api/messages": (await http.post("/api/messages", json=ACTIVITY)).status_code,
                }
            return statuses, set(web_app.get(SENDERS, {})), background.pop()
        finally:
            await runner.cleanup()

    try:
        return asyncio.run(main())
    finally:
        app.db.dispose()


@pytest.mark.parametrize(
    ("role", "routes", "senders", "runs_runtime"),
    [
        ("web", {"/healthz": 200, "/slack/events": 401, "/api/messages": 401}, set(), False),
        (
            "worker",
            {"/healthz": 200, "/slack/events": 404, "/api/messages": 404},
            {"slack", "teams", "webhook"},
            True,
        ),
        (
            "all",
            {"/healthz": 200, "/slack/events": 401, "/api/messages": 401},
            {"slack", "teams", "webhook"},
            True,
        ),
    ],
)
def test_each_role_mounts_its_half(
    role: str,
    routes: dict[str, int],
    senders: set[str],
    runs_runtime: bool,
    migrated_sqlite_url: str,
    clock: FakeClock,
) -> None:
    assert serve_as(role, migrated_sqlite_url, clock) == (routes, senders, runs_runtime)


def test_the_pages_the_teams_package_links_to_are_served(
    migrated_sqlite_url: str, clock: FakeClock
) -> None:
    app = build(make_settings(migrated_sqlite_url), clock=clock)

    async def main(role: str) -> dict[str, tuple[int, str]]:
        web_app = await create_web_app(app, serving=Serving(role=role))
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with httpx.AsyncClient(base_url=base) as http:
                pages = {}
                for path in ("/", "/privacy", "/terms"):
                    response = await http.get(path)
                    pages[path] = (response.status_code, response.text)
                return pages
        finally:
            await runner.cleanup()

    try:
        pages = asyncio.run(main("all"))
        assert {path: status for path, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
        assert "keyed hash" in pages["/privacy"][1]
        assert "MIT licence" in pages["/terms"][1]
        worker = asyncio.run(main("worker"))
        assert {path: status for path, (status, _) in worker.items()} == dict.fromkeys(pages, 404)
    finally:
        app.db.dispose()
