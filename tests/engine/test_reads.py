"""The verbs the grammar marks `reads` store nothing: adapters run them without recording the
request (adapters/inbox.py), and the engine in read transactions outside SQLite's write lock.
Here every such verb, on a channel with something in it, issues no statement that writes — and
the note that the person was here still lands, in a write of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from bot import engine, grammar
from bot.engine import Engine
from storage.models import Member
from tests.conftest import Chat

READS = {
    "help": ["help", "help poll"],
    "decisions": ["decisions", "decisions ship tag:launch status:accepted since:2w", "decisions"],
    "pending": ["pending"],
    "priorities": ["priorities", "priorities by:votes lane:now"],
    "roadmap": ["roadmap"],
    "questions": ["questions", "questions overdue", "questions mine"],
}


def test_the_reads_are_the_verbs_listed_here() -> None:
    assert {v.name for v in grammar.VERBS if v.reads} == set(READS)


def test_only_reads_asks_the_grammar_and_refuses_what_does_not_parse() -> None:
    assert Engine.only_reads("decisions pricing")
    assert Engine.only_reads("/align help")
    assert Engine.only_reads("  QUESTIONS mine")
    assert not Engine.only_reads("decide Ship it")
    assert not Engine.only_reads("show D-1")  # a poll shown may count waiting ballots
    assert not Engine.only_reads("frobnicate")
    assert not Engine.only_reads('decisions "unclosed')


@contextmanager
def statements(chat: Chat) -> Iterator[list[str]]:
    """The first word of every statement sent to the database in the block, seen at the
    driver: the statements run on the raw cursor (`storage.db.Prepared`, a list's fast path)
    reach no SQLAlchemy event, so an event listener would miss them."""
    seen: list[str] = []

    def note(statement: object) -> None:
        seen.append(str(statement).strip().split(None, 1)[0].upper())

    engine = chat.app.db.engine
    if engine.dialect.name == "sqlite":
        traced: list[Any] = []

        def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            dbapi_connection.set_trace_callback(note)
            traced.append(dbapi_connection)

        event.listen(engine.pool, "checkout", trace)
        try:
            yield seen
        finally:
            event.remove(engine.pool, "checkout", trace)
            for dbapi_connection in traced:
                dbapi_connection.set_trace_callback(None)
        return
    import psycopg

    with pytest.MonkeyPatch.context() as patch:
        for name in ("execute", "executemany"):
            sent = getattr(psycopg.Cursor, name)

            def spied(self: Any, query: Any, *args: Any, _sent: Any = sent, **kw: Any) -> Any:
                note(query)
                return _sent(self, query, *args, **kw)

            patch.setattr(psycopg.Cursor, name, spied)
        yield seen


def test_a_line_asked_about_again_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter asks twice per command (record it? look the person up?), and people send the
    same lines again: the answers are the grammar's, from one parse of each line."""
    parsed: list[str] = []
    parse = engine.parse

    def counted(text: str) -> Any:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(engine, "parse", counted)
    engine._verb_of.cache_clear()
    for _ in range(3):
        assert Engine.only_reads("decisions ship")
        assert Engine.needs_profile("decisions ship")
        assert not Engine.only_reads("vote P-1 2")
        assert not Engine.needs_profile("vote P-1 2")
        assert not Engine.only_reads("frobnicate")
    assert parsed == ["decisions ship", "vote P-1 2", "frobnicate"]


def test_every_read_verb_writes_nothing(chat: Chat) -> None:
    """On PostgreSQL a read's statements run each on its own (storage.db: no BEGIN, no COMMIT),
    so a write among them would not even be undone with the rest: there must be none."""
    chat.ok("decide Ship the launch | ready tag:launch")
    chat.ok("ask Who owns the launch? owner:@pm due:1d")
    chat.ok("item Faster search tag:search")
    chat.ok('poll "Which first?" "Search" "Launch"')
    chat.ok("propose Move to EU | cheaper approvers:@pm")
    for lines in READS.values():
        for line in lines:
            chat.say(line)  # once, so the person is remembered already
            with statements(chat) as seen:
                reply = chat.say(line)
            assert reply.ok, (line, reply.error)
            writes = [s for s in seen if s not in ("SELECT", "WITH", "BEGIN", "COMMIT")]
            assert writes == [], (line, seen)
            assert line.startswith("help") or "SELECT" in seen, (line, seen)  # it saw them


def test_a_read_still_notes_that_the_person_was_here(chat: Chat) -> None:
    chat.ok("decisions", user="newcomer")
    with chat.app.db.uow() as session:
        users = session.execute(select(Member.user).where(Member.channel == "general")).scalars()
        assert "newcomer" in set(users)
