"""`Database.command()`: a command's units of work commit as one transaction without a savepoint
for the first, yet each still rolls back alone when it fails — what the engine's refusals and the
inbox's `answered` mark rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage import upgrade
from storage.db import Database, upsert
from storage.models import Member

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Refused(Exception):
    """Stands for a refusal (`AlignError`): the caller catches it inside the command."""


def _note(db: Database, user: str, *, fail: bool = False, savepoint: bool = True) -> None:
    with db.uow(savepoint=savepoint) as session:
        upsert(
            session, Member, {"workspace": "w", "channel": "c", "user": user}, {"last_seen": NOW}
        )
        if fail:
            raise Refused(user)


def _users(db: Database) -> list[str]:
    with db.uow() as session:
        return sorted(session.execute(select(Member.user)).scalars())


@pytest.fixture
def db(db_url: str) -> Database:
    upgrade(db_url)
    return Database(db_url)


def test_a_refused_first_part_stores_nothing_and_the_next_part_still_commits(
    db: Database,
) -> None:
    with db.command():
        with pytest.raises(Refused):
            _note(db, "first", fail=True)
        _note(db, "second")
        _note(db, "third", savepoint=False)
    assert _users(db) == ["second", "third"]


def test_a_refused_later_part_keeps_what_came_before_it(db: Database) -> None:
    with db.command():
        _note(db, "first")
        with pytest.raises(Refused):
            _note(db, "second", fail=True)
    assert _users(db) == ["first"]


def test_an_error_out_of_the_command_rolls_back_every_part(db: Database) -> None:
    with pytest.raises(RuntimeError), db.command():
        _note(db, "first")
        _note(db, "second", savepoint=False)
        raise RuntimeError("boom")
    assert _users(db) == []


def test_inside_a_joined_transaction_a_failed_command_leaves_the_outer_work(
    db: Database,
) -> None:
    """The inbox's case: its own row is written first, the command runs joined to it."""
    with db.uow() as session:
        upsert(
            session, Member, {"workspace": "w", "channel": "c", "user": "inbox"}, {"last_seen": NOW}
        )
        with db.joined(session):
            with pytest.raises(RuntimeError), db.command():
                _note(db, "command")
                raise RuntimeError("boom")
            with db.command():
                with pytest.raises(Refused):
                    _note(db, "refused", fail=True)
                _note(db, "kept")
    assert _users(db) == ["inbox", "kept"]
