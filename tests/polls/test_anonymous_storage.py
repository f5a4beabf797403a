"""What a reader of the database's files — without ALIGN_SECRET — can learn of an anonymous
poll: who voted, and the ballots, but never whose ballot is whose.

Issue 10 linked 30 of 30 voters from SQLite's `-wal` file alone (ballot and participation in one
commit) and PostgreSQL kept each ballot's writing transaction. Here a reader copies the main file
and the WAL after every command — the strongest reader short of the key — and pairs whatever
appears together; each search is first run on a named poll, where it must find every link.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.polls import voter_key
from storage.models import PendingBallot, Poll
from tests.conftest import Chat

VOTERS = 20


@dataclass
class FileReader:
    """Copies `align.db` and `align.db-wal` after each command and notes, in the order they
    were written, which people and which ballot markers (reasons) first appear together: WAL
    commits one by one, then the main file's changed pages since the last copy."""

    path: Path
    people: list[str]
    markers: list[str]
    seen: set[str] = field(default_factory=set)
    commits_seen: set[tuple[bytes, int]] = field(default_factory=set)
    main: bytes = b""
    new_people: set[str] = field(default_factory=set)
    groups: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)
    wal_bytes: list[bytes] = field(default_factory=list)

    def look(self) -> None:
        wal = self.path.with_name(self.path.name + "-wal")
        raw = wal.read_bytes() if wal.exists() else b""
        self.wal_bytes.append(raw)
        for blob in _wal_commits(raw, self.commits_seen):
            self._observe(blob)
        main = self.path.read_bytes()
        self._observe(_changed_pages(self.main, main))
        self.main = main

    def _observe(self, blob: bytes) -> None:
        fresh = {s for s in (*self.people, *self.markers) if s.encode() in blob} - self.seen
        self.seen |= fresh
        self.new_people |= fresh & set(self.people)
        markers = frozenset(fresh & set(self.markers))
        if markers:
            self.groups.append((frozenset(self.new_people), markers))
            self.new_people = set()

    def links(self, truth: dict[str, str]) -> int:
        """People paired with their own marker: one new person and one new marker together."""
        return sum(
            len(people) == 1 and len(markers) == 1 and truth[next(iter(people))] in markers
            for people, markers in self.groups
        )


def _wal_commits(raw: bytes, done: set[tuple[bytes, int]]) -> list[bytes]:
    """The pages of each committed transaction in a WAL file not seen before."""
    if len(raw) < 32:
        return []
    page_size = struct.unpack(">I", raw[8:12])[0]
    salts = raw[16:24]
    out, pages, at, index = [], [], 32, 0
    while at + 24 + page_size <= len(raw):
        header, page = raw[at : at + 24], raw[at + 24 : at + 24 + page_size]
        if header[8:16] != salts:
            break
        pages.append(page)
        if struct.unpack(">I", header[4:8])[0]:  # a commit frame ends a transaction
            if (salts, index) not in done:
                done.add((salts, index))
                out.append(b"".join(pages))
            pages = []
        at += 24 + page_size
        index += 1
    return out


def _changed_pages(before: bytes, after: bytes, page_size: int = 4096) -> bytes:
    return b"".join(
        after[i : i + page_size]
        for i in range(0, len(after), page_size)
        if after[i : i + page_size] != before[i : i + page_size]
    )


def _run(chat: Chat, reader: FileReader, anonymous: bool, tag: str) -> dict[str, str]:
    """A poll with VOTERS voters, each giving a reason only they give (the marker); someone
    reads the results after every vote. Returns person → marker."""
    flag = " anonymous" if anonymous else ""
    number = chat.ok(f'poll "Plan {tag}?" "A" "B" "C"{flag}').data["id"]
    truth = {}
    for n in range(VOTERS):
        person, marker = f"{tag}person{n:02d}", f"{tag}marker{n:02d}q"
        truth[person] = marker
        chat.ok(f"vote {number} {n % 3 + 1} | {marker}", user=person)
        reader.look()
        chat.ok(f"results {number}")
        reader.look()
    chat.ok(f"close {number}")
    reader.look()
    return truth


def _db_path(chat: Chat) -> Path:
    database = make_url(chat.app.db.url).database
    assert database
    return Path(database)


def test_sqlite_files_pair_nobody_with_a_ballot(chat: Chat) -> None:
    if chat.app.db.dialect != "sqlite":
        pytest.skip("the SQLite files (PostgreSQL's heap: the test below)")
    path = _db_path(chat)
    named_people = [f"nmperson{n:02d}" for n in range(VOTERS)]
    named_markers = [f"nmmarker{n:02d}q" for n in range(VOTERS)]
    control = FileReader(path, named_people, named_markers)
    control.look()
    truth = _run(chat, control, anonymous=False, tag="nm")
    assert control.links(truth) == VOTERS  # a named poll: every voter found beside their reason

    people = [f"anperson{n:02d}" for n in range(VOTERS)]
    markers = [f"anmarker{n:02d}q" for n in range(VOTERS)]
    reader = FileReader(path, people, markers)
    reader.look()
    # Capture each pending ballot as stored, to look for its bytes once it has been counted.
    sealed: set[bytes] = set()
    plain_look = reader.look

    def look_and_keep() -> None:
        plain_look()
        with chat.app.db.uow() as session:
            sealed.update(bytes(s) for s in session.execute(select(PendingBallot.sealed)).scalars())

    reader.look = look_and_keep  # type: ignore[method-assign]
    truth = _run(chat, reader, anonymous=True, tag="an")
    assert reader.links(truth) == 0
    # Markers appear only in batches, each with at least five people new since the last one:
    # the most a reader learns is "one of these five".
    assert [len(m) for _, m in reader.groups] == [5, 5, 5, 5]
    assert all(len(p) >= 5 for p, _ in reader.groups)
    # The WAL never held a marker (pending ballots are sealed; a batch's commit is checkpointed
    # and the WAL truncated right after it): it is empty after each batch (copies are taken
    # after each vote and each read; reads after votes 5, 10, 15 and 20 counted a batch).
    assert not [m for m in markers for w in reader.wal_bytes if m.encode() in w]
    assert [len(reader.wal_bytes[2 + 2 * n]) for n in (4, 9, 14, 19)] == [0, 0, 0, 0]
    assert all(len(reader.wal_bytes[1 + 2 * n]) for n in range(VOTERS))  # votes stay in it
    # Sealed pending ballots are all one size, and once counted their bytes are zeroed away.
    assert len(sealed) == VOTERS and len({len(s) for s in sealed}) == 1
    final = path.read_bytes()
    assert not [s for s in sealed if s[:32] in final]


def test_sqlite_zeroes_a_changed_ballots_old_content(chat: Chat) -> None:
    if chat.app.db.dialect != "sqlite":
        pytest.skip("SQLite's secure_delete")
    chat.ok('poll "Plan?" "A" "B" anonymous')
    for n in range(5):
        chat.ok(f"vote P-1 1 | firstwords{n}x", user=f"p{n}")
    chat.ok("results P-1")
    assert b"firstwords0x" in _db_path(chat).read_bytes()
    for n in range(5):
        chat.ok(f"vote P-1 2 | secondwords{n}x", user=f"p{n}")
    chat.ok("results P-1")
    content = _db_path(chat).read_bytes()
    assert b"secondwords0x" in content and b"firstwords" not in content


def test_postgresql_heap_keeps_no_vote_order(chat: Chat) -> None:
    if chat.app.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's heap order and xmin (SQLite's files: the test above)")
    chat.ok('poll "Plan?" "A" "B" "C" anonymous')
    people = [f"person{n:02d}" for n in range(VOTERS + 2)]
    for n, person in enumerate(people):
        chat.ok(f"vote P-1 {n % 3 + 1}", user=person)
        chat.ok("results P-1")
    chat.ok("close P-1")
    with chat.app.db.uow() as session:
        poll = session.execute(select(Poll)).scalar_one()
        position = {voter_key(chat.app.engine.deps, poll, p): i for i, p in enumerate(people)}
        ballots = session.execute(
            text("SELECT xmin::text, voter_key FROM ballots ORDER BY ctid")
        ).all()
        voted = session.execute(
            text('SELECT xmin::text, "user" FROM participation ORDER BY ctid')
        ).all()
    # One writing transaction per batch of five (the last two at the close), none a vote's.
    by_xmin = Counter(xmin for xmin, _ in ballots)
    assert sorted(by_xmin.values()) == [2, 5, 5, 5, 5]
    assert not set(by_xmin) & {xmin for xmin, _ in voted}
    assert [u for _, u in voted] == people  # participation is in voting order, as it may be
    # Within a batch the heap order is shuffled: the reader's best pairing (heap order against
    # voting order) is chance, not the truth.
    order = [position[k] for _, k in ballots]
    assert sorted(order) == list(range(len(people)))
    batches = [order[i : i + 5] for i in range(0, 20, 5)]
    assert [sorted(b) for b in batches] == [list(range(i, i + 5)) for i in range(0, 20, 5)]
    assert any(b != sorted(b) for b in batches)
    assert sum(o == i for i, o in enumerate(order)) < len(order)
