"""Live messages kept current: the one place that carries out the engine's posting effects.

The engine states what happened (`bot/effects.py`); this service does the rest, the same way for
every platform and for every path a reply takes (a direct answer, a button click, an outbox
message the scheduler queued):

- `Posted(ref)` and the message landed somewhere → remember (platform, conversation, message) as
  a live message of `ref`;
- `Changed(ref, …)` → re-render `ref` once and update every live message of it on that platform;
  a burst of changes (forty clicks in a second) costs one or two updates, since at most one
  refresh per (platform, workspace, ref) runs and a change arriving meanwhile marks it dirty, so
  the last state is always shown. The message an action came from (the clicked card) is
  remembered first if it was not known;
- a platform that says a live message is gone (`PostingGone`) → stop updating it.

Each platform registers one `Updater` (render the neutral view its way and edit the message in
place). Adapters call `apply`; they decide nothing from the reply's data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.context import Actor
from bot.effects import Changed, Effect, Posted
from bot.engine import Engine
from bot.views import Reply

log = logging.getLogger("align.postings")


@dataclass(frozen=True)
class Posting:
    """One live message: where it is, and in which workspace and channel its object lives."""

    platform: str
    workspace: str
    channel: str
    conversation: str
    message_id: str


class PostingGone(Exception):
    """Raised by an updater when the platform says the message no longer exists."""


Updater = Callable[[Posting, Reply], Awaitable[None]]
Run = Callable[..., Awaitable[Any]]


async def _to_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass
class _Refresh:
    dirty: bool = True
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Postings:
    """Remembers live messages and refreshes them, coalesced, through one updater per platform."""

    def __init__(self, engine: Engine, *, run: Run | None = None) -> None:
        self.engine = engine
        self.run: Run = run or _to_thread
        self.updaters: dict[str, Updater] = {}
        self._refreshing: dict[tuple[str, str, str], _Refresh] = {}
        self.updates = 0  # messages edited, for tests and the benchmark

    def add_updater(self, platform: str, updater: Updater) -> None:
        self.updaters[platform] = updater

    async def apply(
        self,
        effects: tuple[Effect, ...],
        *,
        actor: Actor,
        posted: tuple[str, str] | None = None,
        origin: tuple[str, str] | None = None,
    ) -> None:
        """Carry out a reply's effects. `posted` is where the reply itself landed (conversation,
        message id), `origin` the message the action was taken on (a clicked card), if any."""
        for effect in effects:
            try:
                if isinstance(effect, Posted):
                    if posted is not None:
                        await self._remember(actor, effect.ref, posted)
                elif isinstance(effect, Changed):
                    if origin is not None and origin[1]:
                        await self._remember(actor, effect.ref, origin, if_new=True)
                    self.changed(actor, effect.ref)
            except Exception:  # the reply is out; keeping its live message current is a nicety
                log.exception("posting effect %s failed", effect)

    def changed(self, actor: Actor, ref: str) -> None:
        """Bring every live message of `ref` on the actor's platform up to date, coalesced."""
        if actor.platform not in self.updaters:
            return
        key = (actor.platform, actor.workspace, ref.upper())
        refresh = self._refreshing.get(key)
        if refresh is not None:
            refresh.dirty = True
            return
        refresh = self._refreshing[key] = _Refresh()
        # Live messages are shared: channel time and no one's admin rights, not the actor's.
        viewer = replace(actor, user="", tz=None, is_admin=False)
        refresh.task = asyncio.get_running_loop().create_task(self._refresh(key, refresh, viewer))

    @property
    def busy(self) -> bool:
        return bool(self._refreshing)

    async def idle(self) -> None:
        """Wait until no refresh is running (tests, shutdown)."""
        while self._refreshing:
            tasks = [r.task for r in self._refreshing.values() if r.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _remember(
        self, actor: Actor, ref: str, where: tuple[str, str], *, if_new: bool = False
    ) -> None:
        if if_new and where in await self.run(self.engine.postings, actor, ref):
            return
        await self.run(
            self.engine.remember_posting,
            actor,
            ref,
            conversation=where[0],
            message_id=where[1],
        )

    async def _refresh(self, key: tuple[str, str, str], refresh: _Refresh, viewer: Actor) -> None:
        ref = key[2]
        update = self.updaters[viewer.platform]
        try:
            while refresh.dirty:
                refresh.dirty = False
                view: Reply = await self.run(self.engine.live_view, viewer, ref)
                if not view.ok:
                    return
                found = await self.run(self.engine.postings, viewer, ref)
                for conversation, message_id in found:
                    posting = Posting(
                        viewer.platform, viewer.workspace, viewer.channel, conversation, message_id
                    )
                    try:
                        await update(posting, view)
                        self.updates += 1
                    except PostingGone:
                        log.info("live message %s of %s is gone; forgetting it", message_id, ref)
                        await self.run(
                            self.engine.forget_posting,
                            viewer,
                            ref,
                            conversation=conversation,
                            message_id=message_id,
                        )
                    except Exception as exc:
                        log.warning("updating %s message %s failed: %s", ref, message_id, exc)
        except Exception:
            log.exception("refreshing %s failed", ref)
        finally:
            self._refreshing.pop(key, None)


__all__ = ["Posting", "PostingGone", "Postings", "Updater"]
