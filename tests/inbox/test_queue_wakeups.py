"""On PostgreSQL an idle worker waits for a notification of each row handed off to it instead of
asking the database every WATCH_EVERY (adapters/recovery.py `Queue`, storage/inbox.py
`queued_notices`): the web process's INSERT sends it, once its transaction commits, and only for
a row queued for the workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from adapters import recovery
from adapters.bootstrap import App
from adapters.recovery import Queue
from storage import inbox as store


def _record(app: App, key: str, *, queued: bool) -> None:
    now = app.clock.now()
    with app.db.uow() as session:
        store.record(
            session,
            platform="slack",
            key=key,
            payload="sealed",
            worker=None if queued else "a-web-process-working-it-itself",
            now=now,
            until=None if queued else now + timedelta(minutes=5),
        )


def _postgres_only(app: App) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("SQLite has no notifications: its workers look at the queue every 50 ms")


def test_a_queued_row_notifies_the_workers_once_committed_and_a_claimed_one_does_not(
    app: App,
) -> None:
    _postgres_only(app)

    async def scenario() -> list[str]:
        async with store.queued_notices(app.db) as notices:
            _record(app, "slack:claimed", queued=False)
            _record(app, "slack:queued", queued=True)
            _record(app, "slack:queued", queued=True)  # seen before: nothing recorded
            with app.db.uow() as session:  # a marker, after them in commit order
                session.connection().exec_driver_sql(
                    f"SELECT pg_notify({store.QUEUED_CHANNEL}, 'end')"
                )
            got: list[str] = []
            async for notice in notices:
                got.append(str(getattr(notice, "payload", "")))
                if got[-1] == "end":
                    return got
        return got

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == ["", "end"]


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def _a_hand_off_wakes(app: App, queue: Queue, key: str) -> None:
    """A listening worker pausing with nothing to do wakes when a row is queued for it (and
    only then: it is still pausing before)."""
    queue.woken.clear()  # the look every new LISTEN starts with
    never = asyncio.get_running_loop().create_future()
    pause = asyncio.ensure_future(queue._pause(never, 0))
    await asyncio.sleep(0)
    assert not pause.done()
    await asyncio.to_thread(_record, app, key, queued=True)
    await asyncio.wait_for(pause, 10)


def test_an_idle_listening_worker_looks_at_the_queue_when_a_row_is_handed_off(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(app)
    monkeypatch.setattr(recovery, "IDLE_LISTENING", 60.0)  # only the notification can wake it

    async def scenario() -> None:
        queue = Queue(app)
        listening = asyncio.ensure_future(queue.listen())
        try:
            await asyncio.wait_for(_until(lambda: queue.listening), 10)
            await _a_hand_off_wakes(app, queue, "slack:handed-off")
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    asyncio.run(scenario())


def test_a_worker_whose_listening_connection_is_ended_listens_again_and_still_wakes(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The listening connection ended from the server's side (a restart, a failover, an idle
    connection killed): the worker says so (and meanwhile looks every WATCH_EVERY), listens
    again on a new connection, and a hand-off then wakes it as before."""
    _postgres_only(app)
    monkeypatch.setattr(recovery, "IDLE_LISTENING", 60.0)  # only the notification can wake it
    monkeypatch.setattr(recovery, "LISTEN_AGAIN_AFTER", 0.0)

    def listeners() -> list[int]:
        """This schema's listeners only: a test beside this one (pytest -n) may be listening on
        the same server, and ending its connection failed it."""
        with app.db.uow() as session:
            channel = session.execute(text(f"SELECT {store.QUEUED_CHANNEL}")).scalar_one()
            found = session.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' "
                    "AND position(:channel in query) > 0 AND pid <> pg_backend_pid()"
                ),
                {"channel": f'"{channel}"'},
            )
            return [int(pid) for (pid,) in found]

    async def scenario() -> None:
        queue = Queue(app)
        listening = asyncio.ensure_future(queue.listen())
        try:
            await asyncio.wait_for(_until(lambda: queue.listening), 10)
            ended = await asyncio.to_thread(listeners)
            assert len(ended) >= 1
            with app.db.uow() as session:
                for pid in ended:
                    session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # Listening again, on a connection of its own: a new backend.
            await asyncio.wait_for(_until(lambda: set(listeners()) - set(ended)), 10)
            await asyncio.wait_for(_until(lambda: queue.listening), 10)
            assert "not listening for handed-off requests" in caplog.text
            assert not set(await asyncio.to_thread(listeners)) & set(ended)
            await _a_hand_off_wakes(app, queue, "slack:after-the-cut")
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    asyncio.run(scenario())
