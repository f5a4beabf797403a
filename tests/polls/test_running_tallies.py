"""A poll's running tally is moved by each vote's difference instead of a recount (issue 15), so it
is held to the recount: after any sequence of votes, changed votes, toggles and added options, in
every mode and by every counting method, anonymous or not, on both databases, the tally is what a
full recount of the stored ballots gives — and `results` says so.

There is no way to take a ballot back (a vote is changed, never withdrawn), so the sequences have
none. Each example opens a new poll in one app per backend, which keeps the examples cheap."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot.polls import tallies
from storage import tallies as rows
from storage.models import Poll, PollCount
from tests.conftest import Chat
from tests.polls.recount import assert_tally_is_a_recount

OPENINGS = {
    "single": "",
    "multi": "mode:multi",
    "dots": "mode:dots:5",
    "schulze": "mode:ranked",
    "borda": "mode:ranked method:borda",
    "irv": "mode:ranked method:irv",
}
VOTERS = [f"v{n}" for n in range(4)]

# An action: ("vote", voter, picks) with picks turned into a valid ballot for the options there
# are at the time; ("toggle", voter, pick) a multi poll's `~k`; ("add",) one more option;
# ("look",) `results`, which fills the cache of a count that needs the ballots (instant runoff).
actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("vote"),
            st.sampled_from(VOTERS),
            st.lists(st.integers(0, 30), min_size=1, max_size=6),
        ),
        st.tuples(st.just("toggle"), st.sampled_from(VOTERS), st.integers(0, 30)),
        st.tuples(st.just("add")),
        st.tuples(st.just("look")),
    ),
    max_size=16,
)


def _ballot(kind: str, n: int, picks: list[int]) -> str:
    """The typed ballot these picks make among `n` options (1-based)."""
    distinct = list(dict.fromkeys(p % n + 1 for p in picks))
    if kind == "single":
        return str(distinct[0])
    if kind == "dots":
        points = [p % 3 for p in picks[: len(distinct)]]
        spread = {o: max(1, pts) for o, pts in zip(distinct, points, strict=False)}
        while sum(spread.values()) > 5:
            spread.pop(next(iter(spread)))
        return " ".join(f"{o}={p}" for o, p in spread.items())
    return " ".join(map(str, distinct))


def _play(chat: Chat, kind: str, anonymous: bool, steps: list[tuple[Any, ...]]) -> int:
    opened = chat.ok(f'poll "Q" "A" "B" {OPENINGS[kind]}' + (" anonymous" if anonymous else ""))
    number = int(opened.data["id"][2:])
    n = 2
    for step in steps:
        if step[0] == "vote":
            chat.ok(f"vote P-{number} {_ballot(kind, n, step[2])}", user=step[1])
        elif step[0] == "toggle" and kind == "multi":
            # Toggling off the last pick is refused (an empty ballot); that moves nothing.
            chat.say(f"vote P-{number} ~{step[2] % n + 1}", user=step[1])
        elif step[0] == "add" and n < 6:
            n += 1
            chat.ok(f'edit P-{number} add:"O{n}"')
        elif step[0] == "look":
            chat.ok(f"results P-{number}")
    return number


@pytest.mark.parametrize("kind", sorted(OPENINGS))
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(anonymous=st.booleans(), steps=actions)
def test_any_sequence_of_votes_leaves_the_tally_a_recount_gives(
    chat: Chat, kind: str, anonymous: bool, steps: list[tuple[Any, ...]]
) -> None:
    number = _play(chat, kind, anonymous, steps)
    held = assert_tally_is_a_recount(chat.app.db, chat.workspace, number)
    shown = chat.ok(f"results P-{number}").data
    voted = {s[1] for s in steps if s[0] == "vote" or (s[0] == "toggle" and kind == "multi")}
    # An anonymous poll counts its ballots in batches of five: the rest wait, uncounted.
    assert shown["ballots"] == held
    assert shown["ballots"] + shown.get("uncounted", 0) == len(voted)
    if anonymous:
        chat.ok(f"close P-{number}")  # closing counts every waiting ballot
        assert assert_tally_is_a_recount(chat.app.db, chat.workspace, number) == len(voted)


def test_an_added_option_is_beaten_by_every_option_an_older_ranked_ballot_lists(
    chat: Chat,
) -> None:
    """The one case the matrix cannot learn from a ballot: a new option on the old ballots."""
    chat.ok('poll "Q" "A" "B" "C" mode:ranked')
    chat.ok("vote P-1 1 2", user="ana")
    chat.ok("vote P-1 3", user="ben")
    chat.ok('edit P-1 add:"D"')
    res = chat.ok("results P-1").data
    assert res["pairwise"][0][3] == 1 and res["pairwise"][1][3] == 1  # ana listed A and B
    assert res["pairwise"][2][3] == 1 and [row[3] for row in res["pairwise"]] == [1, 1, 1, 0]
    assert res["pairwise"][3] == [0, 0, 0, 0]
    assert_tally_is_a_recount(chat.app.db, chat.workspace, 1)


def test_an_instant_runoff_count_is_never_served_after_a_vote_moved_on(chat: Chat) -> None:
    """IRV is counted on demand and cached per tally version: the cached count must give way
    to the next vote's, whichever process counted it."""
    chat.ok('poll "Q" "A" "B" "C" mode:ranked method:irv')
    chat.ok("vote P-1 1 2", user="ana")
    assert chat.ok("results P-1").data["winner"] == "A"
    chat.ok("vote P-1 2", user="ben")
    chat.ok("vote P-1 2 1", user="cy")
    assert chat.ok("results P-1").data["winner"] == "B"
    assert chat.ok("results P-1").data["ballots"] == 3


def test_a_vote_writes_its_polls_tally_last(chat: Chat) -> None:
    """Every voter of a poll waits on its tally row, held from the statement that takes it to
    the COMMIT: so it is the vote's last write, after its ballot, participation and audit rows.
    SQLite shows each statement it runs (`set_trace_callback`); the order is the same code on
    PostgreSQL, where it decides how long the other voters wait."""
    if chat.app.db.dialect != "sqlite":
        pytest.skip("SQLite traces its statements; the code path is the same on PostgreSQL")
    chat.ok('poll "Q" "A" "B"')
    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(chat.app.db.engine, "checkout", trace)
    try:
        chat.ok("vote P-1 1", user="ana")
    finally:
        event.remove(chat.app.db.engine, "checkout", trace)
    words = [" ".join(s.split()[:3]).upper() for s in statements]
    first = next(i for i, w in enumerate(words) if "POLL_TALLIES" in w)
    assert any("BALLOTS" in w for w in words[:first]) and any("AUDIT" in w for w in words[:first])
    assert all("POLL_TALLIES" in w for w in words[first:-1]), words[first:]
    assert words[-1] == "COMMIT"


class _Undo(Exception):
    """Raised to roll a test's transaction back."""


@contextmanager
def _ranked_poll_rolled_back(chat: Chat) -> Iterator[tuple[Session, Poll]]:
    """P-1, ranked A/B/C with ana's ballot A > B, in a transaction rolled back after the block."""
    chat.ok('poll "Q" "A" "B" "C" mode:ranked')
    chat.ok("vote P-1 1 2", user="ana")
    with pytest.raises(_Undo), chat.app.db.uow() as session:
        yield session, session.execute(select(Poll).where(Poll.number == 1)).scalar_one()
        raise _Undo


def test_a_count_in_the_votes_own_transaction_sees_the_vote(chat: Chat) -> None:
    """The tally moves at the commit; `results` read in the same transaction (a group of
    commands on SQLite) already counts the change, and no instant-runoff count is cached under
    a version that does not include it. A transaction that rolls back moves nothing."""
    with _ranked_poll_rolled_back(chat) as (session, poll):
        tallies.apply_change(session, poll, None, [2, 1])
        tallies.apply_change(session, poll, None, [2])
        assert rows.read(session, poll.id)[1].ballots == 1  # type: ignore[index]
        live = tallies.count(session, poll).to_json()
        assert live["ballots"] == 3 and live["winner"] == 2, live  # C, the third option
        with session.no_autoflush:
            poll.method = "irv"  # counted from the ballots; its cache is keyed by the version
            tallies.count(session, poll)
        assert session.execute(select(PollCount).where(PollCount.poll_id == poll.id)).all() == []
    assert chat.ok("results P-1").data["ballots"] == 1
    assert_tally_is_a_recount(chat.app.db, chat.workspace, 1)


def test_postgresql_adds_a_change_to_the_tally_row_in_one_statement(chat: Chat) -> None:
    """On PostgreSQL a change is added by one UPDATE (`storage.tallies.add`): the voters
    waiting on the row wait for that round trip and the COMMIT only. A row of another size
    (options added since) is left alone, for the caller to lock and fit; SQLite, whose writers
    take turns anyway, always takes that path."""
    with _ranked_poll_rolled_back(chat) as (session, poll):
        before = rows.read(session, poll.id)
        assert before is not None
        delta = tallies.recount("ranked", 3, [[2, 0]])
        added = rows.add(session, poll.id, delta)
        if chat.app.db.dialect == "sqlite":
            assert added is False and rows.read(session, poll.id) == before
            return
        assert added is True
        version, running = rows.read(session, poll.id)  # type: ignore[misc]
        assert version == before[0] + 1
        assert running == tallies.recount("ranked", 3, [[0, 1], [2, 0]])
        assert rows.add(session, poll.id, tallies.recount("ranked", 2, [[1]])) is False
        assert rows.read(session, poll.id) == (version, running)
