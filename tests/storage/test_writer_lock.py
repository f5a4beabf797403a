"""The SQLite writer lock's fast lane: an urgent transaction (the inbox's, which an ack waits
for) goes before ordinary ones already waiting; the lock stays re-entrant."""

from __future__ import annotations

import threading
import time

from storage.db import WriterLock


def _until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the waiters never queued"
        time.sleep(0.001)


def test_an_urgent_waiter_goes_before_ordinary_ones_that_came_first() -> None:
    lock = WriterLock()
    order: list[str] = []
    release = threading.Event()

    def take(name: str, urgent: bool) -> None:
        with lock.held(urgent=urgent):
            order.append(name)

    def hold() -> None:
        with lock.held():
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    _until(lambda: lock._owner is not None)
    waiters = [threading.Thread(target=take, args=(f"engine-{n}", False)) for n in range(3)]
    for waiter in waiters:
        waiter.start()
    _until(lambda: lock._waiting == 3)
    inbox = threading.Thread(target=take, args=("inbox", True))
    inbox.start()
    _until(lambda: lock._urgent == 1)
    release.set()
    for thread in (holder, inbox, *waiters):
        thread.join(5)
    assert order[0] == "inbox"
    assert sorted(order[1:]) == ["engine-0", "engine-1", "engine-2"]


def test_the_lock_is_re_entrant_for_its_holder() -> None:
    lock = WriterLock()
    with lock.held(), lock.held(urgent=True), lock.held():
        pass
    taken = threading.Event()

    def other() -> None:
        with lock.held():
            taken.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert taken.wait(5)  # released fully after the nested blocks
    thread.join(5)
