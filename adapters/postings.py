"""Live messages kept current: the one place that carries out the engine's posting effects.

The engine states what happened (`bot/effects.py`); this service does the rest, the same way for
every platform and for every path a reply takes (a direct answer, a button click, an outbox
message the scheduler queued):

- `Posted(ref)` and the message landed somewhere → remember (platform, conversation, message) as
  a live message of `ref`;
- `Changed(ref, …)` → count the change on `ref`'s live messages in the database, then take the
  turn to update them if no worker (on any replica) has it: re-render `ref` once, edit every live
  message of it on that platform, record what they show — and go again while changes arrived
  meanwhile, so the last state is always shown. One worker updates a message at a time, at most
  once per UPDATE_SPACING, across all replicas (the state is in `postings`, bot/postings.py): a
  burst of forty clicks on three replicas costs about one edit per second, not one per click.
  The message an action came from (the clicked card) is remembered first if it was not known —
  known once, it is remembered in memory (`_known`): checking the database on every click of a
  burst cost a poll load, ~10 ms of CPU a click, for an answer that never changes;
- a platform that says a live message is gone (`PostingGone`) → stop updating it;
- `catch_up()` (run by the worker's periodic wake-up) finishes what a worker that died mid-update
  left behind, and tries again an edit the platform refused: recorded as shown, a failed last
  edit of a burst was never tried again (no later change came), and the message stayed behind
  for good. The first retry comes RETRY_FAILED after the failure, each next one twice as late
  (up to RETRY_FAILED_MOST), counted per message in the database (`postings.failures`) so every
  replica keeps the same pace, and back to RETRY_FAILED once an edit goes out: a message the
  platform keeps refusing (a revoked token, the app removed from the channel) was retried every
  ten seconds for as long as the process lived. FAILURES_WARNED failures in a row are logged at
  WARNING, once; a failure before or after that, at INFO. (An error that means the message can
  never be edited again is the updater's to raise as `PostingGone`, and forgets it.)

A change is counted in the database before anything else happens to it, as only then can every
replica and the catch-up see it. Until it is counted it lives in this process alone (`dirty`),
so counting that fails (the database is briefly away) is tried again, COUNT_RETRY after it and
twice as late each time (up to COUNT_RETRY_MOST), for as long as the process lives: given up,
the change was lost, and its message stayed behind for good with nothing in the database to say
so. Anything that fails after the count (the claim, the render, recording an edit) needs no such
retry: the row says the message is behind, and `catch_up` finishes it.

Each platform registers one `Updater` (render the neutral view its way and edit the message in
place). Adapters call `apply`; they decide nothing from the reply's data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from adapters.process import worker_id
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
Sleep = Callable[[float], Awaitable[None]]

UPDATE_SPACING = timedelta(seconds=1)
"""The least time between two edits of one message, across replicas (Slack allows about one
chat.update per second per message before it rate-limits)."""
KNOWN_POSTINGS = 10_000
"""How many live messages a process remembers as noted (`_known`) before it starts over."""
RETRY_FAILED = timedelta(seconds=10)
"""How long a live message whose edit failed waits before the worker's periodic catch-up tries
it again (the client already retried what it retries: a 429 after Retry-After, a 5xx): not in
a loop, at a platform that is failing or rate-limiting. Each further failure in a row doubles
the wait."""
RETRY_FAILED_MOST = timedelta(hours=1)
"""The longest wait between two tries of a message whose edits keep failing: a token restored
or the app invited back shows in the message within the hour, and a message that can never be
edited again costs one call an hour, not one every ten seconds."""
FAILURES_WARNED = 5
"""Failed edits of one message in a row after which it is logged at WARNING (once per run)."""
COUNT_RETRY = timedelta(seconds=1)
"""How long a change that could not be counted in the database waits before it is counted
again; doubled on each failure in a row."""
COUNT_RETRY_MOST = timedelta(minutes=1)
"""The longest wait between two tries to count a change while the database is away."""
UPDATE_LEASE = timedelta(seconds=30)
"""How long a worker's turn to update a message lasts: an edit takes well under a second; a
worker that dies mid-update leaves the message to `catch_up` after this."""


async def _to_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def backoff(first: timedelta, most: timedelta, failures: int) -> timedelta:
    """The wait after `failures` failures in a row: `first`, doubled for each one after the
    first, never more than `most`."""
    return min(most, first * 2 ** min(max(failures - 1, 0), 32))


@dataclass
class _Refresh:
    dirty: bool = True  # a change here not yet counted in the database
    again: bool = True  # look again: something changed since the last round began
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Postings:
    """Remembers live messages and refreshes them, coalesced, through one updater per platform."""

    def __init__(
        self,
        engine: Engine,
        *,
        run: Run | None = None,
        sleep: Sleep | None = None,
        worker: str | None = None,
        spacing: timedelta = UPDATE_SPACING,
        lease: timedelta = UPDATE_LEASE,
    ) -> None:
        self.engine = engine
        self.run: Run = run or _to_thread
        self.sleep: Sleep = sleep or asyncio.sleep
        self.worker = worker or worker_id()
        self.spacing = spacing
        self.lease = lease
        self.updaters: dict[str, Updater] = {}
        # Local coalescing only (one task per object in this process); who updates a message,
        # and when, is decided in the database.
        self._refreshing: dict[tuple[str, str, str], _Refresh] = {}
        # Clicked messages known to be noted as live messages of their object (platform,
        # workspace, ref, conversation, message id). Only spares the check: noting is
        # idempotent, and a row is forgotten only when its message is gone — then no click
        # comes from it.
        self._known: set[tuple[str, str, str, str, str]] = set()
        self._noting: dict[tuple[str, str, str, str, str], asyncio.Future[None]] = {}
        """Messages being looked up now (`_remember`): the clicks that come meanwhile wait for
        that one lookup instead of each making its own (a burst's land together)."""
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
                        try:
                            await self._remember(actor, effect.ref, origin, if_new=True)
                        except Exception:  # the change still counts on the messages known
                            log.exception("noting the message %s acted on failed", origin[1])
                    self.changed(actor, effect.ref)
            except Exception:  # the reply is out; keeping its live message current is a nicety
                log.exception("posting effect %s failed", effect)

    def changed(self, actor: Actor, ref: str) -> None:
        """Bring every live message of `ref` on the actor's platform up to date, coalesced."""
        self._start(actor, ref, count=True)

    async def catch_up(self) -> int:
        """Update the live messages a worker left behind (it died mid-update, or its platform
        was down): those behind with nobody's turn on them. Returns how many objects."""
        platforms = sorted(self.updaters)
        if not platforms:
            return 0
        found: list[tuple[Actor, str]] = await self.run(self.engine.postings_behind, platforms)
        for actor, ref in found:
            self._start(actor, ref, count=False)
        return len(found)

    def _start(self, actor: Actor, ref: str, *, count: bool) -> None:
        if actor.platform not in self.updaters:
            return
        key = (actor.platform, actor.workspace, ref.upper())
        refresh = self._refreshing.get(key)
        if refresh is not None:
            refresh.dirty = refresh.dirty or count
            refresh.again = True
            return
        refresh = self._refreshing[key] = _Refresh(dirty=count)
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
        known = (actor.platform, actor.workspace, ref.upper(), *where)
        if if_new:
            if known in self._known:
                return
            noting = self._noting.get(known)
            if noting is not None:  # a burst's clicks on one card: the first one looks it up
                await asyncio.shield(noting)
                return
            self._noting[known] = asyncio.get_running_loop().create_future()
            try:
                if where not in await self.run(self.engine.postings, actor, ref):
                    await self._remember_anew(actor, ref, where)
                self._note_known(known)
            finally:
                self._noting.pop(known).set_result(None)
            return
        await self._remember_anew(actor, ref, where)
        self._note_known(known)

    async def _remember_anew(self, actor: Actor, ref: str, where: tuple[str, str]) -> None:
        await self.run(
            self.engine.remember_posting,
            actor,
            ref,
            conversation=where[0],
            message_id=where[1],
        )

    def _note_known(self, known: tuple[str, str, str, str, str]) -> None:
        if len(self._known) >= KNOWN_POSTINGS:
            self._known.clear()
        self._known.add(known)

    async def _refresh(self, key: tuple[str, str, str], refresh: _Refresh, viewer: Actor) -> None:
        """Count this process's changes in the database, then update while it is our turn and
        the messages are behind; changes arriving meanwhile (here or on another replica) are
        picked up by the next round, here or by whichever worker has the turn.

        A round that fails ends the refresh once the database knows everything (`catch_up`
        finishes it from there); while a change is still not counted (`dirty`), it is tried
        again after a growing wait rather than forgotten."""
        ref = key[2]
        failures = 0
        try:
            while refresh.again or refresh.dirty:
                refresh.again = False
                try:
                    if refresh.dirty:
                        refresh.dirty = False
                        try:
                            counted = await self.run(self.engine.posting_changed, viewer, ref)
                        except Exception:
                            refresh.dirty = True  # not counted: nothing but this process knows
                            raise
                        failures = 0
                        if not counted:
                            continue  # no live message of it on this platform
                    while await self._update_once(viewer, ref):
                        pass
                except Exception:
                    log.exception("refreshing %s failed", ref)
                    if not refresh.dirty:
                        return
                    failures += 1
                    wait = backoff(COUNT_RETRY, COUNT_RETRY_MOST, failures)
                    await self.sleep(wait.total_seconds())
        finally:
            self._refreshing.pop(key, None)

    async def _update_once(self, viewer: Actor, ref: str) -> bool:
        """One turn: claim the messages of `ref` that are behind, wait for their next slot,
        render once, edit each, record what they show. False when there was nothing to claim,
        or an edit failed: that message is left behind for `catch_up` once its retry is due
        (RETRY_FAILED, doubled for each failure in a row before it), not retried in this loop
        nor by the next change before then."""
        claim = await self.run(
            self.engine.claim_posting_update, viewer, ref, worker=self.worker, lease=self.lease
        )
        if claim is None:
            return False
        wait = (claim.not_before - self.engine.deps.clock.now()).total_seconds()
        if wait > 0:
            await self.sleep(wait)
        update = self.updaters[viewer.platform]
        view: Reply = await self.run(self.engine.live_view, viewer, ref)
        failed: dict[int, timedelta] = {}  # posting id → how long until its next try
        if view.ok:
            for message in claim.messages:
                posting = Posting(
                    viewer.platform,
                    viewer.workspace,
                    viewer.channel,
                    message.conversation,
                    message.message_id,
                )
                try:
                    await update(posting, view)
                    self.updates += 1
                except PostingGone:
                    gone = message.message_id
                    log.info("live message %s of %s is gone; forgetting it", gone, ref)
                    self._known.discard(
                        (viewer.platform, viewer.workspace, ref.upper(), message.conversation, gone)
                    )
                    await self.run(
                        self.engine.forget_posting,
                        viewer,
                        ref,
                        conversation=message.conversation,
                        message_id=message.message_id,
                    )
                except Exception as exc:  # left behind: tried again once its retry is due
                    failures = message.failures + 1  # in a row, this one included
                    retry = failed[message.id] = backoff(RETRY_FAILED, RETRY_FAILED_MOST, failures)
                    if failures == FAILURES_WARNED:
                        log.warning(
                            "live message %s of %s failed %d edits in a row (last: %s); trying "
                            "again less and less often, up to %s apart",
                            message.message_id,
                            ref,
                            failures,
                            exc,
                            RETRY_FAILED_MOST,
                        )
                    else:
                        log.info(
                            "updating %s message %s failed (%d in a row), trying again in %s: %s",
                            ref,
                            message.message_id,
                            failures,
                            retry,
                            exc,
                        )
        # Measured after the edits went out, so the platform has them before the next may go.
        now = self.engine.deps.clock.now()
        await self.run(
            self.engine.finish_posting_update,
            claim,
            worker=self.worker,
            next_update_at=now + self.spacing,
            failed={posting_id: now + retry for posting_id, retry in failed.items()},
        )
        return not failed


__all__ = ["Posting", "PostingGone", "Postings", "Updater"]
