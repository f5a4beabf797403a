"""Channel rosters as the platform last listed them, with when: the member list every process
computes eligibility, reminders and frozen results from (`rosters` table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage.db import UnitOfWork, upsert
from storage.models import Roster


def load(session: UnitOfWork, workspace: str, channel: str) -> Roster | None:
    return session.execute(
        select(Roster).where(Roster.workspace == workspace, Roster.channel == channel)
    ).scalar_one_or_none()


def fetched_at(session: UnitOfWork, workspace: str, channel: str) -> datetime | None:
    return session.execute(
        select(Roster.fetched_at).where(Roster.workspace == workspace, Roster.channel == channel)
    ).scalar_one_or_none()


def members(session: UnitOfWork, workspace: str, channel: str) -> list[str] | None:
    """The member ids, or None when the platform could not list them (or listed nobody)."""
    found = session.execute(
        select(Roster.members).where(Roster.workspace == workspace, Roster.channel == channel)
    ).scalar_one_or_none()
    return list(found) if found else None


def store(
    session: UnitOfWork,
    workspace: str,
    channel: str,
    members: list[str] | None,
    *,
    now: datetime,
) -> None:
    """Record a fetch: the members (None when the platform would not list them), as of `now`."""
    upsert(
        session,
        Roster,
        {"workspace": workspace, "channel": channel},
        {"members": sorted(set(members)) if members is not None else None, "fetched_at": now},
    )


__all__ = ["fetched_at", "load", "members", "store"]
