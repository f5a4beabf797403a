"""The roadmap digest: what changed in a channel since its last digest (or the last 7 days).

The changes are read from the audit trail — every change writes a row with before and after — so
the digest needs no bookkeeping of its own: decisions recorded or changed, items added, moved
between lanes or re-scored (old → new), polls opened and closed (with winners), questions opened,
answered and overdue; then the Now lane and the polls closing in the coming week. A quiet week
says so in one line.

`digest [now]` answers with it directly; the weekly schedule (`bot/schedules.py`) queues it in the
outbox with `post`. Both move `channels.last_digest_at`, so the next one starts where this ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select

from bot import kinds, outbox, schedules
from bot.changes import standing_text
from bot.common import channel_settings, channel_tz, day, when
from bot.context import Actor, Deps, Event
from bot.errors import UsageError
from bot.grammar import KINDS
from bot.parser import Command
from bot.scoring import Inputs, combine, format_number
from bot.timeparse import WEEKDAYS, parse_clock, weekday, zone
from bot.views import Context, Divider, Heading, Line, ListBlock, Reply, Section, mention
from storage.db import UnitOfWork
from storage.models import (
    AuditEntry,
    Channel,
    Decision,
    DecisionRole,
    Item,
    ItemScore,
    Poll,
    Question,
    Schedule,
    Stance,
)

DEFAULT_WINDOW = timedelta(days=7)
COMING_WEEK = timedelta(days=7)
DAYS = tuple(name[:3] for name in WEEKDAYS)
TITLE: dict[str, str] = {k.noun: k.title_field for k in KINDS}


# Built once: a tick builds hundreds of digests, and composing the statements each time cost
# more than running them. Parameters are bound per call.
_P: dict[str, Any] = {name: bindparam(name) for name in ("ws", "ch", "since", "now", "week")}
_AUDIT = (
    select(
        AuditEntry.object_ref,
        AuditEntry.object_kind,
        AuditEntry.object_id,
        AuditEntry.action,
        AuditEntry.before,
        AuditEntry.after,
    )
    .where(
        AuditEntry.workspace == _P["ws"],
        AuditEntry.channel == _P["ch"],
        AuditEntry.at > _P["since"],
        AuditEntry.at <= _P["now"],
    )
    .order_by(AuditEntry.at, AuditEntry.id)
)
_TITLES = {
    k.noun: select(kinds.model(k.prefix).id, getattr(kinds.model(k.prefix), k.title_field)).where(
        kinds.model(k.prefix).id.in_(bindparam("ids", expanding=True))
    )
    for k in KINDS
}
_OVERDUE = (
    select(Question.number, Question.text, Question.owner, Question.due_at)
    .where(
        Question.workspace == _P["ws"],
        Question.channel == _P["ch"],
        Question.status == "open",
        Question.due_at.is_not(None),
        Question.due_at < _P["now"],
    )
    .order_by(Question.due_at)
)
_NOW_LANE = (
    select(
        Item.id,
        Item.number,
        Item.title,
        ItemScore.reach,
        ItemScore.impact,
        ItemScore.confidence,
        ItemScore.effort,
    )
    .outerjoin(ItemScore, ItemScore.item_id == Item.id)
    .where(Item.workspace == _P["ws"], Item.channel == _P["ch"], Item.lane == "now")
)
_CLOSING = (
    select(Poll.number, Poll.question, Poll.closes_at)
    .where(
        Poll.workspace == _P["ws"],
        Poll.channel == _P["ch"],
        Poll.closed_at.is_(None),
        Poll.closes_at > _P["now"],
        Poll.closes_at <= _P["week"],
    )
    .order_by(Poll.closes_at)
)


_WAITING = (
    select(Decision.id, Decision.number, Decision.title, Decision.due_at)
    .where(
        Decision.workspace == _P["ws"],
        Decision.channel == _P["ch"],
        Decision.status == "proposed",
        Decision.rule.is_not(None),
    )
    .order_by(Decision.due_at.is_(None), Decision.due_at, Decision.number)
)
_APPROVERS = (
    select(DecisionRole.decision_id, func.count())
    .where(
        DecisionRole.decision_id.in_(bindparam("ids", expanding=True)),
        DecisionRole.role == "approver",
    )
    .group_by(DecisionRole.decision_id)
)
_ANSWERED = (
    select(DecisionRole.decision_id, func.count())
    .join(
        Stance,
        (Stance.decision_id == DecisionRole.decision_id) & (Stance.user == DecisionRole.target),
    )
    .where(
        DecisionRole.decision_id.in_(bindparam("ids", expanding=True)),
        DecisionRole.role == "approver",
    )
    .group_by(DecisionRole.decision_id)
)
_REVIEWS = (
    select(Decision.number, Decision.title, Decision.review_at, Decision.owner)
    .where(
        Decision.workspace == _P["ws"],
        Decision.channel == _P["ch"],
        Decision.review_at.is_not(None),
        Decision.review_at <= _P["week"],
        Decision.status != "superseded",
    )
    .order_by(Decision.review_at)
)


def _waiting_for_signoff(session: UnitOfWork, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Open proposals with how many approvers have answered (three small queries, and only
    the first when the channel has no open proposal)."""
    rows = session.execute(_WAITING, params).all()
    if not rows:
        return []
    ids = {"ids": [r.id for r in rows]}
    approvers: dict[int, int] = {d: n for d, n in session.execute(_APPROVERS, ids)}
    answered: dict[int, int] = {d: n for d, n in session.execute(_ANSWERED, ids)}
    return [
        {
            "id": f"D-{r.number}",
            "title": r.title,
            "due": r.due_at,
            "answered": answered.get(r.id, 0),
            "approvers": approvers.get(r.id, 0),
        }
        for r in rows
    ]


@dataclass(frozen=True)
class _NowItem:
    number: int
    title: str
    rice: float | None


def _now_lane(session: UnitOfWork, params: dict[str, Any]) -> list[_NowItem]:
    """The Now lane ranked as `roadmap` ranks it (RICE from the median of scorers' inputs,
    unscored last), in one query."""
    rows: dict[int, tuple[int, str, list[Inputs]]] = {}
    for item_id, number, title, reach, impact, confidence, effort in session.execute(
        _NOW_LANE, params
    ):
        entry = rows.setdefault(item_id, (number, title, []))
        if (reach, impact, confidence, effort) != (None, None, None, None):
            entry[2].append(Inputs(reach, impact, confidence, effort))
    lane = [_NowItem(n, t, combine(inputs).rice) for n, t, inputs in rows.values()]
    lane.sort(key=lambda i: (i.rice is None, -(i.rice or 0), i.number))
    return lane


@dataclass
class _Change:
    """One object's changes in the window, collapsed: first `before`, last `after`."""

    ref: str
    kind: str
    object_id: int
    actions: list[str] = field(default_factory=list)
    first_before: dict[str, Any] = field(default_factory=dict)
    last_after: dict[str, Any] = field(default_factory=dict)
    created: dict[str, Any] | None = None
    closed: dict[str, Any] | None = None
    answered: dict[str, Any] | None = None
    # per field: (value before the window's first change to it, value after its last change)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def add(self, entry: Any) -> None:
        """One audit row (object_ref, object_kind, object_id, action, before, after)."""
        self.actions.append(entry.action)
        before, after = entry.before or {}, entry.after or {}
        self.first_before = self.first_before or before
        self.last_after = self.last_after | after
        if entry.action == "create":
            self.created = after
        elif entry.action == "close":
            self.closed = after
        elif entry.action == "answer":
            self.answered = after
        for key, value in after.items():
            if key in before:
                old = self.fields[key][0] if key in self.fields else before[key]
                self.fields[key] = (old, value)


def _changes(entries: Iterable[Any]) -> dict[str, _Change]:
    out: dict[str, _Change] = {}
    for entry in entries:
        if entry.action == "vote":
            continue
        change = out.get(entry.object_ref)
        if change is None:
            change = out[entry.object_ref] = _Change(
                entry.object_ref, entry.object_kind, entry.object_id
            )
        change.add(entry)
    return out


def _titles(session: UnitOfWork, changes: dict[str, _Change]) -> dict[tuple[str, int], str]:
    """Current titles, one query per kind (an edited title shows as it is now)."""
    out: dict[tuple[str, int], str] = {}
    by_kind: dict[str, list[int]] = {}
    for change in changes.values():
        by_kind.setdefault(change.kind, []).append(change.object_id)
    for kind, ids in by_kind.items():
        if kind not in _TITLES:
            continue
        for start in range(0, len(ids), 500):
            rows = session.execute(_TITLES[kind], {"ids": ids[start : start + 500]})
            out.update({(kind, i): t for i, t in rows})
    return out


def _moved(change: _Change) -> tuple[str, str] | None:
    lane = change.fields.get("lane")
    return (lane[0], lane[1]) if lane and lane[0] != lane[1] else None


def _rescored(change: _Change) -> tuple[Any, Any] | None:
    if "score" not in change.actions:
        return None
    rice = change.fields.get("rice")
    return rice if rice else (None, change.last_after.get("rice"))


def build(
    deps: Deps,
    session: UnitOfWork,
    *,
    workspace: str,
    channel: str,
    since: datetime,
    now: datetime,
    tz: str,
) -> Reply:
    """The digest of one channel for (since, now]. Read-only."""
    params = {"ws": workspace, "ch": channel, "since": since, "now": now}
    # Plain rows, not ORM objects: a digest only reads, and this is its largest query.
    entries = session.execute(_AUDIT, params).all()
    changes = _changes(entries)
    titles = _titles(session, changes)

    def title(change: _Change) -> str:
        fallback = (change.created or change.last_after or {}).get(TITLE.get(change.kind, ""), "")
        return str(titles.get((change.kind, change.object_id), fallback))

    sections: dict[str, list[Line]] = {
        "Decisions recorded": [],
        "Decisions changed": [],
        "Items added": [],
        "Items moved": [],
        "Items re-scored": [],
        "Polls opened": [],
        "Polls closed": [],
        "Questions opened": [],
        "Questions answered": [],
    }
    data: dict[str, list[dict[str, Any]]] = {k: [] for k in sections}
    signed_off: list[Line] = []
    signed_off_data: list[dict[str, Any]] = []

    def put(section: str, change: _Change, meta: str, **extra: Any) -> None:
        sections[section].append(Line(change.ref, title(change), meta))
        data[section].append({"id": change.ref, "title": title(change), **extra})

    for change in changes.values():
        if change.kind == "decision" and "signoff" in change.actions:
            after = change.last_after
            if after.get("status") == "accepted" and after.get("how"):
                how = str(after["how"])
                trail = standing_text(after.get("stances") or [])
                signed_off.append(Line(change.ref, title(change), f"{how} · {trail}"))
                signed_off_data.append(
                    {"id": change.ref, "title": title(change), "how": how, "trail": trail}
                )
        if change.kind == "decision":
            status = change.fields.get("status")
            if change.created is not None:
                put("Decisions recorded", change, change.last_after.get("status", ""))
            elif "signoff" in change.actions and change.last_after.get("status") == "accepted":
                pass  # listed under "Accepted with sign-off", with its trail
            elif status and status[0] != status[1]:
                put(
                    "Decisions changed",
                    change,
                    f"{status[0]} → {status[1]}",
                    before=status[0],
                    after=status[1],
                )
            elif any(a in ("edit", "status") for a in change.actions):
                edited = ", ".join(k for k, (a, b) in change.fields.items() if a != b)
                put("Decisions changed", change, f"edited {edited}".strip())
        elif change.kind == "item":
            if change.created is not None:
                put("Items added", change, str(change.last_after.get("lane", "")))
            moved = _moved(change)
            if moved and change.created is None:
                put(
                    "Items moved",
                    change,
                    f"{moved[0]} → {moved[1]}",
                    before=moved[0],
                    after=moved[1],
                )
            rescored = _rescored(change)
            if rescored and change.created is None:
                old, new = rescored
                put(
                    "Items re-scored",
                    change,
                    f"RICE {format_number(old)} → {format_number(new)}",
                    before=old,
                    after=new,
                )
        elif change.kind == "poll":
            if change.created is not None:
                put("Polls opened", change, "")
            if change.closed is not None:
                winner = change.closed.get("winner")
                put(
                    "Polls closed",
                    change,
                    f"winner: {winner}" if winner else "no winner (tie or no votes)",
                    winner=winner,
                )
        elif change.kind == "question":
            if change.created is not None:
                put("Questions opened", change, mention(change.created.get("owner")))
            if change.answered is not None:
                put("Questions answered", change, str(change.answered.get("answer") or "")[:80])

    overdue = session.execute(_OVERDUE, params).all()
    now_lane = _now_lane(session, params)
    closing = session.execute(_CLOSING, params | {"week": now + COMING_WEEK}).all()
    waiting = _waiting_for_signoff(session, params)
    reviews = session.execute(_REVIEWS, params | {"week": now + COMING_WEEK}).all()

    changed = sum(len(lines) for lines in sections.values()) + len(signed_off)
    period = f"{day(since, tz)} – {day(now, tz)}"
    blocks: list[Any] = [Heading(f"Roadmap digest · {period}")]
    if changed == 0:
        blocks.append(Section(f"A quiet week: nothing changed here since {when(since, tz)}."))
    for name, lines in sections.items():
        if lines:
            blocks.append(ListBlock(tuple(lines), title=name))
        if name == "Decisions changed" and signed_off:
            blocks.append(ListBlock(tuple(signed_off), title="Accepted with sign-off"))
    if waiting:
        blocks.append(
            ListBlock(
                tuple(
                    Line(
                        w["id"],
                        w["title"],
                        f"{w['answered']} of {w['approvers']} answered"
                        + (f" · due {when(w['due'], tz)}" if w["due"] else ""),
                    )
                    for w in waiting
                ),
                title="Waiting for sign-off",
            )
        )
    if reviews:
        blocks.append(
            ListBlock(
                tuple(
                    Line(
                        f"D-{r.number}",
                        r.title,
                        ("review overdue since " if r.review_at <= now else "review ")
                        + when(r.review_at, tz)
                        + (f" · {mention(r.owner)}" if r.owner else ""),
                    )
                    for r in reviews
                ),
                title="Due for review",
            )
        )
    if overdue:
        blocks.append(
            ListBlock(
                tuple(
                    Line(
                        f"Q-{q.number}",
                        q.text,
                        f"{mention(q.owner)} · due {when(q.due_at, tz)}",
                    )
                    for q in overdue
                ),
                title="Questions overdue",
            )
        )
    blocks.append(Divider())
    blocks.append(
        ListBlock(
            tuple(
                Line(f"I-{i.number}", i.title, f"RICE {format_number(i.rice)}") for i in now_lane
            ),
            title="Now",
            empty="Nothing in Now.",
        )
    )
    if closing:
        blocks.append(
            ListBlock(
                tuple(
                    Line(f"P-{p.number}", p.question, f"closes {when(p.closes_at, tz)}")
                    for p in closing
                ),
                title="Polls closing this week",
            )
        )
    blocks.append(Context("`roadmap` for every lane · `questions overdue` · `digest status`"))
    text = (
        f"Digest {period}: "
        + (f"{changed} change(s)" if changed else "a quiet week")
        + f", {len(now_lane)} in Now"
    )
    return Reply(
        ok=True,
        kind="digest",
        text=text,
        blocks=blocks,
        data={
            "since": since.isoformat(),
            "until": now.isoformat(),
            "quiet": changed == 0,
            "changes": {k.lower().replace(" ", "_"): v for k, v in data.items() if v}
            | ({"accepted_with_signoff": signed_off_data} if signed_off_data else {}),
            "waiting_for_signoff": [
                {k: v.isoformat() if k == "due" and v else v for k, v in w.items()} for w in waiting
            ],
            "due_for_review": [
                {"id": f"D-{r.number}", "title": r.title, "review": r.review_at.isoformat()}
                for r in reviews
                if r.review_at is not None
            ],
            "overdue": [{"id": f"Q-{q.number}", "text": q.text, "owner": q.owner} for q in overdue],
            "now": [{"id": f"I-{i.number}", "title": i.title, "rice": i.rice} for i in now_lane],
            "closing": [
                {"id": f"P-{p.number}", "question": p.question, "closes": p.closes_at.isoformat()}
                for p in closing
                if p.closes_at is not None
            ],
        },
    )


def _compose(
    deps: Deps, session: UnitOfWork, *, workspace: str, channel: str, platform: str, now: datetime
) -> Reply:
    """Build the digest, move the channel's window on, and tell webhooks."""
    settings = session.get(Channel, (workspace, channel))
    if settings is None:
        settings = Channel(workspace=workspace, channel=channel, platform=platform)
        session.add(settings)
    since = settings.last_digest_at or now - DEFAULT_WINDOW
    tz = settings.tz or "UTC"
    reply = build(deps, session, workspace=workspace, channel=channel, since=since, now=now, tz=tz)
    settings.last_digest_at = now
    deps.emit(
        session,
        Event("digest", workspace, channel, platform, {"text": reply.text, **reply.data}),
    )
    return reply


def post(
    deps: Deps,
    session: UnitOfWork,
    *,
    workspace: str,
    channel: str,
    platform: str,
    now: datetime,
    key: str,
) -> bool:
    """Queue the digest for the channel in the caller's transaction (the scheduler's path)."""
    reply = _compose(
        deps, session, workspace=workspace, channel=channel, platform=platform, now=now
    )
    return outbox.enqueue(
        session,
        workspace=workspace,
        channel=channel,
        platform=platform,
        kind="digest",
        reply=reply,
        key=key,
        now=now,
    )


# ---------------------------------------------------------------- the `digest` verb


def cmd_digest(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = [w.lower() for w in cmd.words()]
    if not words or words == ["now"]:
        if cmd.option("tz"):
            raise UsageError("tz: goes with `digest weekly …`.", verb="digest")
        with deps.db.uow() as session:
            return _compose(
                deps,
                session,
                workspace=actor.workspace,
                channel=actor.channel,
                platform=actor.platform,
                now=deps.clock.now(),
            )
    if words[0] == "weekly":
        return _weekly(deps, actor, words[1:], cmd.option("tz"))
    if words == ["off"]:
        return _off(deps, actor)
    if words == ["status"]:
        return _status(deps, actor)
    raise UsageError(
        "Use digest, digest weekly <day> <HH:MM> [tz:Area/City], digest off or digest status.",
        verb="digest",
    )


def _schedule(session: UnitOfWork, actor: Actor) -> Schedule | None:
    return session.execute(
        select(Schedule).where(
            Schedule.workspace == actor.workspace,
            Schedule.channel == actor.channel,
            Schedule.kind == schedules.DIGEST,
        )
    ).scalar_one_or_none()


def _next_text(schedule: Schedule, now: datetime) -> tuple[str, datetime]:
    upcoming = schedules.next_run(schedule, now)
    local = upcoming.astimezone(zone(schedule.tz))
    text = (
        f"{local.strftime('%a %Y-%m-%d %H:%M')} {schedule.tz} "
        f"({upcoming.strftime('%Y-%m-%d %H:%M')} UTC)"
    )
    return text, upcoming


def _weekly(deps: Deps, actor: Actor, words: list[str], tz_text: str | None) -> Reply:
    if len(words) != 2:
        raise UsageError("Give a day and a time, like `digest weekly mon 09:00`.", verb="digest")
    day_index = weekday(words[0])
    clock = parse_clock(words[1])
    if day_index is None:
        raise UsageError(f"`{words[0][:20]}` is not a day; use mon … sun.", verb="digest")
    if clock is None:
        raise UsageError(f"`{words[1][:20]}` is not a time; use HH:MM.", verb="digest")
    if tz_text is not None:
        zone(tz_text)  # an unknown zone is a usage error before anything is stored
    with deps.db.uow() as session:
        now = deps.clock.now()
        settings = channel_settings(session, actor)
        if tz_text:
            settings.tz = tz_text
        tz = tz_text or settings.tz or channel_tz(session, actor)
        schedule = _schedule(session, actor)
        if schedule is None:
            schedule = Schedule(
                workspace=actor.workspace,
                channel=actor.channel,
                kind=schedules.DIGEST,
                created_by=actor.user,
            )
            session.add(schedule)
        schedule.platform = actor.platform
        schedule.weekday = day_index
        schedule.at_time = clock.strftime("%H:%M")
        schedule.tz = tz
        schedule.enabled = True
        schedule.updated_at = now
        session.flush()
        next_text, upcoming = _next_text(schedule, now)
        described = schedules.describe(schedule, now)
    text = f"Weekly digest every {DAYS[day_index]} at {schedule.at_time} {tz}. Next: {next_text}."
    return Reply(
        ok=True,
        kind="schedule",
        text=text,
        blocks=[Section(text)],
        data={"schedule": described, "next_run": upcoming.isoformat()},
    )


def _off(deps: Deps, actor: Actor) -> Reply:
    with deps.db.uow() as session:
        schedule = _schedule(session, actor)
        if schedule is None or not schedule.enabled:
            text = "There is no weekly digest here to stop."
        else:
            schedule.enabled = False
            schedule.updated_at = deps.clock.now()
            text = "Stopped the weekly digest for this channel."
    return Reply(
        ok=True, kind="schedule", text=text, blocks=[Section(text)], data={"enabled": False}
    )


def _status(deps: Deps, actor: Actor) -> Reply:
    with deps.db.uow() as session:
        now = deps.clock.now()
        schedule = _schedule(session, actor)
        settings = session.get(Channel, (actor.workspace, actor.channel))
        tz = channel_tz(session, actor)
        failures, pending = outbox.channel_failures(session, actor.workspace, actor.channel)
        fields: list[tuple[str, str]] = []
        described = schedules.describe(schedule, now) if schedule else None
        if schedule is None:
            fields.append(("Schedule", "none — `digest weekly mon 09:00 tz:Europe/Berlin`"))
        elif not schedule.enabled:
            fields.append(
                ("Schedule", f"off (was {DAYS[schedule.weekday]} {schedule.at_time} {schedule.tz})")
            )
        else:
            fields.append(
                ("Schedule", f"every {DAYS[schedule.weekday]} {schedule.at_time} {schedule.tz}")
            )
            fields.append(("Next run", _next_text(schedule, now)[0]))
        last = settings.last_digest_at if settings else None
        fields.append(("Last digest", when(last, tz) if last else "never"))
        fields.append(("Waiting", f"{pending} message(s) to deliver"))
    blocks: list[Any] = [Heading("Digest status"), Section("", tuple(fields))]
    if failures:
        blocks.append(
            ListBlock(
                tuple(
                    Line(f.kind, f.error[:160], f"{when(f.created_at, tz)} · {f.attempts} tries")
                    for f in failures
                ),
                title="Failed deliveries",
            )
        )
    return Reply(
        ok=True,
        kind="digest_status",
        text="Digest status",
        blocks=blocks,
        data={
            "schedule": described,
            "last_digest": last.isoformat() if last else None,
            "pending": pending,
            "failures": [
                {
                    "kind": f.kind,
                    "error": f.error,
                    "attempts": f.attempts,
                    "at": f.created_at.isoformat(),
                }
                for f in failures
            ],
        },
    )


__all__ = ["build", "cmd_digest", "post"]
