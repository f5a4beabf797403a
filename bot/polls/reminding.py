"""Reminding the people who have not voted: by name in the channel for an ordinary poll; for an
anonymous poll, privately, one message each — naming non-voters in the channel, before and after
a tally others can watch, is how a member learns who voted what.

Both `nudge P-n` and the scheduler's reminder before a poll closes come here.
"""

from __future__ import annotations

from datetime import datetime

from bot import outbox
from bot.platforms import platform_of
from bot.views import Context, Reply, Section, counted, mention
from storage.db import UnitOfWork
from storage.models import Poll


def queue(
    session: UnitOfWork,
    poll: Poll,
    text: str,
    *,
    key: str,
    now: datetime,
    to: str | None = None,
    named: tuple[str, ...] = (),
) -> None:
    """Queue one reminder of the poll (outbox, in the caller's transaction): to the channel,
    naming `named` in its data, or with `to` privately to that person — written to from the
    poll's channel (the Teams sender reaches a person through its conversation)."""
    ref = f"P-{poll.number}"
    where = " in the channel" if to else ""
    outbox.enqueue(
        session,
        workspace=poll.workspace,
        channel=poll.channel,
        platform=platform_of(poll.workspace),
        kind="nudge",
        reply=Reply(
            ok=True,
            kind="nudge",
            text=text,
            blocks=[Section(text), Context(f"Vote with `vote {ref} …`{where}.")],
            data={"id": ref} | ({"nudged": list(named)} if named else {}),
            direct_to=to,
        ),
        key=key,
        now=now,
    )


def privately(
    session: UnitOfWork, poll: Poll, people: list[str], text: str, *, key: str, now: datetime
) -> int:
    """Queue `text` to each person, privately; `key` is the idempotency key of the occasion,
    made unique per person here. Returns how many."""
    for person in people:
        queue(session, poll, text, key=f"{key}:{person}", now=now, to=person)
    return len(people)


def in_channel(poll: Poll, people: list[str], closes: str) -> str:
    """The channel's reminder of an ordinary poll, naming who has not voted."""
    return (
        f"Reminder: {', '.join(mention(p) for p in people)} — please vote on P-{poll.number} "
        f"“{poll.question}”{closes}."
    )


def summary(poll: Poll, reminded: int) -> str:
    """What the channel hears of an anonymous poll's reminders: how many, never who."""
    return (
        f"Reminded {counted(reminded, 'person', 'people')} privately to vote on P-{poll.number}: "
        "it is anonymous, so nobody is named here."
    )


__all__ = ["in_channel", "privately", "queue", "summary"]
