"""Polls and prioritization votes: open, vote (changeable until close), results, close.

The package's modules split by reason to change: `rules` (modes, limits, open or closed),
`features` (anonymous/public, hidden results, max:, open options, every: — read and checked
together), `opening` (poll, prioritize, edit), `ballots` (recording votes and reasons), `results`
(tally, eligibility, what may be seen, freezing at close), `voters` (who chose what, reasons),
`view` (the poll as a message), `closing` (the close command), `recurrence` (a recurring poll's
series and periods), `pulses` (the scheduler opening each period) and `trend` (periods side by
side). This module
is the face the engine, the scheduler and the kinds table use.
"""

from __future__ import annotations

from bot.context import Actor, Deps
from bot.polls.ballots import (
    cmd_vote,
    form_ballot,
    parse_ballot,
    record_vote,
    submit_form,
)
from bot.polls.closing import cmd_close
from bot.polls.opening import cmd_poll, cmd_prioritize, edit, snapshot
from bot.polls.results import close, close_due, count, eligible, non_voters, results, visible
from bot.polls.rules import MAX_OPTIONS, closed_on, may_manage, voter_key
from bot.polls.view import ballot_form, cmd_results, poll_header, poll_view
from bot.polls.voters import describe as describe_ballot
from bot.polls.voters import said
from bot.views import Reply
from storage.db import UnitOfWork
from storage.models import Poll


def view(deps: Deps, session: UnitOfWork, actor: Actor, poll: Poll, *, full: bool) -> Reply:
    """The kinds-table view: `show P-n` (full, with history) and the reply to `edit P-n`."""
    return poll_view(deps, session, actor, poll, full=full)


__all__ = [
    "MAX_OPTIONS",
    "ballot_form",
    "close",
    "close_due",
    "closed_on",
    "cmd_close",
    "cmd_poll",
    "cmd_prioritize",
    "cmd_results",
    "cmd_vote",
    "count",
    "describe_ballot",
    "edit",
    "eligible",
    "form_ballot",
    "may_manage",
    "non_voters",
    "parse_ballot",
    "poll_header",
    "poll_view",
    "record_vote",
    "results",
    "said",
    "snapshot",
    "submit_form",
    "view",
    "visible",
    "voter_key",
]
