"""What a request to `/slack/events` must be before Bolt sees it.

Bolt parses the body before it checks the signature, and a body it cannot parse (a bad
`payload=`, JSON that is not an object, `X-Slack-Request-Timestamp: abc`) became a 500 with a
traceback — for anyone on the internet. Here the order is Slack's own advice: the signature over
the raw bytes first (401, nothing parsed), then the body (400 if it is not what Slack sends), then
the fields every handler relies on — a signed command without a team, user or channel would
have been stored under `slack:None` (400, nothing stored).

This is the only signature check: Bolt's own is turned off (http.py `build_bolt`), since every
signed request reaches Bolt through here; Socket Mode requests are not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

MAX_AGE_SECONDS = 5 * 60
"""Slack's documented window: a signature older (or newer) than this is a replay."""


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away, as the HTTP status and a short body."""

    status: int
    reason: str


@dataclass(frozen=True)
class Checked:
    """A request that passed: its body as text and as Slack meant it."""

    text: str
    body: dict[str, Any]


def signature_ok(raw: bytes, headers: Mapping[str, str], secret: str, *, now: float) -> bool:
    """`X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">`, fresh.

    Computed over the raw bytes (not a decoded string), so a body that is not even UTF-8 is
    refused as unsigned, not as a decoding crash."""
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    given = headers.get("X-Slack-Signature", "")
    if not (stamp.isascii() and stamp.isdigit() and 0 < len(stamp) <= 12) or not given:
        return False
    if abs(now - int(stamp)) > MAX_AGE_SECONDS:
        return False
    base = b"v0:" + stamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def parse(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as Slack sends it: JSON (Events API), or a form — a slash command's fields, or
    interactivity's one `payload` field holding JSON. Raises ValueError for anything else.

    Bolt's own parser looks for the word "payload" anywhere in a form body, so a slash command
    whose text contains it ("/align decide payload format") parsed as empty; this one reads
    the field."""
    text = raw.decode("utf-8")
    if content_type == "application/json" or text.startswith("{"):
        body = json.loads(text)
    else:
        fields = dict(parse_qsl(text, keep_blank_values=True))
        body = json.loads(fields["payload"]) if "payload" in fields else fields
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


KINDS = ("command", "block_actions", "view_submission", "view_closed", "event_callback")
"""The requests Align handles, plus Bolt's own `url_verification` and `ssl_check` below."""

_TEXT = (str, type(None))
_OBJECT = (dict, type(None))
_ID_OR_OBJECT = (str, dict, type(None))
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    # Bolt reads these (`build_context`, its middleware) with no type checks of its own.
    "type": _TEXT, "team_id": _TEXT, "user_id": _TEXT, "channel_id": _TEXT,
    "enterprise_id": _TEXT, "event_id": _TEXT, "response_url": _TEXT, "trigger_id": _TEXT,
    "thread_ts": _TEXT, "bot_id": _TEXT, "user_team": _TEXT, "callback_id": _TEXT,
    "app_installed_team_id": _TEXT, "id": _TEXT, "action_id": _TEXT, "block_id": _TEXT,
    "team": _ID_OR_OBJECT, "user": _ID_OR_OBJECT, "channel": _ID_OR_OBJECT,
    "enterprise": _ID_OR_OBJECT,
    "event": _OBJECT, "view": _OBJECT, "message": _OBJECT, "previous_message": _OBJECT,
    "item": _OBJECT, "container": _OBJECT, "assistant_thread": _OBJECT,
    "function_data": _OBJECT,
    "authorizations": (list, type(None)), "response_urls": (list, type(None)),
    "actions": (list, type(None)), "is_enterprise_install": (bool, str, type(None)),
    "is_ext_shared_channel": (bool, str, type(None)),
}  # fmt: skip
_NESTED = ("team", "user", "channel", "enterprise", "event", "view", "message",
           "previous_message", "item", "container", "assistant_thread")  # fmt: skip


def _mistyped(obj: Mapping[str, Any], depth: int = 2) -> str | None:
    """The first field Bolt reads whose value has a type Slack never sends (None if none)."""
    for key, types in _FIELD_TYPES.items():
        if key in obj and not isinstance(obj[key], types):
            return key
    for key in ("authorizations", "response_urls", "actions"):
        if not all(isinstance(entry, dict) for entry in obj.get(key) or ()):
            return key
    if depth:
        for key in _NESTED:
            value = obj.get(key)
            inner = _mistyped(value, depth - 1) if isinstance(value, dict) else None
            if inner is not None:
                return f"{key}.{inner}"
        for entry in obj.get("authorizations") or ():
            inner = _mistyped(entry, 0)
            if inner is not None:
                return f"authorizations.{inner}"
    return None


def _id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _obj(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _workspace_ok(body: Mapping[str, Any], team: Any) -> bool:
    """A team id, or for an org-wide (Enterprise Grid) install the organisation's id."""
    if _id(team):
        return True
    enterprise = body.get("enterprise")
    org = enterprise.get("id") if isinstance(enterprise, dict) else enterprise
    return _id(org) or _id(body.get("enterprise_id"))


def kind_of(body: Mapping[str, Any]) -> str | None:
    if "command" in body:
        return "command"
    if body.get("ssl_check") is not None:
        return "ssl_check"
    kind = body.get("type")
    return kind if isinstance(kind, str) else None


def missing(body: Mapping[str, Any]) -> str | None:
    """What a signed request lacks, or has in a shape Slack never sends (None when fine).
    Kinds Align does not handle are refused here too: Bolt's generic code would read them
    without checks, and nothing of ours would answer them."""
    kind = kind_of(body)
    if kind == "url_verification":
        return None if isinstance(body.get("challenge"), str) else "challenge"
    if kind == "ssl_check":
        return None
    if kind not in KINDS:
        return "a known type"
    wrong = _mistyped(body)
    if wrong is not None:
        return wrong
    if kind == "command":
        if not _workspace_ok(body, body.get("team_id")):
            return "team_id"
        if not _id(body.get("user_id")):
            return "user_id"
        if not _id(body.get("channel_id")):
            return "channel_id"
        if not isinstance(body.get("command"), str):
            return "command"
        return None
    if kind == "event_callback":
        if not _workspace_ok(body, body.get("team_id")):
            return "team_id"
        event = _obj(body, "event")
        if not isinstance(event.get("type"), str):
            return "event"
        if event.get("type") == "app_home_opened" and not _id(event.get("user")):
            return "event.user"
        return None
    # interactivity: block_actions, view_submission, view_closed
    user = _obj(body, "user")
    if not _workspace_ok(body, _obj(body, "team").get("id") or user.get("team_id")):
        return "team"
    if not _id(user.get("id")):
        return "user"
    if kind == "block_actions":
        actions = body.get("actions")
        if not (actions and isinstance(actions[0].get("action_id"), str)):
            return "actions"
        # A button on a message acts in that message's channel; one in a view (App Home, a
        # modal) has none, and the listeners treat that case themselves.
        in_message = _obj(body, "container").get("type") == "message"
        if in_message and not _id(_obj(body, "channel").get("id")):
            return "channel"
        return None
    if not isinstance(_obj(body, "view").get("callback_id"), str):
        return "view"
    return None


def check(
    raw: bytes, headers: Mapping[str, str], content_type: str, secret: str, *, now: float
) -> Checked | Refusal:
    """Signature, then body, then shape: a Refusal says which failed and with what status."""
    if not signature_ok(raw, headers, secret, now=now):
        return Refusal(401, "invalid or stale signature")
    try:
        body = parse(raw, content_type)
    except (ValueError, KeyError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return Refusal(400, "malformed body")
    lack = missing(body)
    if lack is not None:
        return Refusal(400, f"missing {lack}")
    return Checked(text=raw.decode("utf-8"), body=body)


__all__ = ["KINDS", "Checked", "Refusal", "check", "kind_of", "missing", "parse", "signature_ok"]
