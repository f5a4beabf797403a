"""An anonymous poll's tally moves only in batches of five ballots or more (or at its close), on
every surface, so that watching it — even between reminders — links no one to a choice; a
voter's own ballot is theirs to read and change while it waits."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, func, select

from adapters.bootstrap import App, build
from adapters.console.render import render
from bot.clock import FakeClock
from bot.polls.batches import BATCH
from storage.models import Ballot, PendingBallot, Posting
from tests.conftest import Chat, make_settings
from tests.time.helpers import tick


def _rows(app: App, model: type) -> int:
    with app.db.uow() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _everywhere(chat: Chat, number: int) -> list[Any]:
    """The tally as each surface shows it now: `results` and `show` (counts and ballots), the
    JSON and CSV exports (leader and ranking)."""
    ref = f"P-{number}"
    shown: list[Any] = []
    for line in (f"results {ref}", f"show {ref}"):
        data = chat.ok(line).data
        shown.append((data["counts"], data["ballots"]))
    exported = json.loads(chat.ok("export polls format:json").file.content)  # type: ignore[union-attr]
    shown += [(p["winner"], p["ranking"]) for p in exported if p["id"] == ref]
    table = chat.ok("export polls format:csv").file.content  # type: ignore[union-attr]
    rows = csv.DictReader(io.StringIO(table))
    shown += [(r["winner"], r["ranking"]) for r in rows if r["row"] == "poll" and r["id"] == ref]
    return shown


def _as_everywhere(counts: dict[str, int]) -> list[Any]:
    """What `_everywhere` gives for this tally (two options)."""
    ballots = sum(counts.values())
    (first, a), (second, b) = sorted(counts.items(), key=lambda kv: -kv[1])
    leader = first if a > b else ""
    ranking = f"{first} > {second}" if a > b else " > ".join(counts)
    return [(counts, ballots), (counts, ballots), (leader, ranking), (leader, ranking)]


def test_the_tally_moves_only_by_batches_of_five_on_every_surface(chat: Chat) -> None:
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    zero = {"Yes": 0, "No": 0}
    for n, voter in enumerate(["ana", "ben", "cy", "dee"]):
        receipt = chat.ok(f"vote P-1 {n % 2 + 1}", user=voter)
        assert "counts" not in receipt.data  # a receipt carries no tally at all
        assert _everywhere(chat, 1) == _as_everywhere(zero)
        assert chat.ok("results P-1").data["uncounted"] == n + 1
        # Ballots are waiting: the view says none is counted, not that nobody voted.
        assert "No votes counted yet." in render(chat.ok("results P-1")).splitlines()
    # The fifth ballot fills a batch (the vote's own transaction never counts); the next look
    # shows all five at once.
    chat.ok("vote P-1 1", user="eve")
    after = chat.ok("results P-1").data
    assert after["counts"] == {"Yes": 3, "No": 2} and after["ballots"] == 5
    assert "uncounted" not in after
    # Changes count like new ballots: four more (three changes, one newcomer) move nothing…
    for voter, choice in (("ana", 2), ("ben", 1), ("cy", 2), ("fay", 1)):
        chat.ok(f"vote P-1 {choice}", user=voter)
    assert _everywhere(chat, 1) == _as_everywhere({"Yes": 3, "No": 2})
    assert chat.ok("results P-1").data["uncounted"] == 4
    # …and the close counts whatever waits.
    closed = chat.ok("close P-1").data
    assert closed["counts"] == {"Yes": 3, "No": 3} and closed["ballots"] == 6
    assert _rows(chat.app, PendingBallot) == 0 and _rows(chat.app, Ballot) == 6


def test_a_voters_own_waiting_ballot_is_read_and_changed_like_a_counted_one(chat: Chat) -> None:
    chat.ok('poll "Pick" "A" "B" "C" "D" mode:multi anonymous')
    first = chat.ok("vote P-1 1 2 | two is enough", user="ana")
    assert first.text == "Recorded your vote on P-1: your vote is secret"
    # A toggle builds on the waiting ballot and keeps its reason; it is a change, not a new vote.
    toggled = chat.ok("vote P-1 ~3", user="ana")
    assert toggled.text == "Changed your vote on P-1: your vote is secret"
    assert _rows(chat.app, PendingBallot) == 1 and _rows(chat.app, Ballot) == 0
    for voter in ("ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 4", user=voter)
    res = chat.ok("results P-1").data
    assert res["counts"] == {"A": 1, "B": 1, "C": 1, "D": 4}
    assert res["reasons"] == [{"reason": "two is enough"}]
    # Counted now, it is still hers to change: the change waits for the next batch.
    assert chat.ok("vote P-1 -1", user="ana").text.startswith("Changed your vote")
    assert chat.ok("results P-1").data["counts"] == {"A": 1, "B": 1, "C": 1, "D": 4}
    assert chat.ok("close P-1").data["counts"] == {"A": 0, "B": 1, "C": 1, "D": 4}


def test_a_new_ballot_replaces_a_waiting_or_counted_one_with_its_reason(chat: Chat) -> None:
    chat.ok('poll "Pick" "A" "B" anonymous')
    assert chat.ok("vote P-1 1 | first thoughts", user="ana").text == (
        "Recorded your vote on P-1: your vote is secret"
    )
    assert chat.ok("vote P-1 2 | second thoughts", user="ana").text == (
        "Changed your vote on P-1: your vote is secret"
    )
    assert _rows(chat.app, PendingBallot) == 1
    for voter in ("ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 1", user=voter)
    res = chat.ok("results P-1").data
    assert res["counts"] == {"A": 4, "B": 1}
    assert res["reasons"] == [{"reason": "second thoughts"}]
    # Counted now: a new ballot (no reason) is a change too, and takes the reason away.
    assert chat.ok("vote P-1 1", user="ana").text.startswith("Changed your vote")
    assert chat.ok("close P-1").data["counts"] == {"A": 5, "B": 0}
    assert not chat.ok("results P-1").data.get("reasons")


class _Counting(psycopg.Cursor[Any]):
    """A psycopg cursor noting each statement it runs (the raw-cursor ones included)."""

    statements: list[str] = []

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
        _Counting.statements.append(str(query))
        return super().execute(query, params, **kw)


@contextmanager
def _statements(app: App) -> Iterator[list[str]]:
    """Every statement PostgreSQL is sent while the block runs."""

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.cursor_factory = _Counting

    _Counting.statements = seen = []
    event.listen(app.db.engine, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(app.db.engine, "checkout", on_checkout)
        app.db.engine.dispose()


def test_postgresql_holds_a_plain_anonymous_ballot_and_reads_what_it_replaces_at_once(
    chat: Chat,
) -> None:
    if chat.app.db.dialect != "postgresql":
        pytest.skip("round trips: SQLite runs the read and the write in turn, in process")
    chat.ok('poll "Pick" "A" "B" "C" mode:multi anonymous')
    chat.ok("vote P-1 1", user="ana")
    with _statements(chat.app) as seen:
        assert chat.ok("vote P-1 2", user="ana").text.startswith("Changed your vote")
    assert len([s for s in seen if "pending_ballots" in s]) == 1
    # A toggle builds on the waiting ballot: read first, then written.
    with _statements(chat.app) as seen:
        assert chat.ok("vote P-1 ~3", user="ana").text.startswith("Changed your vote")
    assert len([s for s in seen if "pending_ballots" in s]) == 2
    for voter in ("ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 1", user=voter)
    assert chat.ok("results P-1").data["counts"] == {"A": 4, "B": 1, "C": 1}


def _names(reply_json: str, people: list[str]) -> set[str]:
    return {p for p in people if p in reply_json}


def test_a_member_alternating_nudge_and_results_links_nobody(chat: Chat) -> None:
    """The attack of issue 10 (20 of 20 linked before): between two votes, an ordinary member
    asks `nudge` (who has not voted) and `results` (the tally); one name gone and one ballot
    more is a link. Now no reminder names anyone in the channel, and the tally moves only by
    five ballots or more, so even a member who knew who voted when could not tell which of
    five chose what."""
    voters = [f"person{n:02d}" for n in range(20)]
    for person in [*voters, "mallory"]:
        chat.ok("help", user=person)  # everyone is seen in the channel: all are eligible
    chat.ok('poll "Reorg?" "For" "Against" "Unsure" anonymous')

    def look() -> tuple[set[str], Counter[str]]:
        nudge = chat.ok("nudge P-1", user="mallory")
        results = chat.ok("results P-1", user="mallory")
        blob = json.dumps(nudge.to_json()) + json.dumps(results.to_json())
        return _names(blob, voters), Counter(results.data["counts"])

    linked, moves = 0, []
    before_names, before_tally = look()
    for n, voter in enumerate(voters):
        choice = ("For", "Against", "Unsure")[n * 7 % 3]
        chat.ok(f'vote P-1 "{choice}"', user=voter)
        after_names, after_tally = look()
        gone = before_names - after_names
        delta = after_tally - before_tally
        if len(gone) == 1 and delta.total() == 1:
            linked += next(iter(delta)) == choice
        if delta.total():
            moves.append(delta.total())
        before_names, before_tally = after_names, after_tally
    assert linked == 0
    assert before_names == set()  # no reply to the member ever named a voter or non-voter
    assert moves == [BATCH] * 4  # the tally moved four times, five ballots each


def test_the_scheduler_counts_a_full_batch_nobody_looked_at(
    chat: Chat, app: App, clock: FakeClock
) -> None:
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    with app.db.uow() as session:  # a live message of the poll, shown somewhere
        session.add(
            Posting(
                object_kind="poll",
                object_id=1,
                platform="console",
                conversation="general",
                message_id="m1",
                created_at=clock.now(),
            )
        )
    for voter in ("ana", "ben", "cy", "dee"):
        chat.ok("vote P-1 1", user=voter)
    assert tick(app).batches == 0  # four wait: not a batch
    chat.ok("vote P-1 2", user="eve")
    assert tick(app).batches == 1
    assert _rows(app, Ballot) == 5 and _rows(app, PendingBallot) == 0
    with app.db.uow() as session:
        posting = session.execute(select(Posting)).scalar_one()
        assert posting.changes > posting.shown  # the live message is refreshed to show it
    assert tick(app).batches == 0


def test_ballots_sealed_under_another_secret_are_kept_not_counted_and_break_nothing(
    chat: Chat, migrated_db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    chat.ok('poll "Secret?" "Yes" "No" anonymous')
    for voter in ("ana", "ben", "cy", "dee", "eve"):
        chat.ok("vote P-1 1", user=voter)
    # Restored under a new ALIGN_SECRET: the waiting ballots cannot be opened.
    other = build(make_settings(migrated_db_url, ALIGN_SECRET="another-secret"), clock=clock)
    try:
        res = Chat(other).ok("results P-1").data
        assert res["ballots"] == 0 and res["uncounted"] == 5
        assert "cannot be opened" in caplog.text
        # Under the new key a voter is not recognised (as for counted ballots), but can vote,
        # and the close counts what it can open.
        assert Chat(other).ok("vote P-1 2", user="ana").text.startswith("Recorded your vote")
        assert Chat(other).ok("close P-1").data["counts"] == {"Yes": 0, "No": 1}
        assert _rows(other, PendingBallot) == 5
    finally:
        other.db.dispose()
