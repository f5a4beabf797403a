"""Poll messages that follow the votes: every posting is re-rendered and `chat.update`d.

A burst of clicks must not become a burst of updates (Slack allows about one chat.update per
second per channel), yet the last state must always be shown. Per poll there is at most one
update task; a vote arriving while it runs only marks the poll dirty, and the task renders once
more when it finishes. Since a vote asks for an update only after its transaction committed, the
final render always sees the final tally: 40 clicks in a second cost two or three updates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.bootstrap import App
from adapters.slack import blocks
from adapters.slack.workers import Workers
from bot.context import Actor

log = logging.getLogger("align.slack.polls")


@dataclass
class _Slot:
    client: AsyncWebClient
    dirty: bool = True
    renders: int = field(default=0)


class LivePolls:
    def __init__(self, app: App, workers: Workers) -> None:
        self.app = app
        self.workers = workers
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self.updates = 0  # chat.update calls made, for tests and the benchmark

    def changed(self, client: AsyncWebClient, actor: Actor, poll: str) -> None:
        """A poll changed (vote, edit, close): bring its postings up to date, coalesced."""
        key = (actor.workspace, actor.channel, poll.upper())
        slot = self._slots.get(key)
        if slot is not None:
            slot.dirty = True
            slot.client = client
            return
        slot = _Slot(client)
        self._slots[key] = slot
        # Channel postings show channel time, not the last voter's zone or admin rights.
        viewer = replace(actor, user="", tz=None, is_admin=False)
        self.workers.spawn(self._run(key, slot, viewer, poll))

    async def _run(self, key: tuple[str, str, str], slot: _Slot, viewer: Actor, poll: str) -> None:
        try:
            while slot.dirty:
                slot.dirty = False
                reply = await self.workers.run(self.app.engine.view_poll, viewer, poll)
                postings = await self.workers.run(self.app.engine.poll_messages, viewer, poll)
                if not reply.ok:
                    return
                body = blocks.message(reply)
                for channel, ts in postings:
                    try:
                        await slot.client.chat_update(channel=channel, ts=ts, **body)
                        self.updates += 1
                    except SlackApiError as exc:
                        log.warning("chat.update %s %s: %s", channel, ts, exc.response.get("error"))
                slot.renders += 1
        except Exception:
            log.exception("refreshing %s failed", poll)
        finally:
            self._slots.pop(key, None)
