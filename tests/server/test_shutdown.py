"""SIGTERM (what Docker, systemd and Kubernetes send) and SIGINT (Ctrl-C) stop a real
`align serve` cleanly: it stops accepting at once, lets the delivery in flight finish within
ALIGN_SHUTDOWN_GRACE, gives back the outbox rows it had leased but not sent, closes its clients
and exits 0 — nothing lost, nothing sent twice.

The process delivers three outbox rows to one Slack channel; the fake Slack holds the first
`chat.postMessage` unanswered, so the signal arrives while a send is in flight.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.bootstrap import build
from bot import outbox
from bot.views import Reply
from storage.models import OutboxMessage
from tests.conftest import make_settings, opened
from tests.fakes import FakeSlackApi
from tests.server.process import accepts, align, free_port, wait_until

CHANNEL = "C0PRODUCT1"


def queue_three_digests(db_url: str) -> None:
    app = build(make_settings(db_url))
    now = datetime.now(UTC) - timedelta(seconds=5)
    try:
        with app.db.uow() as session:
            for n in (1, 2, 3):
                outbox.enqueue(
                    session,
                    workspace="slack:T0TEST0001",
                    channel=CHANNEL,
                    platform="slack",
                    kind="digest",
                    reply=Reply(ok=True, kind="digest", text=f"Digest {n}"),
                    key=f"shutdown-test-{n}",
                    now=now,
                )
    finally:
        app.db.dispose()


def outbox_rows(db_url: str) -> list[OutboxMessage]:
    with opened(db_url) as app, app.db.uow() as session:
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def slack_env(db_url: str, fake: FakeSlackApi, port: int, grace: str) -> dict[str, str]:
    return {
        "ALIGN_DATABASE_URL": db_url,
        "ALIGN_SECRET": "test-secret",
        "ALIGN_PORT": str(port),
        "ALIGN_HOST": "127.0.0.1",
        "ALIGN_SHUTDOWN_GRACE": grace,
        "SLACK_SIGNING_SECRET": "slack-test-signing-secret",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": fake.url,
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_finishes_the_send_in_flight_releases_the_rest_and_exits_0(
    db_url: str, tmp_path: Path, sig: signal.Signals
) -> None:
    queue_three_digests(db_url)
    port = free_port()
    with FakeSlackApi.running() as fake:
        fake.hold("chat.postMessage")
        with align(tmp_path, "serve", port=port, **slack_env(db_url, fake, port, "20")) as serve:
            serve.wait_listening()
            fake.wait_held_sync("chat.postMessage", timeout=30)  # the first digest, in flight
            serve.send(sig)
            wait_until(lambda: not accepts(port), 10, "the server to stop accepting")
            assert serve.proc.poll() is None  # still finishing the send in flight
            fake.release("chat.postMessage")
            assert serve.wait(timeout=15) == 0, serve.output
        posted = fake.calls_to("chat.postMessage")

    assert [call.args["text"] for call in posted] == ["Digest 1"]
    rows = outbox_rows(db_url)
    assert [row.status for row in rows] == ["sent", "pending", "pending"]
    # The two not tried were given back untouched: no lease, no attempt counted, due now.
    assert [(row.claimed_by, row.attempts) for row in rows[1:]] == [(None, 0), (None, 0)]
    assert all(row.next_attempt_at <= datetime.now(UTC) for row in rows[1:])
    for noise in ("Traceback", "Unclosed", "Aborted!"):
        assert noise not in serve.output, serve.output


def test_a_send_still_hanging_at_the_end_of_the_grace_period_is_cut_and_released(
    sqlite_url: str, tmp_path: Path
) -> None:
    queue_three_digests(sqlite_url)
    port = free_port()
    with FakeSlackApi.running() as fake:
        fake.hold("chat.postMessage")  # never answered
        with align(tmp_path, "serve", port=port, **slack_env(sqlite_url, fake, port, "1")) as serve:
            serve.wait_listening()
            fake.wait_held_sync("chat.postMessage", timeout=30)
            began = time.monotonic()
            serve.send(signal.SIGTERM)
            assert serve.wait(timeout=15) == 0, serve.output
            took = time.monotonic() - began
        assert fake.calls_to("chat.postMessage") == []  # nothing was answered, so none counted

    assert took < 10, f"stopped after {took:.1f}s with a 1 s grace period"
    rows = outbox_rows(sqlite_url)
    # All three are pending again, leased by nobody: the next process sends them at once
    # (the first one with the same idempotency key, since it may have reached Slack).
    assert [(row.status, row.claimed_by) for row in rows] == [("pending", None)] * 3
    assert "cut short" in serve.output
    assert "Traceback" not in serve.output, serve.output
