"""`align serve`: one aiohttp server for Slack, Teams and health checks, plus the scheduler and
the outbox dispatcher. Each platform mounts its own routes; this module only assembles them,
decides what this process is for (`--role`), and starts and stops it cleanly.

Start: the configuration is checked first (adapters/preflight.py: one line per platform, a
half-done one is one sentence and a non-zero exit), then the database is migrated, ALIGN_SECRET
is checked against the fingerprint the database holds (the first process stores it; another
secret is one sentence and a non-zero exit: adapters/bootstrap.py `check_secret`), the server
listens — on 0.0.0.0 only when a platform needs inbound HTTP, else on loopback — and Socket
Mode connects.

Stop, on SIGTERM (Docker, systemd, Kubernetes) or SIGINT (Ctrl-C): stop accepting (the listening
socket and Socket Mode close first), let requests and work in flight finish within
ALIGN_SHUTDOWN_GRACE seconds, give back the outbox leases still held, close the clients, exit 0.
The same stop, then exit 1, when `align adopt-secret` replaced the secret under a running
process: every role re-checks it (adapters/secret_watch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import click
from aiohttp import web

from adapters import cpu, priority, secret_watch
from adapters.bootstrap import App, build, check_secret
from adapters.preflight import ROLES, ConfigError, Plan, plan, verify
from adapters.settings import Settings
from adapters.web_keys import (
    ALIGN,
    SERVING,
    SHUTDOWN,
    SOCKET_MODE,
    SOCKET_STARTERS,
    STOP,
    Grace,
    Serving,
    Stop,
)

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


def _mounts(serving: Serving) -> list[Mount]:
    """The platform parts present in this build (each adapter package provides `mount`); a
    web process runs no scheduler, dispatcher or inbox recovery. The runtime and the recovery
    come first: cleanups run in mount order, and delivery and re-runs must stop before a
    platform closes the client they use. Every role watches ALIGN_SECRET (first: its cleanup
    only stops the watch)."""
    modules = ["adapters.slack.http", "adapters.teams.http", "adapters.about"]
    if serving.outbound:
        modules[0:0] = ["adapters.runtime", "adapters.recovery"]
    found: list[Mount] = [secret_watch.mount]
    if not serving.outbound:
        found.append(_drain_postings)
    for module in modules:
        try:
            mod = __import__(module, fromlist=["mount"])
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        found.append(mod.mount)
        if module == "adapters.runtime":
            found.append(_drain_postings)
    return found


def _drain_postings(web_app: web.Application, app: App) -> None:
    """At stop, let the live-message refreshes in flight finish (within the grace period)
    before the platforms close the clients they use: after the runtime, before the platforms."""

    async def drain(web_app: web.Application) -> None:
        try:
            await asyncio.wait_for(app.postings.idle(), web_app[SHUTDOWN].remaining())
        except TimeoutError:
            log.warning("live-message updates still running at the end of the grace period")

    web_app.on_cleanup.append(drain)


async def create_web_app(
    app: App, *, mounts: list[Mount] | None = None, serving: Serving | None = None
) -> web.Application:
    """The aiohttp application with every platform's routes; tests start it on 127.0.0.1."""
    serving = serving or Serving()
    web_app = web.Application()
    web_app[ALIGN] = app
    web_app[SERVING] = serving
    # ALIGN_HAND_OFF: only a web process hands off. In `all` the worker would be this same
    # process, with the same CPU and GIL: handing off would only add a trip through the database.
    app.inbox.hands_off = app.settings.hand_off and serving.role == "web"
    grace = web_app[SHUTDOWN] = Grace(app.settings.shutdown_grace)

    async def start_grace(_: web.Application) -> None:
        grace.start()

    web_app.on_shutdown.append(start_grace)  # first: every later step spends the same budget
    web_app.router.add_get("/healthz", healthz)
    for mount in _mounts(serving) if mounts is None else mounts:
        result = mount(web_app, app)
        if asyncio.iscoroutine(result):
            await result
    return web_app


def serve_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The flags `align serve` and `align doctor` share: doctor checks what serve would run."""
    f = click.option(
        "--teams-emulator",
        is_flag=True,
        help="Serve /api/messages without authentication for the Bot Framework Emulator "
        "(loopback only; MICROSOFT_APP_ID must be unset).",
    )(f)
    f = click.option("--port", type=int, default=None, help="Port (default ALIGN_PORT or 3000).")(f)
    f = click.option(
        "--host", default=None, help="Address to listen on (default ALIGN_HOST, see README)."
    )(f)
    f = click.option(
        "--role",
        type=click.Choice(ROLES),
        default="all",
        show_default=True,
        help="web: answer the platforms; worker: scheduler and outbox delivery; all: both.",
    )(f)
    f = click.option(
        "--socket", is_flag=True, help="Receive Slack over Socket Mode (SLACK_APP_TOKEN)."
    )(f)
    return f


@click.command()
@serve_options
def serve(
    socket: bool, role: str, host: str | None, port: int | None, teams_emulator: bool
) -> None:
    """Run the Slack and Teams endpoints, the scheduler and the outbox dispatcher."""
    logging.getLogger("align").setLevel(min(logging.INFO, logging.getLogger().level))
    settings = Settings()
    planned = plan(
        settings, role=role, socket=socket, teams_emulator=teams_emulator, host=host, port=port
    )
    yield_cpu(settings, planned.role)
    keeper = one_cpu(settings)
    app = build(settings)
    try:
        # Before anything is received or sent: a process with another secret must not start.
        check_secret(app)
        status = asyncio.run(_serve(app, planned, socket=socket and planned.inbound, keeper=keeper))
    finally:
        app.db.dispose()
    if status:
        raise click.exceptions.Exit(status)


def one_cpu(settings: Settings) -> cpu.Follow | None:
    """The process's threads on one CPU, as ALIGN_CPU says (adapters/cpu.py); before any
    thread starts, so that every thread inherits it. The `Follow` for `_serve` to run, if any."""
    try:
        return cpu.keep_on_one(settings.cpu)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def yield_cpu(settings: Settings, role: str) -> None:
    """Work yields to acks, by ALIGN_WORKER_NICE. A worker that runs what web processes hand off
    (ALIGN_HAND_OFF) takes a lower CPU priority: where it shares a host with web processes, a
    burst of work must not slow their acks — the queue waits instead, and its bound answers
    "busy". A process that acknowledges (`web`, `all`) lowers the threads its engine runs in,
    below its event loop's (adapters/priority.py). Called before any thread starts: on Linux
    each thread has its own priority, and new threads take their creator's."""
    if role == "worker" and settings.hand_off and settings.worker_nice:
        os.nice(settings.worker_nice)
        log.info("worker: CPU priority lowered by %d (ALIGN_WORKER_NICE)", settings.worker_nice)
    elif role != "worker":
        # A process that acknowledges: its engine's threads yield to its event loop
        # (adapters/priority.py).
        priority.work_yields(settings.worker_nice)


YOUNG_COLLECTED_AFTER = 5_000
"""Net new objects after which the garbage collector looks at the youngest ones (Python's
default: 700). A server's requests in flight hold more than 700 at any moment (1,000-1,400
with bench_slack's 20 commands in flight), so at 700 a collection ran every dozen commands only
to find them alive — none of a command's objects is cyclic garbage: 40-50 us of CPU per read
command. At 5,000 one runs when memory really grows; cycles are still collected, later."""


def collect_less() -> None:
    """Once the server is up: what start-up built — modules, the app, its pools and clients,
    some 175,000 objects, there for the life of the process — is moved out of the garbage
    collector's view (`gc.freeze`), so its full passes no longer walk all of it (100 ms each,
    three or four times in ten seconds of commands: 65-85 us of CPU per read command, measured
    in bench_slack); and the youngest objects are collected less often (YOUNG_COLLECTED_AFTER).
    Start-up's garbage is collected first, so only what lives on is frozen (a frozen object is
    never collected, were a cycle to drop it later)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTED_AFTER, middle, oldest)


async def _serve(app: App, planned: Plan, *, socket: bool, keeper: cpu.Follow | None = None) -> int:
    """Serve until stopped; the exit status: 0 after a signal, 1 after a part failed (`Stop`)."""
    stop = Stop()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.request)

    report = await verify(app.settings, planned)
    for line in report.lines:
        log.info("%s", line)
    for problem in report.problems:
        log.warning("%s", problem)

    emulator = planned.teams is not None and planned.teams.emulator
    serving = Serving(role=planned.role, teams_emulator=emulator)
    web_app = await create_web_app(app, serving=serving)
    web_app[SOCKET_MODE] = socket
    web_app[STOP] = stop
    grace = app.settings.shutdown_grace
    runner = web.AppRunner(web_app, handle_signals=False, shutdown_timeout=grace)
    await runner.setup()
    try:
        await _listen(runner, planned)
        collect_less()
        log.info(
            "Align listening on http://%s:%d (role %s)", planned.host, planned.port, planned.role
        )
        following = asyncio.ensure_future(cpu.follow(keeper)) if keeper else None
        try:
            await _until_stopped(web_app, stop.requested)
        finally:
            if following is not None:
                following.cancel()
        log.info("stopping: finishing work in flight (up to %.0f s)", grace)
    finally:
        await runner.cleanup()
    log.info("stopped")
    return 1 if stop.failed else 0


async def _listen(runner: web.AppRunner, planned: Plan) -> None:
    site = web.TCPSite(runner, planned.host, planned.port)
    try:
        await site.start()
    except OSError as exc:
        reason = {
            errno.EADDRINUSE: "the address is already in use (another `align serve`?)",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "no such address on this machine",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(
            f"Cannot listen on {planned.host}:{planned.port}: {reason}; set ALIGN_PORT / --port "
            "or ALIGN_HOST / --host."
        ) from exc


async def _until_stopped(web_app: web.Application, stop: asyncio.Event) -> None:
    """Run the start-up connections (Socket Mode) and wait for a signal; a start-up
    connection that fails for good (a refused token) ends the wait with its error."""
    starters: list[Any] = web_app.get(SOCKET_STARTERS, [])

    async def start_all() -> None:
        for start in starters:
            await start()

    starting = asyncio.ensure_future(start_all())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()  # raises ConfigError when Slack refused the app token
            await stopping
    finally:
        for task in (starting, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
