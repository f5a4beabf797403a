"""Anonymous polls: one changeable ballot per voter, yet nothing stored, exported, audited or
logged ties a person to a choice; who has voted is kept apart, so non-voters can be nudged.

The searches below are what an admin with a SQL prompt, an export or the logs would do. Each
search is first run on an open (named) poll, to show it finds the link where one exists.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.polls import voter_key
from storage.models import AuditEntry, Ballot, Participation, Poll
from tests.conftest import Chat
from tests.polls.tables import dump

VOTERS = [f"voter{n:02d}x" for n in range(12)]
OPTIONS = ["Zebra", "Yak", "Xerus", "Walrus"]
OPENING = {
    "single": 'poll "Pick one" "Zebra" "Yak" "Xerus" "Walrus" anonymous',
    "multi": 'poll "Pick any" "Zebra" "Yak" "Xerus" "Walrus" mode:multi anonymous',
    "ranked": 'poll "Rank" "Zebra" "Yak" "Xerus" "Walrus" mode:ranked anonymous',
    "dots": 'poll "Spread" "Zebra" "Yak" "Xerus" "Walrus" mode:dots:4 anonymous',
}


def _ballot(mode: str, n: int) -> str:
    """A different choice per voter (by index), so a leak would be recognisable."""
    first, second = n % 4 + 1, (n + 1) % 4 + 1
    return {
        "single": f"{first}",
        "multi": f"{first} {second}",
        "ranked": f"{first} {second}",
        "dots": f"{first}=3 {second}=1",
    }[mode]


def _values(row: tuple[Any, ...]) -> str:
    return " ".join(json.dumps(v, default=str) if not isinstance(v, str) else v for v in row)


def _rows_linking(
    tables: dict[str, list[tuple[Any, ...]]], poll_ids: set[int], secrets: set[str]
) -> list[tuple[str, str]]:
    """Rows that hold a voter's id next to a ballot: a ballot row of these polls naming a voter,
    or any row naming a voter beside a ballot's id, key or an option text of these polls."""
    found = []
    for table, rows in tables.items():
        for row in rows:
            flat = _values(row)
            named = [v for v in VOTERS if re.search(rf"\b{v}\b", flat)]
            if not named:
                continue
            ballot_row = table == "ballots" and row[1] in poll_ids
            beside = any(s in flat for s in secrets) or any(o in flat for o in OPTIONS)
            if ballot_row or beside:
                found.append((table, flat))
    return found


def _ballot_secrets(chat: Chat, poll_ids: set[int]) -> set[str]:
    with chat.app.db.uow() as session:
        rows = session.execute(
            select(Ballot.id, Ballot.voter_key).where(Ballot.poll_id.in_(poll_ids))
        ).all()
    return {r.id for r in rows} | {r.voter_key for r in rows}


def _poll_ids(chat: Chat, numbers: list[int]) -> set[int]:
    with chat.app.db.uow() as session:
        return set(session.execute(select(Poll.id).where(Poll.number.in_(numbers))).scalars().all())


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged, at DEBUG, including SQLAlchemy's statement and row log (what
    `echo="debug"` prints)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    yield caplog
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def _vote_everyone(chat: Chat, first: int) -> None:
    for offset, mode in enumerate(OPENING):
        number = first + offset
        for n, voter in enumerate(VOTERS):
            chat.ok(f"vote P-{number} {_ballot(mode, n)}", user=voter)
        # Some change their minds; multi voters also toggle (the ballot is read back for that).
        for n, voter in enumerate(VOTERS[:4]):
            line = f"vote P-{number} ~1" if mode == "multi" else _ballot(mode, n + 2)
            chat.ok(line if mode == "multi" else f"vote P-{number} {line}", user=voter)


def test_an_anonymous_vote_is_recorded_once_in_participation_not_in_the_audit(
    chat: Chat,
) -> None:
    """Who voted, and when, is the participation row's to say; an anonymous vote writes no
    audit row beside it (it could add nothing but a second record of the time), while a named
    vote's audit row keeps the choice it made."""
    chat.ok('poll "Named" "A" "B"')
    chat.ok('poll "Secret" "A" "B" anonymous')
    for voter in ("ana", "ben"):
        chat.ok("vote P-1 1", user=voter)
        chat.ok("vote P-2 1", user=voter)
    chat.ok("vote P-2 2", user="ana")  # a change of mind: still one participation row
    with chat.app.db.uow() as session:
        audited = session.execute(
            select(AuditEntry.object_ref, AuditEntry.actor, AuditEntry.after)
            .where(AuditEntry.action == "vote")
            .order_by(AuditEntry.id)
        ).all()
        voted = session.execute(
            select(Poll.number, Participation.user)
            .join(Poll, Poll.id == Participation.poll_id)
            .order_by(Poll.number, Participation.user)
        ).all()
    assert [tuple(r) for r in audited] == [
        ("P-1", "ana", {"choice": "A"}),
        ("P-1", "ben", {"choice": "A"}),
    ]
    assert [tuple(r) for r in voted] == [(1, "ana"), (1, "ben"), (2, "ana"), (2, "ben")]


def test_no_table_row_ties_a_voter_to_a_choice(chat: Chat) -> None:
    chat.ok('poll "Named" "Apple" "Pear" "Plum" "Fig"')  # P-1, the control
    for line in OPENING.values():
        chat.ok(line)  # P-2 .. P-5
    for n, voter in enumerate(VOTERS):
        chat.ok(f"vote P-1 {_ballot('single', n)}", user=voter)
    _vote_everyone(chat, first=2)
    chat.ok("close P-2 decide pick:Zebra")  # every option has three votes: a tie to break
    chat.ok("close P-4")
    named, anonymous = _poll_ids(chat, [1]), _poll_ids(chat, [2, 3, 4, 5])
    # P-3 and P-5 still hold their ballots pending, sealed: they link nobody either…
    assert _rows_linking(dump(chat.app.db), anonymous, _ballot_secrets(chat, anonymous)) == []
    for number in (3, 5):
        chat.ok(f"results P-{number}")  # …nor once a read has counted them

    tables = dump(chat.app.db)
    assert _rows_linking(tables, named, _ballot_secrets(chat, named))  # the search works
    assert _rows_linking(tables, anonymous, _ballot_secrets(chat, anonymous)) == []

    with chat.app.db.uow() as session:
        keys = (
            session.execute(select(Ballot.voter_key).where(Ballot.poll_id.in_(anonymous)))
            .scalars()
            .all()
        )
    assert len(keys) == 4 * len(VOTERS)  # one ballot per voter, changes replaced it
    assert all(re.fullmatch(r"h:[0-9a-f]{48}", k) for k in keys)
    # The same person has unrelated keys in different polls.
    assert len(set(keys)) == len(keys)


def test_ballots_carry_nothing_that_orders_them_against_participation(chat: Chat) -> None:
    # No timestamp and no sequence column: a random id, the poll, the key, the choice, the
    # reason.
    assert {c.name for c in Ballot.__table__.columns} == {
        "id",
        "poll_id",
        "voter_key",
        "choice",
        "reason",
    }
    chat.ok(OPENING["single"])
    for n, voter in enumerate(VOTERS):
        chat.ok(f"vote P-1 {_ballot('single', n)}", user=voter)
        chat.ok("results P-1")  # someone watching: counts each batch of five as it fills
    chat.ok("close P-1")  # counts the last two
    with chat.app.db.uow() as session:
        poll = session.execute(select(Poll)).scalar_one()
        in_vote_order = [voter_key(chat.app.engine.deps, poll, v) for v in VOTERS]
        id_of = dict(session.execute(select(Ballot.voter_key, Ballot.id)).all())
        ids = [id_of[k] for k in in_vote_order]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert sorted(ids) != ids  # random ids: sorting them does not give the voting order
        if chat.app.db.dialect == "sqlite":
            # The hidden rowid would count up in voting order; it is random instead.
            by_rowid = session.execute(text("SELECT voter_key FROM ballots ORDER BY rowid"))
            keys_by_rowid = [r[0] for r in by_rowid]
            assert keys_by_rowid != in_vote_order
            assert sorted(keys_by_rowid) == sorted(in_vote_order)
        else:
            # PostgreSQL's system columns: ballots are written by batch, so each batch shares
            # one writing transaction (xmin) — none of them a vote's — and their physical order
            # within it is shuffled.
            rows = session.execute(
                text("SELECT xmin::text, voter_key FROM ballots ORDER BY ctid")
            ).all()
            batch_sizes = sorted(Counter(xmin for xmin, _ in rows).values())
            assert batch_sizes == [2, 5, 5]  # two batches of five, the last two at the close
            assert sorted(k for _, k in rows) == sorted(in_vote_order)
            participation_xmins = (
                session.execute(text("SELECT xmin::text FROM participation")).scalars().all()
            )
            assert len(set(participation_xmins)) == len(VOTERS)  # one per vote, as before
            assert not {xmin for xmin, _ in rows} & set(participation_xmins)


def test_exports_in_every_format_name_no_voter(chat: Chat) -> None:
    for line in OPENING.values():
        chat.ok(line)
    _vote_everyone(chat, first=1)
    chat.ok("close P-1 decide pick:Zebra")  # a four-way tie, broken by pm (not a voter)
    for kind in ("decisions", "items", "questions", "polls"):
        for fmt in ("md", "csv", "json"):
            export = chat.ok(f"export {kind} format:{fmt}")
            assert export.file is not None
            content = export.file.content
            assert not [v for v in VOTERS if v in content], (kind, fmt)
    polls = json.loads(chat.ok("export polls format:json").file.content)  # type: ignore[union-attr]
    assert [p["voted"] for p in polls] == [12, 12, 12, 12]


def test_results_show_and_history_never_name_anyone_in_an_anonymous_poll(chat: Chat) -> None:
    chat.ok("item Warm up", user="quiet1")  # seen in the channel, never votes
    for line in OPENING.values():
        chat.ok(line)
    _vote_everyone(chat, first=1)
    for number in range(1, 5):
        for line in (f"results P-{number}", f"show P-{number}"):
            reply = chat.ok(line)
            blob = json.dumps(reply.to_json(), default=str)
            assert not [v for v in [*VOTERS, "quiet1"] if v in blob], line
            assert reply.data["participation"] == {"voted": 12, "eligible": 14}
    vote = chat.ok("vote P-1 2", user=VOTERS[0])
    assert vote.text == "Changed your vote on P-1: your vote is secret"
    assert vote.ephemeral and "voted" not in vote.data


def test_no_log_line_ties_a_voter_to_a_choice(
    chat: Chat, debug_logs: pytest.LogCaptureFixture
) -> None:
    for line in OPENING.values():
        chat.ok(line)
    anonymous = _poll_ids(chat, [1, 2, 3, 4])
    number_to_id = dict(zip(range(1, 5), sorted(anonymous), strict=True))
    windows: list[tuple[str, list[logging.LogRecord], Counter[str]]] = []

    def vote(voter: str, number: int, choice: str) -> None:
        debug_logs.clear()
        chat.ok(f"vote P-{number} {choice}", user=voter)
        records = list(debug_logs.records)
        with chat.app.db.uow() as session:
            after = session.execute(
                select(Ballot.choice).where(Ballot.poll_id == number_to_id[number])
            ).scalars()
            windows.append((voter, records, Counter(json.dumps(c) for c in after)))
        chat.ok(f"results P-{number}")  # someone watching: counts each batch as it fills

    for number, mode in enumerate(OPENING, start=1):
        for n, voter in enumerate(VOTERS[:6]):
            vote(voter, number, _ballot(mode, n))
        for voter in VOTERS[:3]:  # changes; multi ones toggle, which reads the ballot back
            vote(voter, number, "+3" if mode == "multi" else _ballot(mode, 5))
    # SQLAlchemy's own log was captured in every vote's window: its transaction's BEGIN and
    # COMMIT (the vote path runs every statement on the raw cursor now, so they are all it logs)
    assert all(
        {"BEGIN (implicit)", "COMMIT"} <= {r.getMessage() for r in records}
        for _, records, _ in windows
    )
    secrets = _ballot_secrets(chat, anonymous)
    for voter, records, whole in windows:
        lines = [r.getMessage() for r in records]
        # Every line of the window is the voter's request (an access log would say whose), yet
        # no line holds a ballot's id or key, or a parameter value, or the voter beside an
        # option.
        assert not [ln for ln in lines if any(s in ln for s in secrets)]
        assert not [ln for ln in lines if voter in ln and any(o in ln for o in OPTIONS)]
        # A vote reads no ballot but the voter's own (on the raw cursor) and moves the running
        # tally (on the raw cursor too): the tally before and after, side by side in the log,
        # would say what this voter chose. Ballots the log shows at all are the whole poll's
        # (k times), so no row stands out as this voter's own; no other logged row holds a list.
        seen = Counter(c for c in map(_ballot_row, lines) if c is not None)
        factors = {seen[k] / whole[k] for k in whole} | {0 for k in seen if k not in whole}
        assert not seen or (len(factors) == 1 and next(iter(factors)).is_integer()), (voter, seen)
        listed = [ln for ln in lines if ln.startswith("Row (") and "[" in ln]
        assert not [ln for ln in listed if _ballot_row(ln) is None], (voter, listed)


def _ballot_row(line: str) -> str | None:
    """A logged one-column row holding a ballot (`Row ('[1, 2]',)` from SQLite's JSON text,
    `Row ([1, 2],)` from psycopg), as canonical JSON."""
    if not line.startswith("Row ("):
        return None
    try:
        row = ast.literal_eval(line[4:])
    except (ValueError, SyntaxError):
        return None
    if not (isinstance(row, tuple) and len(row) == 1):
        return None
    value = row[0]
    if isinstance(value, str) and value.startswith("["):
        value = json.loads(value)
    return json.dumps(value) if isinstance(value, list) else None
