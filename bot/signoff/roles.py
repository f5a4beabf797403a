"""Who a proposal involves, and where each person stands — read and written in the caller's
transaction.

Roles are rows of `decision_roles` (approvers, consulted, informed people and channels, in the
order they were named); stances are rows of `stances`, one per person per proposal, the latest
counting. Every stance change is also an audit row (written by `stances`), so `show` can tell
the whole story while the rules read only the current table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, select

from bot.context import Actor
from bot.errors import UsageError
from bot.parser import parse_channel, parse_user, split_list
from bot.platforms import platform_of
from storage.db import UnitOfWork, upsert
from storage.models import DecisionRole, Stance

ROLES = ("approver", "consulted", "informed")
MAX_PER_ROLE = 25
"""People (and channels) per role: more approvers than this is a vote — use a poll."""

TargetKind = Literal["user", "channel"]


@dataclass(frozen=True)
class Target:
    """A person or (for `informed`) a channel."""

    kind: TargetKind
    id: str


@dataclass
class Roles:
    approvers: list[str] = field(default_factory=list)
    consulted: list[str] = field(default_factory=list)
    informed: list[Target] = field(default_factory=list)

    def as_json(self) -> dict[str, list[str]]:
        """For audit rows, events and exports: people by id, channels as `#id`."""
        return {
            "approvers": list(self.approvers),
            "consulted": list(self.consulted),
            "informed": [t.id if t.kind == "user" else "#" + t.id for t in self.informed],
        }


@dataclass(frozen=True)
class StanceRow:
    user: str
    stance: str
    reason: str | None
    at: datetime


def channel_label(workspace: str, channel: str) -> str:
    """A channel as the platform shows a link to it (Slack `<#C…>`), else `#name`."""
    return f"<#{channel}>" if platform_of(workspace) == "slack" else f"#{channel}"


def parse_targets(
    values: list[str], *, actor: Actor, verb: str, role: str, channels: bool = False
) -> list[Target]:
    """People (and, with `channels`, channels) from an option's comma-separated list, in the
    order named, each once. A Teams channel comes as a mention whose id is a `19:` thread id."""
    found: list[Target] = []
    for entry in split_list(values):
        channel = parse_channel(entry)
        if channel is None:
            user = parse_user(entry, verb=verb, mentions=actor.mention_map())
            target = Target("channel", user) if user.startswith("19:") else Target("user", user)
        else:
            target = Target("channel", channel)
        if target.kind == "channel" and not channels:
            raise UsageError(
                f"{role.capitalize()} are people; `{entry[:40]}` is a channel.", verb=verb
            )
        if target not in found:
            found.append(target)
    if len(found) > MAX_PER_ROLE:
        raise UsageError(
            f"Name at most {MAX_PER_ROLE} {role} (you named {len(found)}); for a wider vote, "
            "open a poll.",
            verb=verb,
        )
    return found


def store(session: UnitOfWork, decision_id: int, roles: Roles) -> None:
    named: list[tuple[str, Target]] = [("approver", Target("user", u)) for u in roles.approvers]
    named += [("consulted", Target("user", u)) for u in roles.consulted]
    named += [("informed", t) for t in roles.informed]
    for position, (role, target) in enumerate(named):
        session.add(
            DecisionRole(
                decision_id=decision_id,
                role=role,
                target=target.id,
                target_kind=target.kind,
                position=position,
            )
        )
    session.flush()


def load(session: UnitOfWork, decision_id: int) -> Roles:
    return load_many(session, [decision_id]).get(decision_id, Roles())


def load_many(session: UnitOfWork, decision_ids: list[int]) -> dict[int, Roles]:
    """The roles of many decisions in one query (an export); a decision without any is
    absent."""
    if not decision_ids:
        return {}
    rows = session.execute(
        select(
            DecisionRole.decision_id,
            DecisionRole.role,
            DecisionRole.target,
            DecisionRole.target_kind,
        )
        .where(DecisionRole.decision_id.in_(decision_ids))
        .order_by(DecisionRole.decision_id, DecisionRole.position)
    ).all()
    found: dict[int, Roles] = {}
    for decision_id, role, target, kind in rows:
        roles = found.setdefault(decision_id, Roles())
        if role == "approver":
            roles.approvers.append(target)
        elif role == "consulted":
            roles.consulted.append(target)
        else:
            roles.informed.append(Target("channel" if kind == "channel" else "user", target))
    return found


def stances(session: UnitOfWork, decision_id: int) -> list[StanceRow]:
    """Everyone's current stance, in the order they were last given."""
    rows = session.execute(
        select(Stance.user, Stance.stance, Stance.reason, Stance.at)
        .where(Stance.decision_id == decision_id)
        .order_by(Stance.at, Stance.user)
    ).all()
    return [StanceRow(u, s, r, a) for u, s, r, a in rows]


def write_stance(
    session: UnitOfWork,
    decision_id: int,
    user: str,
    stance: str,
    reason: str | None,
    now: datetime,
) -> None:
    """The person's stance now (one statement: two clicks at once leave one row)."""
    upsert(
        session,
        Stance,
        {"decision_id": decision_id, "user": user},
        {"stance": stance, "reason": reason, "at": now},
    )


def clear_stances(session: UnitOfWork, decision_id: int) -> None:
    """A proposal reopened asks everyone again; the old stances stay in the audit trail."""
    session.execute(delete(Stance).where(Stance.decision_id == decision_id))


def standing_map(rows: list[StanceRow]) -> dict[str, str]:
    return {row.user: row.stance for row in rows}


def as_json(rows: list[StanceRow], approvers: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "user": row.user,
            "stance": row.stance,
            "reason": row.reason,
            "at": row.at.isoformat(),
            "approver": row.user in approvers,
        }
        for row in rows
    ]


__all__ = [
    "MAX_PER_ROLE",
    "ROLES",
    "Roles",
    "StanceRow",
    "Target",
    "as_json",
    "channel_label",
    "clear_stances",
    "load",
    "load_many",
    "parse_targets",
    "stances",
    "store",
    "write_stance",
]
