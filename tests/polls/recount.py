"""The check every running tally is held to: the same numbers, and the same result by every
counting method, as a full recount of the poll's stored ballots."""

from __future__ import annotations

from sqlalchemy import select

from bot.polls import tallies
from bot.polls.results import count as recounted
from storage import ballots
from storage import tallies as rows
from storage.db import Database
from storage.models import Poll


def assert_tally_is_a_recount(db: Database, workspace: str, number: int) -> int:
    """Compare poll `number`'s running tally with a recount of its ballots, for its own method
    and — ranked — for every ranked method; returns how many ballots it holds."""
    with db.uow() as session:
        poll = session.execute(
            select(Poll).where(Poll.workspace == workspace, Poll.number == number)
        ).scalar_one()
        choices = ballots.choices(session, poll.id)
        stored = rows.read(session, poll.id)
        assert stored is not None, f"P-{number} has no tally row"
        n = len(poll.options)
        assert stored[1] == tallies.recount(poll.mode, n, choices), f"P-{number}"
        methods = ("schulze", "borda", "irv") if poll.mode == "ranked" else (poll.method,)
        own = poll.method
        try:
            with session.no_autoflush:
                for method in methods:
                    poll.method = method
                    live = tallies.count(session, poll).to_json()
                    assert live == recounted(poll, choices).to_json(), (f"P-{number}", method)
        finally:
            poll.method = own
        session.expunge(poll)  # the method was only borrowed: nothing to write back
        return len(choices)
