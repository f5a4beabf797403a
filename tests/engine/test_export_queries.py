"""`export decisions format:md` reads the decisions, their links and sign-off roles once for the
whole file: the statements it runs do not grow with the number of decisions."""

from __future__ import annotations

from sqlalchemy import event

from tests.conftest import Chat


def _statements(chat: Chat, line: str) -> tuple[int, str]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = chat.app.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        reply = chat.ok(line)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert reply.file is not None
    return len(seen), reply.file.content


def _linked_decisions(chat: Chat, first: int) -> None:
    """Three decisions: one superseding another, one answering a question, one from a proposal
    with approvers, linked by hand to an item."""
    n = first
    chat.ok(f"decide Old way {n}")
    chat.ok(f"decide New way {n + 1}")
    chat.ok(f"status D-{n} superseded by:D-{n + 1}")
    chat.ok(f"ask Which region {n}?")
    q = (n + 2) // 3
    chat.ok(f"answer Q-{q} EU {n} decide")
    chat.ok(f"item Thing {n}")
    chat.ok(f"link D-{n + 2} I-{q}")


def test_a_markdown_export_reads_each_kind_of_record_once(chat: Chat) -> None:
    _linked_decisions(chat, 1)
    few, small = _statements(chat, "export decisions format:md")
    for first in (4, 7, 10):
        _linked_decisions(chat, first)
    many, big = _statements(chat, "export decisions format:md")
    assert many == few, (few, many)
    assert "* Superseded by [D-11](#d-11)" in big
    assert "* Answers Q-4" in big
    assert "* Relates to I-4" in big
    assert small.count("# D-") == 3 and big.count("# D-") == 12
