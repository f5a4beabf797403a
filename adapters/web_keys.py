"""Typed keys of the aiohttp application: what each mount leaves on it for the others.

aiohttp warns about plain string keys because nothing checks what is stored under them; these
carry their type, and one module names them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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
