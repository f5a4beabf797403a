"""Who is asking, where, and the services a command may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.webhook_targets import TargetPolicy
from storage.db import Database, UnitOfWork


@dataclass(frozen=True)
class Actor:
    """A person in a channel of a workspace, as the adapter identified them."""

    workspace: str
    channel: str
    user: str
    is_admin: bool = False
    tz: str | None = None
    platform: str = "console"
    mentions: tuple[tuple[str, str], ...] = ()

    def mention_map(self) -> dict[str, str]:
        return dict(self.mentions)


@dataclass(frozen=True)
class Event:
    """Something happened that other tools or later messages may care about."""

    name: str
    workspace: str
    channel: str
    platform: str
    payload: dict[str, Any]


EventListener = Callable[[UnitOfWork, Event, datetime], None]
"""Called inside the transaction of the change, so what it writes commits with it or not at all."""


@dataclass
class Deps:
    db: Database
    clock: Clock
    secret: bytes
    admins: frozenset[str] = frozenset()
    listeners: list[EventListener] = field(default_factory=list)
    webhook_targets: TargetPolicy = field(default_factory=TargetPolicy)

    def emit(self, session: UnitOfWork, event: Event) -> None:
        now = self.clock.now()
        for listener in self.listeners:
            listener(session, event, now)
