"""Asking approvers who have not answered: `nudge D-n`, and the scheduler's one reminder 24
hours before a proposal is due."""

from __future__ import annotations

from bot.common import when
from bot.signoff import roles as roles_mod
from bot.views import Context, Reply, Section, mention
from storage.db import UnitOfWork
from storage.models import Decision


def waiting(session: UnitOfWork, decision: Decision) -> list[str]:
    """Approvers with no stance yet, in the order they were named."""
    answered = {row.user for row in roles_mod.stances(session, decision.id)}
    return [a for a in roles_mod.load(session, decision.id).approvers if a not in answered]


def reminder(decision: Decision, people: list[str], tz: str) -> Reply:
    ref = f"D-{decision.number}"
    due = f"; it is due {when(decision.due_at, tz)}" if decision.due_at else ""
    text = (
        f"Reminder: {', '.join(mention(p) for p in people)} — {ref} “{decision.title}” waits "
        f"for your sign-off{due}."
    )
    return Reply(
        ok=True,
        kind="nudge",
        text=text,
        blocks=[
            Section(text),
            Context(
                f"Answer with `agree {ref}`, `abstain {ref}`, `object {ref} | <why>` or "
                f"`block {ref} | <why>`."
            ),
        ],
        data={"id": ref, "nudged": people},
    )


__all__ = ["reminder", "waiting"]
