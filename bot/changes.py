"""History lines: an audit row as one sentence a person can read in `show`.

The audit table keeps raw before/after snapshots (the JSON of `show` carries them as they are);
this module only words them: `edited: title “A” → “B”; owner — → <@ben>`, times in the reader's
zone, people as mentions, scores as `RICE 80 → 56.25`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.scoring import INPUTS, format_number
from bot.timeparse import format_local
from bot.views import mention
from storage.models import AuditEntry

VERBS = {
    "create": "created",
    "edit": "edited",
    "status": "changed",
    "supersedes": "linked",
    "score": "scored",
    "move": "moved",
    "answer": "answered",
    "close": "closed",
    "vote": "voted",
    "link": "linked",
    "reopen": "reopened",
}
LABELS = {
    "superseded_by": "superseded by",
    "decision": "recorded as",
    "closes": "closes",
    "linked": "to",
}
PEOPLE = frozenset({"owner", "scorer", "answered_by"})
TIMES = frozenset({"due", "closes", "review"})
REFS = frozenset({"superseded_by", "supersedes", "decision", "linked"})
PAST = {"agree": "agreed", "abstain": "abstained", "object": "objected", "block": "blocked"}
MAX_TEXT = 60


def describe_change(entry: AuditEntry, tz: str = "UTC") -> str:
    """One history line: the action, then what changed (`title “A” → “B”`)."""
    verb = VERBS.get(entry.action, entry.action)
    if entry.action == "create":
        return verb
    if entry.action in _SIGNOFF:
        return _SIGNOFF[entry.action](entry.before or {}, entry.after or {}, tz)
    if entry.action == "score":
        detail = _score_detail(entry.before or {}, entry.after or {})
    else:
        detail = "; ".join(_changes(entry.before or {}, entry.after or {}, tz))
    return f"{verb}: {detail}" if detail else verb


def _changes(before: dict[str, Any], after: dict[str, Any], tz: str) -> list[str]:
    out = []
    for key, new in after.items():
        label = LABELS.get(key, key)
        if key in before and before[key] != new:
            out.append(f"{label} {value_text(key, before[key], tz)} → {value_text(key, new, tz)}")
        elif key not in before:
            out.append(f"{label} {value_text(key, new, tz)}")
    return out


def _score_detail(before: dict[str, Any], after: dict[str, Any]) -> str:
    """`reach 300, impact 0.25, confidence 20%; RICE 80 → 56.25`."""
    inputs = after.get("inputs") or {}
    given = ", ".join(
        f"{name} {format_number(inputs[name])}{'%' if name == 'confidence' else ''}"
        for name in INPUTS
        if inputs.get(name) is not None
    )
    old, new = before.get("rice"), after.get("rice")
    rice = f"RICE {format_number(old)} → {format_number(new)}" if old != new else ""
    return "; ".join(part for part in (given, rice) if part)


def _stance(before: dict[str, Any], after: dict[str, Any], tz: str) -> str:
    """`agreed: “the numbers hold”`, `changed stance: blocked → agreed`, `(advice)` for people
    who are not approvers."""
    now = PAST.get(str(after.get("stance")), str(after.get("stance")))
    text = f"changed stance: {PAST.get(str(before['stance']))} → {now}" if before else now
    if after.get("reason"):
        text += f": {value_text('reason', after['reason'])}"
    return text + ("" if after.get("approver") else " (advice)")


def standing_text(stances: list[list[str]]) -> str:
    """Approvers as a sign-off left them (`[[user, stance]…]`): `@ana agreed, @cho
    abstained, @dee no answer`."""
    return ", ".join(f"{mention(user)} {PAST.get(stance, 'no answer')}" for user, stance in stances)


def _signoff(before: dict[str, Any], after: dict[str, Any], tz: str) -> str:
    """`accepted by sign-off (all): @ana agreed, …` or, by hand, `overridden: accepted; stances
    standing: @ana agreed, @cho objected`."""
    standing = standing_text(after.get("stances") or [])
    if after.get("how") == "override":
        return f"overridden: {after.get('status')}; stances standing: {standing or 'none'}"
    return f"{after.get('status')} by sign-off ({after.get('how')}): {standing or 'no approvers'}"


def _reopen(before: dict[str, Any], after: dict[str, Any], tz: str) -> str:
    cleared = standing_text(before.get("stances") or [])
    return f"reopened as proposed (was {before.get('status')})" + (
        f"; stances cleared: {cleared}" if cleared else ""
    )


def _review(before: dict[str, Any], after: dict[str, Any], tz: str) -> str:
    if after.get("revisit"):
        return "reviewed: revisit"
    nxt = after.get("review")
    return f"reviewed: kept as {after.get('kept')}" + (
        f"; next review {value_text('review', nxt, tz)}" if nxt else ""
    )


_SIGNOFF = {"stance": _stance, "signoff": _signoff, "reopen": _reopen, "review": _review}


def value_text(key: str, value: Any, tz: str = "UTC") -> str:
    """A snapshot value as people read it: — for nothing, @people, local times, quoted text."""
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return (" > " if key == "ranking" else ", ").join(str(v) for v in value)
    if isinstance(value, int | float):
        return format_number(float(value))
    if key in PEOPLE:
        return mention(str(value))
    if key in TIMES:
        return _time_text(str(value), tz)
    if key in REFS or key in ("status", "lane", "mode", "method"):
        return str(value)
    text = str(value)
    return f"“{text[:MAX_TEXT]}{'…' if len(text) > MAX_TEXT else ''}”"


def _time_text(iso: str, tz: str) -> str:
    try:
        return format_local(datetime.fromisoformat(iso), tz)
    except ValueError:
        return iso
