"""Settling proposals through the engine and the scheduler, on SQLite and PostgreSQL: who is
told, how often (once — also when approvers answer at the same moment, or two processes tick at
the due time), overrides by an admin, and reasons taken as typed from a form."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from adapters.bootstrap import App, build
from bot.clock import FakeClock
from bot.context import Actor
from bot.signoff.roles import Target, parse_targets
from storage.models import AuditEntry, Decision, OutboxMessage, Stance
from tests.conftest import Chat, make_settings
from tests.storage.test_concurrency import at_once, failures
from tests.time.helpers import Recorder, deliver, outbox_rows, tick


def audit_actions(app: App, action: str) -> int:
    with app.db.uow() as session:
        return int(
            session.execute(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            ).scalar_one()
        )


def test_acceptance_tells_the_channel_and_each_informed_person_and_channel_once(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("propose Ship the beta approvers:@ana informed:@dee,@eve,#roadmap,@dee,#general,#sales")
    chat.ok("agree D-1", user="ana")
    channel_message = outbox_rows(app, kind="signoff")
    assert [r.payload["text"] for r in channel_message] == ["D-1 accepted — <@ana> agreed"]
    assert channel_message[0].channel == "general"
    informed = outbox_rows(app, kind="informed")
    # @dee named twice is told once; #general is where it was proposed, which has its message
    assert sorted((r.channel, r.payload["direct_to"]) for r in informed) == [
        ("general", "dee"),
        ("general", "eve"),
        ("roadmap", None),
        ("sales", None),
    ]
    assert len({r.idempotency_key for r in informed}) == 4
    console = Recorder("console", clock)
    assert deliver(app, {"console": console}) == 5
    assert deliver(app, {"console": console}) == 0
    assert tick(app).accepted == 0
    assert len(console.sent) == 5  # told once, whatever runs again
    direct = [m for _, m in console.sent if m.reply.direct_to]
    assert sorted(m.reply.direct_to or "" for m in direct) == ["dee", "eve"]
    assert all(m.reply.text.startswith("For your information: D-1 “Ship the beta”") for m in direct)


def test_approvers_answering_at_the_same_moment_settle_it_exactly_once(
    migrated_db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Five approvers click Agree at once, through two processes on one database: the third
    agreement meets the majority; the proposal is accepted once and told once."""
    caplog.set_level(logging.ERROR)
    replicas = [build(make_settings(migrated_db_url), clock=clock) for _ in range(2)]
    try:
        people = [f"u{i}" for i in range(5)]
        Chat(replicas[0]).ok(
            f"propose Freeze the API approvers:{','.join('@' + p for p in people)} "
            "rule:majority informed:@dee"
        )

        def agree(i: int):  # type: ignore[no-untyped-def]
            actor = Actor("local", "general", people[i])
            return replicas[i % 2].engine.handle(actor, "agree D-1")

        replies = at_once(5, agree)
        assert [r.kind for r in replies if not r.ok] == ["error"] * len(failures(replies))
        for error in failures(replies):  # those after the acceptance are told so
            assert error == "D-1 is accepted since 2026-11-25; stances can no longer change."
        assert sum("D-1 is accepted." in r.text for r in replies if r.ok) == 1
        app = replicas[0]
        with app.db.uow() as session:
            decision = session.execute(select(Decision)).scalar_one()
            agreed = session.scalar(select(func.count()).select_from(Stance))
        assert decision.status == "accepted"
        assert decision.signoff is not None and decision.signoff["how"] == "majority"
        assert agreed == sum(r.ok for r in replies) >= 3
        assert audit_actions(app, "signoff") == 1
        assert len(outbox_rows(app, kind="signoff")) == 1
        assert len(outbox_rows(app, kind="informed")) == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        for replica in replicas:
            replica.db.dispose()


def test_two_processes_ticking_at_the_due_time_accept_a_consent_proposal_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    replicas = [build(make_settings(migrated_db_url), clock=clock) for _ in range(2)]
    try:
        chat = Chat(replicas[0])
        chat.ok("propose Adopt RFC process approvers:@ana,@ben rule:consent due:1d informed:@dee")
        chat.ok("propose Adopt ADRs approvers:@ana rule:consent due:1d")
        chat.ok("object D-2 | we have a wiki", user="ana")
        clock.advance(timedelta(days=1))
        reports = at_once(2, lambda i: tick(replicas[i]))  # type: ignore[arg-type,return-value]
        assert sum(r.accepted for r in reports) == 1  # type: ignore[attr-defined]
        assert sum(r.held for r in reports) == 1  # type: ignore[attr-defined]
        app = replicas[0]
        assert [r.payload["text"] for r in outbox_rows(app, kind="signoff")] == [
            "D-1 accepted at its due time (consent) — <@ana>, <@ben> did not answer",
            "D-2 “Adopt ADRs” was due Thu 2026-11-26 09:00 UTC and is held: <@ana> objected.",
        ]
        assert len(outbox_rows(app, kind="informed")) == 1
        assert tick(app).accepted == 0 and tick(app).held == 0
        clock.advance(timedelta(days=1))
        assert tick(app).held == 0  # held is said once; the owner decides by hand
    finally:
        for replica in replicas:
            replica.db.dispose()


def test_a_workspace_admin_may_override_and_the_override_keeps_the_stances(
    chat: Chat, app: App
) -> None:
    chat.ok("propose Sunset v1 approvers:@ana,@ben", user="pm")
    chat.ok("block D-1 | customers are still on it", user="ana")
    refused = chat.fails("status D-1 rejected", user="ops")
    assert refused.data["code"] == "forbidden"
    reply = chat.ok("status D-1 rejected", user="ops", is_admin=True)
    assert reply.receipt and reply.text.startswith("D-1 is now rejected (an override")
    settled = chat.ok("show D-1").data["signoff"]["settled"]
    assert (settled["status"], settled["how"], settled["by"]) == ("rejected", "override", "ops")
    assert [(s["user"], s["stance"], s["reason"]) for s in settled["stances"]] == [
        ("ana", "block", "customers are still on it")
    ]
    assert [r.payload["text"] for r in outbox_rows(app, kind="signoff")] == [
        "D-1 rejected by <@ops> (override) — <@ana> blocked; <@ben> did not answer"
    ]
    assert outbox_rows(app, kind="informed") == []  # only an acceptance is announced to them


def test_admins_named_in_settings_may_change_any_status(
    migrated_db_url: str, clock: FakeClock
) -> None:
    app = build(make_settings(migrated_db_url, ALIGN_ADMINS="boss"), clock=clock)
    try:
        chat = Chat(app)
        chat.ok("decide Use Postgres")
        assert chat.fails("status D-1 rejected", user="zed").data["code"] == "forbidden"
        assert chat.ok("status D-1 rejected", user="boss").data["status"] == "rejected"
    finally:
        app.db.dispose()


def test_a_reason_from_a_form_is_taken_as_typed_and_an_empty_one_is_refused_inline(
    chat: Chat, app: App
) -> None:
    chat.ok("propose Ship it approvers:@ana")
    ana = chat.actor(user="ana")
    empty = app.engine.submit_text(ana, "object D-1", "   ")
    assert not empty.ok
    assert empty.field_errors == {"reason": "An objection needs a reason: `object D-1 | <why>`."}
    odd = 'see "the doc | owner:@ben tag:x'
    reply = app.engine.submit_text(ana, "object D-1", odd, field="reason2")
    assert reply.ok and reply.receipt
    with app.db.uow() as session:
        stance = session.execute(select(Stance)).scalar_one()
    assert (stance.user, stance.stance, stance.reason) == ("ana", "object", odd)
    foreign = app.engine.submit_text(chat.actor(user="ana", channel="random"), "block D-1", "x")
    assert foreign.field_errors == {"reason": "D-1 not found in this channel."}


def test_informed_channels_and_people_are_read_from_every_surface() -> None:
    slack = Actor("slack:T1", "C1", "U1", platform="slack")
    assert parse_targets(
        ["<@U2|ana>,<#C9|roadmap>", "<@U3>"], actor=slack, verb="propose", role="informed",
        channels=True,
    ) == [Target("user", "U2"), Target("channel", "C9"), Target("user", "U3")]  # fmt: skip
    teams = Actor(
        "teams:t",
        "19:a@thread.tacv2",
        "aad-1",
        platform="teams",
        mentions=(("Ana Li", "aad-2"), ("General", "19:gen@thread.tacv2")),
    )
    assert parse_targets(
        ["<at>Ana Li</at>,<at>General</at>"], actor=teams, verb="propose", role="informed",
        channels=True,
    ) == [Target("user", "aad-2"), Target("channel", "19:gen@thread.tacv2")]  # fmt: skip


def test_outbox_keys_stay_unique_for_long_ids(chat: Chat, app: App) -> None:
    long_channel = "c" * 190
    chat.ok(f"propose Long one approvers:@ana informed:#{long_channel},#{long_channel}x")
    chat.ok("agree D-1", user="ana")
    keys = [r.idempotency_key for r in outbox_rows(app, kind="informed")]
    assert len(keys) == 2 and len(set(keys)) == 2 and all(len(k) <= 200 for k in keys)
    with app.db.uow() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3


def test_a_new_due_time_is_a_new_claim_and_short_proposals_get_no_reminder(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("propose Adopt RFCs approvers:@ana,@ben rule:consent due:3d")
    chat.ok("propose Quick one approvers:@ana due:12h")
    clock.advance(timedelta(days=2))  # 24 hours before D-1's first due time
    report = tick(app)
    assert report.signoff_reminders == 1  # D-1; D-2 was proposed under a day before its due
    (reminder,) = outbox_rows(app, kind="nudge")
    assert reminder.payload["data"] == {"id": "D-1", "nudged": ["ana", "ben"]}
    chat.ok("edit D-1 due:3d")  # pushed back before it was due
    clock.advance(timedelta(days=1))
    assert tick(app).accepted == 0  # the old due time passes: nothing is settled
    clock.advance(timedelta(days=1))
    assert tick(app).signoff_reminders == 1  # the new due time has its own reminder
    clock.advance(timedelta(days=1))
    assert tick(app).accepted == 1
    refused = chat.fails("edit D-1 due:fri")
    assert refused.error == "D-1 is accepted; its due time no longer matters."


def test_an_open_proposal_is_reviewed_once_it_is_settled(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok("propose Try four-day weeks approvers:@ana review:1d")
    clock.advance(timedelta(days=2))
    assert tick(app).reviews == 0  # still open: there is nothing to keep or revisit yet
    chat.ok("agree D-1", user="ana")
    assert tick(app).reviews == 1
    assert tick(app).reviews == 0
    (reminder,) = outbox_rows(app, kind="nudge")
    assert reminder.payload["text"] == (
        "Time to review D-1 “Try four-day weeks” (accepted): <@pm>, does it still hold?"
    )
    buttons = [b for block in reminder.payload["blocks"] for b in block.get("buttons", [])]
    assert [(b["label"], b["command"]) for b in buttons] == [
        ("Keep", "review D-1 keep"),
        ("Revisit", "review D-1 revisit"),
    ]
