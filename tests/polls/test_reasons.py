"""`vote … | reason`: a reason is part of the ballot and changes with it; `results` and `show` list
reasons with names, except in anonymous polls — there they name nobody, are stored under the
ballot's own key, and come in an order that says nothing about who wrote them or when."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.views import ListBlock
from storage.models import Ballot
from tests.conftest import Chat
from tests.polls.tables import dump

VOTERS = [f"voter{n:02d}x" for n in range(12)]
REASONS = [f"reason number {n} about the cost" for n in range(12)]


def reason_lines(reply_blocks: list[object]) -> list[tuple[str, str, str]]:
    (block,) = [b for b in reply_blocks if isinstance(b, ListBlock) and b.title == "Reasons"]
    return [(line.ref, line.text, line.meta) for line in block.lines]


def test_a_reason_is_shown_with_its_voters_name_but_not_their_choice(chat: Chat) -> None:
    chat.ok('poll "Ship date or scope?" "Date" "Scope"')
    vote = chat.ok("vote P-1 2 | customers asked for the whole scope", user="ana")
    assert vote.text == ("Recorded your vote on P-1: Scope | customers asked for the whole scope")
    assert vote.data["reason"] == "customers asked for the whole scope"
    chat.ok("vote P-1 1", user="ben")  # no reason
    for line in ("results P-1", "show P-1"):
        reply = chat.ok(line)
        assert reply.data["reasons"] == [
            {"voter": "ana", "reason": "customers asked for the whole scope"}
        ]
        # Named, but an ordinary poll does not say who chose what: the choice is not beside it.
        assert reason_lines(reply.blocks) == [
            ("<@ana>", "“customers asked for the whole scope”", "")
        ]
        assert "voters" not in reply.data and "by_voter" not in reply.data
        assert reply.data["public"] is False


def test_a_reason_changes_with_the_ballot(chat: Chat) -> None:
    chat.ok('poll "Which days?" "Mon" "Tue" "Wed" mode:multi')
    chat.ok("vote P-1 1 2 | early in the week", user="ana")
    chat.ok("vote P-1 ~3", user="ana")  # a toggle (a button) keeps the reason
    assert chat.ok("results P-1").data["reasons"] == [
        {"voter": "ana", "reason": "early in the week"}
    ]
    chat.ok("vote P-1 ~1 | Tuesday and Wednesday suit the team", user="ana")  # replaced
    assert chat.ok("results P-1").data["reasons"] == [
        {"voter": "ana", "reason": "Tuesday and Wednesday suit the team"}
    ]
    chat.ok("vote P-1 2", user="ana")  # a new ballot without a reason has none
    res = chat.ok("results P-1").data
    assert "reasons" not in res
    assert res["counts"] == {"Mon": 0, "Tue": 1, "Wed": 0}


def test_a_reason_is_part_of_every_mode_and_of_a_form(chat: Chat) -> None:
    chat.ok('poll "Rank" "A" "B" "C" mode:ranked')
    chat.ok('poll "Spend" "A" "B" mode:dots:3')
    chat.ok("vote P-1 3 1 | C is cheapest", user="ana")
    chat.ok("vote P-2 1=2 2=1 | mostly A", user="ana")
    form = chat.app.engine.submit_form(
        chat.actor(user="ben"), "P-1", "ranked", {"rank1": "2", "reason": " B ships first "}
    )
    assert form.ok, form.error
    assert chat.ok("results P-1").data["reasons"] == [
        {"voter": "ana", "reason": "C is cheapest"},
        {"voter": "ben", "reason": "B ships first"},
    ]
    assert chat.ok("results P-2").data["reasons"] == [{"voter": "ana", "reason": "mostly A"}]
    # The form offers the reason as an optional input, last.
    live = chat.app.engine.live_view(chat.actor(), "P-1")
    (ballot,) = [b for b in live.blocks if b.type == "form"]
    assert [(f.name, f.kind, f.required) for f in ballot.fields][-1] == ("reason", "text", False)


def test_a_bad_reason_is_refused_and_nothing_is_stored(chat: Chat) -> None:
    chat.ok('poll "Go?" "Yes" "No"')
    chat.ok('poll "Rank?" "Yes" "No" mode:ranked')
    before = dump(chat.app.db)
    empty = chat.fails("vote P-1 1 |", user="ana")
    assert empty.error == "Write your reason after |, like `vote P-4 2 | it ships sooner`."
    long = chat.fails("vote P-1 1 | " + "x" * 1001, user="ana")
    assert long.error == "Keep a reason under 1000 characters."
    form = chat.app.engine.submit_form(
        chat.actor(user="ana"), "P-2", "ranked", {"rank1": "1", "reason": "y" * 1001}
    )
    assert form.field_errors == {"reason": "Keep a reason under 1000 characters."}
    assert dump(chat.app.db) == before


def test_anonymous_reasons_name_nobody_and_their_order_says_nothing(chat: Chat) -> None:
    chat.ok("item Warm up", user="quiet1")
    chat.ok('poll "Pick one" "Zebra" "Yak" anonymous')
    for voter, reason in zip(VOTERS, REASONS, strict=True):
        chat.ok(f"vote P-1 {1 + len(voter) % 2} | {reason}", user=voter)
    first = chat.ok("results P-1")
    shown = [r["reason"] for r in first.data["reasons"]]
    assert sorted(shown) == sorted(REASONS)
    assert all(set(r) == {"reason"} for r in first.data["reasons"])  # no voter, no choice
    assert shown != REASONS  # not the voting order…
    assert shown != sorted(REASONS) and shown != sorted(REASONS, reverse=True)  # …nor sorted
    assert [meta for _, _, meta in reason_lines(first.blocks)] == [""] * 12
    assert [ref for ref, _, _ in reason_lines(first.blocks)] == [""] * 12

    # Everyone votes again, last first: the order shown is the same, so it cannot tell who
    # voted when.
    for voter, reason in reversed(list(zip(VOTERS, REASONS, strict=True))):
        chat.ok(f"vote P-1 {1 + len(voter) % 2} | {reason}", user=voter)
    assert [r["reason"] for r in chat.ok("show P-1").data["reasons"]] == shown
    blob = json.dumps(chat.ok("show P-1").to_json(), default=str)
    assert not [v for v in [*VOTERS, "quiet1"] if v in blob]

    # Stored in the ballot row, under the keyed hash: no row names a voter beside a reason.
    with chat.app.db.uow() as session:
        rows = session.execute(select(Ballot.voter_key, Ballot.reason)).all()
    assert sorted(r for _, r in rows) == sorted(REASONS)
    assert all(re.fullmatch(r"h:[0-9a-f]{48}", k) for k, _ in rows)
    for table, table_rows in dump(chat.app.db).items():
        for row in table_rows:
            flat = " ".join(map(str, row))
            named = [v for v in VOTERS if v in flat]
            assert not (named and any(r in flat for r in REASONS)), (table, row)


def test_an_anonymous_receipt_keeps_the_reason_out(chat: Chat) -> None:
    chat.ok('poll "Secret?" "A" "B" anonymous')
    vote = chat.ok("vote P-1 1 | my own words", user="ana")
    assert vote.text == "Recorded your vote on P-1: your vote is secret"
    assert vote.ephemeral
    assert "reason" not in vote.data and "voted" not in vote.data
    # Not even the poll's shared list holds it yet: it waits, with the ballot, for a batch.
    assert "reasons" not in vote.data
    for voter in ("ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 2", user=voter)
    # Counted with four others, it shows in the shared list, as everyone's results do — with
    # no name.
    assert chat.ok("results P-1").data["reasons"] == [{"reason": "my own words"}]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    yield caplog
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def test_no_log_line_ties_an_anonymous_voter_to_their_reason(
    chat: Chat, debug_logs: pytest.LogCaptureFixture
) -> None:
    chat.ok('poll "Pick one" "Zebra" "Yak" anonymous')
    debug_logs.clear()
    for voter, reason in zip(VOTERS[:6], REASONS[:6], strict=True):
        chat.ok(f"vote P-1 1 | {reason}", user=voter)
        chat.ok("results P-1")  # counts the batch once five are in
    lines = [r.getMessage() for r in debug_logs.records]
    assert len(lines) > 100  # SQLAlchemy's own log was captured
    assert any(REASONS[0] in ln for ln in lines)  # the view's read of reasons is in the log…
    for voter, reason in zip(VOTERS[:6], REASONS[:6], strict=True):
        assert not [ln for ln in lines if voter in ln and reason in ln]  # …never beside a voter
