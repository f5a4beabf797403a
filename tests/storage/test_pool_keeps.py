"""The default pool keeps what a busy process uses at once: steady load opens no connection."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from adapters.bootstrap import build
from adapters.settings import Settings
from adapters.slack.workers import threads_for
from storage.db import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE
from tests.conftest import make_settings

BESIDE_THE_SLACK_THREADS = 4
"""The inbox's writer, the outbox dispatcher, the scheduler, the queue's claims."""


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_busy_process_at_its_usual_concurrency_opens_no_connection_the_second_time(
    db_url: str,
) -> None:
    """Every Slack thread and the few others in a transaction at once, twice: the second time
    finds every connection it needs kept in the pool. A pool smaller than that (10 kept, as
    the defaults were) closes the surplus after each use and opens it again the next time —
    under steady load, a connection and a forked backend every few requests."""
    app = build(make_settings(db_url))
    at_once = threads_for(app.db.dialect) + BESIDE_THE_SLACK_THREADS
    opened: list[object] = []
    event.listen(app.db.engine, "connect", lambda conn, _record: opened.append(conn))

    def round_of_transactions() -> None:
        together = threading.Barrier(at_once, timeout=10)

        def hold() -> None:
            with app.db.uow() as session:
                session.execute(text("SELECT 1"))
                together.wait()  # every connection in use at the same moment

        threads = [threading.Thread(target=hold) for _ in range(at_once)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        round_of_transactions()
        first = len(opened)
        round_of_transactions()
        again = len(opened) - first
    finally:
        app.db.dispose()
    assert first == at_once
    assert again == 0


def test_the_settings_default_to_the_pool_storage_sizes() -> None:
    """The settings repeat storage.db's pool defaults (they do not import it, to start light)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.db_pool_size, settings.db_max_overflow) == (
        DEFAULT_POOL_SIZE,
        DEFAULT_MAX_OVERFLOW,
    )
