"""`align serve`: one aiohttp server for Slack, Teams and health checks, plus the scheduler and
the outbox dispatcher. Each platform mounts its own routes; this module only assembles them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import click
from aiohttp import web

from adapters.bootstrap import App, build
from adapters.settings import Settings
from adapters.web_keys import ALIGN, SOCKET_MODE, SOCKET_STARTERS

log = logging.getLogger("align.server")

Mount = Callable[[web.Application, App], Awaitable[None] | None]


async def healthz(request: web.Request) -> web.Response:
    app: App = request.app[ALIGN]
    await asyncio.get_running_loop().run_in_executor(None, _ping, app)
    return web.json_response({"ok": True})


def _ping(app: App) -> None:
    from sqlalchemy import text

    with app.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _mounts() -> list[Mount]:
    """The platform parts present in this build (each adapter package provides `mount`)."""
    found: list[Mount] = []
    for module in ("adapters.slack.http", "adapters.teams.http", "adapters.runtime"):
        try:
            mod = __import__(module, fromlist=["mount"])
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        found.append(mod.mount)
    return found


async def create_web_app(app: App, *, mounts: list[Mount] | None = None) -> web.Application:
    """The aiohttp application with every platform's routes; tests start it on 127.0.0.1."""
    web_app = web.Application()
    web_app[ALIGN] = app
    web_app.router.add_get("/healthz", healthz)
    for mount in _mounts() if mounts is None else mounts:
        result = mount(web_app, app)
        if asyncio.iscoroutine(result):
            await result
    return web_app


@click.command()
@click.option("--socket", is_flag=True, help="Use Slack Socket Mode (SLACK_APP_TOKEN) for Slack.")
@click.option("--port", type=int, default=None, help="Port (default ALIGN_PORT or 3000).")
def serve(socket: bool, port: int | None) -> None:
    """Run the Slack and Teams endpoints, the scheduler and the outbox dispatcher."""
    settings = Settings()
    if not settings.secret:
        # The console's fallback key is derived from the database URL; on a shared server
        # anyone who knows the URL could recompute who cast an anonymous ballot.
        raise click.ClickException(
            "ALIGN_SECRET is not set. Set it to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`): it keys anonymous "
            "ballots and signs webhooks."
        )
    app = build(settings)

    async def main() -> None:
        web_app = await create_web_app(app)
        web_app[SOCKET_MODE] = socket
        runner = web.AppRunner(web_app)
        await runner.setup()
        site = web.TCPSite(runner, "0.0.0.0", port or settings.port)
        await site.start()
        click.echo(
            f"Align listening on :{port or settings.port}"
            + (" (Slack over Socket Mode)" if socket else "")
        )
        starters: list[Any] = web_app.get(SOCKET_STARTERS, [])
        for start in starters:
            await start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
