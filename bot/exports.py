"""`export`: the channel's records as a file — Markdown (MADR for decisions), CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bot import decisions, grammar, items, polls, questions
from bot.changes import PAST
from bot.common import channel_tz, day
from bot.context import Actor, Deps
from bot.errors import UsageError
from bot.parser import Command
from bot.signoff import roles as signoff_roles
from bot.views import Context, OutFile, Reply, Section, counted
from storage.db import UnitOfWork
from storage.models import Decision, Item, Poll, Question

KINDS = ("decisions", "items", "questions", "polls")
_SINGULAR = {kind.plural: kind.noun for kind in grammar.KINDS}
FORMATS = ("md", "csv", "json")
MIME = {"md": "text/markdown", "csv": "text/csv", "json": "application/json"}


def cmd_export(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = [w.lower() for w in cmd.words()]
    if len(words) != 1 or words[0] not in KINDS:
        raise UsageError("Export decisions, items, questions or polls.", verb="export")
    kind = words[0]
    fmt = (cmd.option("format") or ("md" if kind == "decisions" else "csv")).lower()
    if fmt not in FORMATS:
        raise UsageError("format is md, csv or json.", verb="export")
    with deps.db.uow() as session:
        found: _Decisions | None = None
        if kind == "decisions":  # read once, for the rows (counted) and the file alike
            found = _Decisions.load(session, actor)
            rows = _decision_rows(found)
        else:
            rows = ROWS[kind](deps, session, actor)
        flat = _flat_polls(rows) if kind == "polls" else rows
        if fmt == "md":
            content = (
                madr(session, actor, found) if found is not None else _markdown_table(kind, flat)
            )
        elif fmt == "csv":
            content = _csv(flat)
        else:
            content = json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n"
    filename = f"{kind}-{actor.channel.strip('#')[:40]}.{fmt}".replace("/", "_")
    return Reply(
        ok=True,
        kind="file",
        text=f"Exported {counted(len(rows), _SINGULAR[kind], kind)} as {fmt}",
        blocks=[
            Section(f"Exported {counted(len(rows), _SINGULAR[kind], kind)} as `{filename}`."),
            Context("The file holds this channel's records only."),
        ],
        data={"count": len(rows), "format": fmt, "filename": filename},
        file=OutFile(filename, MIME[fmt], content),
    )


@dataclass(frozen=True)
class _Decisions:
    """A channel's decisions with their links and sign-off roles, each read once for the whole
    export (an export of the md kind used to read them twice, and a few queries per decision)."""

    records: list[Decision]
    links: dict[int, dict[str, Any]]
    roles: dict[int, dict[str, Any]]

    @classmethod
    def load(cls, session: UnitOfWork, actor: Actor) -> _Decisions:
        records = list(
            session.execute(
                select(Decision)
                .where(Decision.workspace == actor.workspace, Decision.channel == actor.channel)
                .order_by(Decision.number)
            ).scalars()
        )
        ruled = [d.id for d in records if d.rule]
        roles = signoff_roles.load_many(session, ruled)
        return cls(
            records,
            decisions.links_many(session, records),
            {i: roles[i].as_json() if i in roles else {} for i in ruled},
        )


def _decisions(deps: Deps, session: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    return _decision_rows(_Decisions.load(session, actor))


def _decision_rows(found: _Decisions) -> list[dict[str, Any]]:
    out = []
    for d in found.records:
        linked = found.links[d.id]
        roles = found.roles.get(d.id, {})
        out.append(
            {
                "id": f"D-{d.number}",
                "title": d.title,
                "status": d.status,
                "rationale": d.rationale or "",
                "owner": d.owner or "",
                "tags": ",".join(t.tag for t in d.tags),
                "created_by": d.created_by,
                "created_at": d.created_at.isoformat(),
                "superseded_by": linked.get("superseded_by", ""),
                "supersedes": ",".join(linked.get("supersedes", [])),
                "question": linked.get("question", ""),
                "poll": linked.get("poll", ""),
                "linked": ",".join(linked.get("linked", [])),
                "rule": d.rule or "",
                "due": d.due_at.isoformat() if d.due_at else "",
                "review": d.review_at.isoformat() if d.review_at else "",
                "approvers": ",".join(roles.get("approvers", [])),
                "consulted": ",".join(roles.get("consulted", [])),
                "informed": ",".join(roles.get("informed", [])),
            }
        )
    return out


def _items(deps: Deps, session: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Item)
        .where(Item.workspace == actor.workspace, Item.channel == actor.channel)
        .order_by(Item.number)
    ).scalars()
    out = []
    for item in rows:
        score = items.score_of(item)
        out.append(
            {
                "id": f"I-{item.number}",
                "title": item.title,
                "lane": item.lane,
                "rice": round(score.rice, 2) if score.rice is not None else "",
                **{k: v if v is not None else "" for k, v in score.medians.items()},
                "scorers": score.scorers,
                "vote_rank": item.vote_rank or "",
                "tags": ",".join(t.tag for t in item.tags),
                "created_at": item.created_at.isoformat(),
            }
        )
    return out


def _questions(deps: Deps, session: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Question)
        .where(Question.workspace == actor.workspace, Question.channel == actor.channel)
        .order_by(Question.number)
    ).scalars()
    return [
        {k: ("" if v is None else v) for k, v in questions.snapshot(q).items()}
        | {"id": f"Q-{q.number}", "created_at": q.created_at.isoformat()}
        for q in rows
    ]


def _polls(deps: Deps, session: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    """One record per poll, as much of it as `results` would show now: no tally of a hidden
    poll before it closes; who chose what only for public polls; reasons attributed except in
    anonymous polls (unattributed, in the shuffled order `results` uses)."""
    rows = session.execute(
        select(Poll)
        .where(Poll.workspace == actor.workspace, Poll.channel == actor.channel)
        .order_by(Poll.number)
    ).scalars()
    out = []
    for poll in rows:
        res = polls.visible(deps, session, poll)
        said = {} if res.get("hidden") else polls.said(deps, session, poll)[1]
        out.append(
            {
                "id": f"P-{poll.number}",
                "question": poll.question,
                "mode": res["mode"],
                "anonymous": poll.anonymous,
                "public": poll.public,
                "results": "hidden" if poll.results_hidden else "live",
                "options": " | ".join(o.text for o in poll.options),
                "winner": res["winner"] or "",
                "ranking": " > ".join(res["ranking"]),
                "voted": res["participation"]["voted"],
                "closed_at": poll.closed_at.isoformat() if poll.closed_at else "",
                "ballots": said.get("by_voter", []),
                "reasons": [] if poll.public else said.get("reasons", []),
            }
        )
    return out


def _flat_polls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Polls as table rows: each poll's own row (`row: poll`), then a row per voter of a public
    poll (`ballot`: voter, choice, reason) or per reason given in another (`reason`: the voter,
    none in an anonymous poll)."""
    out: list[dict[str, Any]] = []
    for record in records:
        head = {k: v for k, v in record.items() if k not in ("ballots", "reasons")}
        out.append({"row": "poll", **head, "voter": "", "choice": "", "reason": ""})
        blank = dict.fromkeys(head, "") | {"id": record["id"]}
        for ballot in record["ballots"]:
            out.append(
                {"row": "ballot", **blank}
                | {k: ballot.get(k, "") for k in ("voter", "choice", "reason")}
            )
        for given in record["reasons"]:
            out.append(
                {"row": "reason", **blank, "voter": given.get("voter", ""), "choice": ""}
                | {"reason": given["reason"]}
            )
    return out


ROWS = {"decisions": _decisions, "items": _items, "questions": _questions, "polls": _polls}


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _markdown_table(kind: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"# {kind.capitalize()}\n\nNone yet.\n"
    head = list(rows[0])
    lines = [f"# {kind.capitalize()}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[h]).replace("|", "\\|") for h in head) + " |")
    return "\n".join(lines) + "\n"


def _who(names: list[str]) -> str:
    return ", ".join(n if n.startswith("#") else "@" + n for n in names)


def madr(session: UnitOfWork, actor: Actor, found: _Decisions | None = None) -> str:
    """Decisions in the MADR layout (status, date, decision-makers, consulted, informed,
    context, decision, links), one record after another, so ADR tooling and people read the
    same file. A proposal's decision-makers are its approvers, and its outcome carries the
    sign-off: how it was settled and every approver's stance."""
    tz = channel_tz(session, actor)
    found = found or _Decisions.load(session, actor)
    parts: list[str] = []
    for d in found.records:
        linked = found.links[d.id]
        roles = found.roles.get(d.id, {})
        deciders = roles.get("approvers") or sorted({u for u in (d.owner, d.created_by) if u})
        lines = [
            f"# D-{d.number}: {d.title}",
            "",
            f"* Status: {d.status}",
            f"* Date: {day(d.created_at, tz)}",
            f"* Decision-makers: {_who(deciders)}",
        ]
        if roles.get("consulted"):
            lines.append(f"* Consulted: {_who(roles['consulted'])}")
        if roles.get("informed"):
            lines.append(f"* Informed: {_who(roles['informed'])}")
        if d.tags:
            lines.append(f"* Tags: {', '.join(t.tag for t in d.tags)}")
        lines += [
            "",
            "## Context and Problem Statement",
            "",
            d.rationale or "No context recorded.",
            "",
            "## Decision Outcome",
            "",
            f"Chosen: {d.title}",
            "",
        ]
        lines += _signoff_lines(d.signoff)
        link_lines = []
        if "superseded_by" in linked:
            link_lines.append(
                f"* Superseded by [{linked['superseded_by']}](#{linked['superseded_by'].lower()})"
            )
        for older in linked.get("supersedes", []):
            link_lines.append(f"* Supersedes [{older}](#{older.lower()})")
        if "question" in linked:
            link_lines.append(f"* Answers {linked['question']}")
        if "poll" in linked:
            link_lines.append(f"* Decided by poll {linked['poll']}")
        for other in linked.get("linked", []):
            link_lines.append(f"* Relates to {other}")
        if link_lines:
            lines += ["## Links", "", *link_lines, ""]
        parts.append("\n".join(lines))
    if not parts:
        return "# Decision log\n\nNo decisions recorded yet.\n"
    return "\n---\n\n".join(parts)


def _signoff_lines(signoff: dict[str, Any] | None) -> list[str]:
    """The sign-off as it was settled: how, and each stance with its reason."""
    if not signoff:
        return []
    how = signoff.get("how")
    manner = f"by @{signoff.get('by')} (override)" if how == "override" else f"by sign-off ({how})"
    lines = [f"{str(signoff.get('status', '')).capitalize()} {manner} on {signoff['at'][:10]}.", ""]
    for stance in signoff.get("stances", []):
        role = "" if stance.get("approver") else " (advice)"
        reason = f": {stance['reason']}" if stance.get("reason") else ""
        lines.append(
            f"* @{stance['user']} {PAST.get(stance['stance'], stance['stance'])}{role}{reason}"
        )
    return [*lines, ""]
