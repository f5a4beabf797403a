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
}
LABELS = {"superseded_by": "superseded by", "decision": "recorded as", "closes": "closes"}
PEOPLE = frozenset({"owner", "scorer", "answered_by"})
TIMES = frozenset({"due", "closes"})
REFS = frozenset({"superseded_by", "supersedes", "decision"})
MAX_TEXT = 60


def describe_change(entry: AuditEntry, tz: str = "UTC") -> str:
    """One history line: the action, then what changed (`title “A” → “B”`)."""
    verb = VERBS.get(entry.action, entry.action)
    if entry.action == "create":
        return verb
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
