"""Typed keys of the aiohttp application: what each mount leaves on it for the others.

aiohttp warns about plain string keys because nothing checks what is stored under them; these
carry their type, and one module names them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapters.bootstrap import App
from adapters.delivery import Sender

ALIGN = web.AppKey("align", App)
"""The wired application (engine, database, clock)."""

SENDERS = web.AppKey("senders", dict[str, Sender])
"""Outbox senders by platform; each platform's mount adds its own, the dispatcher reads them."""

SOCKET_MODE = web.AppKey("socket_mode", bool)
"""Set by `align serve --socket` before start-up: Slack arrives over Socket Mode."""

SOCKET_STARTERS = web.AppKey("socket_starters", list[Callable[[], Awaitable[None]]])
"""Coroutines `align serve` awaits once the server is up (Slack's Socket Mode client)."""


@dataclass(frozen=True)
class Serving:
    """What this `align serve` process is for (`--role`, `--teams-emulator`).

    A `web` process answers the platforms (inbound routes, Socket Mode) and delivers nothing on
    its own; a `worker` runs the scheduler and the outbox dispatcher with the platform senders
    and serves only /healthz; `all` is both. Replicas on one PostgreSQL database split that way.
    """

    role: str = "all"
    teams_emulator: bool = False

    @property
    def inbound(self) -> bool:
        return self.role in ("web", "all")

    @property
    def outbound(self) -> bool:
        return self.role in ("worker", "all")


SERVING = web.AppKey("serving", Serving)
"""Set by `create_web_app` before the mounts run: which parts each mount adds."""


class Grace:
    """The shutdown budget (ALIGN_SHUTDOWN_GRACE) shared by every step of stopping.

    The clock starts when the server stops accepting; each step (in-flight requests, Slack's
    background work, the dispatcher) waits only for what is left, so the whole stop fits in
    the one period a supervisor (Docker, systemd, Kubernetes) allows before it kills.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline: float | None = None

    def start(self) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + self.seconds

    def remaining(self) -> float:
        if self._deadline is None:
            return self.seconds
        return max(0.0, self._deadline - time.monotonic())


SHUTDOWN = web.AppKey("shutdown", Grace)
"""The running server's shutdown budget; started by its first on_shutdown handler."""


class Stop:
    """How a running `align serve` is asked to stop: by a signal (`request`, exit 0), or by a
    part that found it must not go on (`fail`: that part logged why; the stop is the same,
    work in flight finishing within the grace period, then the process exits 1 so that its
    supervisor shows it)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.failed = False

    def request(self) -> None:
        self.requested.set()

    def fail(self) -> None:
        self.failed = True
        self.requested.set()


STOP = web.AppKey("stop", Stop)
"""Set by `align serve` before start-up; absent from an app a test starts itself."""
