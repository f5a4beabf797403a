"""Reads in a lane of their own (adapters/slack/workers.py), and which replies a slash command's
ack can carry (listeners.py `in_ack`)."""

from __future__ import annotations

import asyncio
import threading

from adapters.slack.listeners import in_ack
from adapters.slack.workers import Workers, read_threads_for
from bot.effects import Posted
from bot.views import OutFile, Reply


def test_a_read_runs_while_every_writer_thread_is_busy() -> None:
    """On SQLite a read waits behind no write: with the pool's one thread held, a read still
    runs — and reads share the pool where they have no lane (PostgreSQL)."""
    assert read_threads_for("sqlite") == 1 and read_threads_for("postgresql") is None

    async def main() -> tuple[str, bool]:
        workers = Workers(1, read_threads_for("sqlite"))
        held = threading.Event()
        try:
            writer = asyncio.ensure_future(workers.run(held.wait, 10))
            read = await asyncio.wait_for(workers.read(lambda: "read"), 5)
            still_writing = not writer.done()
            held.set()
            await writer
            return read, still_writing
        finally:
            held.set()
            workers.close()

    assert asyncio.run(main()) == ("read", True)


def test_only_a_reply_without_effects_or_file_rides_in_the_ack() -> None:
    body = {"text": "2 decisions", "blocks": [{"type": "section"}]}
    listed = Reply(ok=True, kind="list", text="2 decisions")
    assert in_ack(listed, body) == {
        "response_type": "in_channel",
        "unfurl_links": False,
        "unfurl_media": False,
        **body,
    }
    refused = Reply(ok=False, kind="error", text="no such page", error="no such page")
    assert in_ack(refused, body) == {"response_type": "ephemeral", **body}
    # A live message must have an id to update; a file is uploaded: both need a message.
    live = Reply(ok=True, kind="poll", text="P-1", effects=(Posted("P-1"),))
    assert in_ack(live, body) is None
    csv = OutFile("d.csv", "text/csv", "a,b\n")
    exported = Reply(ok=True, kind="file", text="export", file=csv)
    assert in_ack(exported, None) is None
