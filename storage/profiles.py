"""People as their platform describes them — display name, time zone, admin rights, and on Teams
the `29:` id that mention entities carry — kept in the `profiles` table. The one place profiles
are written: Slack's users.info cache and Teams' rosters and senders both come through here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.db import UnitOfWork, dialect_insert
from storage.models import Profile

MAX_NAME = 200


@dataclass(frozen=True)
class Person:
    is_admin: bool
    tz: str | None
    fetched_at: datetime


def _upsert(session: UnitOfWork, workspace: str, user: str, values: dict[str, Any]) -> None:
    insert = dialect_insert(session.get_bind().dialect.name)
    stmt = insert(Profile).values(workspace=workspace, user=user, **values)
    session.execute(
        stmt.on_conflict_do_update(index_elements=[Profile.workspace, Profile.user], set_=values)
    )


def save_person(
    session: UnitOfWork,
    workspace: str,
    user: str,
    *,
    name: str | None,
    tz: str | None,
    is_admin: bool,
    now: datetime,
) -> None:
    """Everything the platform said about one person (Slack's users.info), as of `now`."""
    values = {
        "display_name": (name or "")[:MAX_NAME] or None,
        "tz": tz,
        "is_admin": is_admin,
        "fetched_at": now,
    }
    _upsert(session, workspace, user, values)


def save_names(
    session: UnitOfWork,
    workspace: str,
    names: dict[str, str],
    *,
    now: datetime,
    aliases: dict[str, str] | None = None,
) -> None:
    """Display names by user id, and other ids the same people go by (`alias → user`)."""
    aliases = aliases or {}
    by_user = {user: alias for alias, user in aliases.items()}
    for user in sorted(set(names) | set(by_user)):
        values: dict[str, Any] = {"fetched_at": now}
        if names.get(user):
            values["display_name"] = names[user][:MAX_NAME]
        if user in by_user:
            values["alias"] = by_user[user][:120]
        _upsert(session, workspace, user, values)


def person(session: UnitOfWork, workspace: str, user: str) -> Person | None:
    row = session.get(Profile, (workspace, user))
    return None if row is None else Person(row.is_admin, row.tz, row.fetched_at)


def names(session: UnitOfWork, workspace: str, users: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(users))
    if not wanted:
        return {}
    rows = session.execute(
        select(Profile.user, Profile.display_name).where(
            Profile.workspace == workspace, Profile.user.in_(wanted)
        )
    ).all()
    return {user: name for user, name in rows if name}


def user_by_alias(session: UnitOfWork, workspace: str, alias: str) -> str | None:
    """The user id of someone known by another id (a Teams `29:` id → the AAD object id)."""
    return session.execute(
        select(Profile.user).where(Profile.workspace == workspace, Profile.alias == alias).limit(1)
    ).scalar_one_or_none()


def alias_of(session: UnitOfWork, workspace: str, user: str) -> str | None:
    """The other id a person is known by (an AAD object id → the Teams `29:` id), if known."""
    return session.execute(
        select(Profile.alias).where(Profile.workspace == workspace, Profile.user == user)
    ).scalar_one_or_none()


__all__ = [
    "Person",
    "alias_of",
    "names",
    "person",
    "save_names",
    "save_person",
    "user_by_alias",
]
