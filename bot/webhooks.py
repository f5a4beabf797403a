"""Outgoing webhooks: a channel's events as signed JSON to another tool.

`webhook add <https-url> [events:decision,poll,digest]`, `webhook list`, `webhook remove <n>`.
Each event becomes an outbox row (platform "webhook") in the transaction of the change, so a
webhook call is never lost and never made for a change that rolled back. The body is signed when
sent: HMAC-SHA256 over `"<timestamp>.<body>"` with ALIGN_SECRET, as `v1=<hex>` — `verify` below is
what a receiver runs.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from bot import outbox
from bot.context import Actor, Deps, Event
from bot.errors import NotFound, UsageError
from bot.parser import Command
from bot.views import Context, Heading, Line, ListBlock, Reply, Section
from storage.db import UnitOfWork
from storage.models import Webhook

CATEGORIES = ("decision", "poll", "digest")
MAX_PER_CHANNEL = 10
LOOPBACK_HOSTS = ("localhost",)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body`."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """For receivers: does `X-Align-Signature` match this timestamp and body?"""
    scheme, _, given = header.partition("=")
    return scheme == "v1" and hmac.compare_digest(given, sign(secret, timestamp, body))


def category(event_name: str) -> str | None:
    """decision.recorded → decision; poll.closed → poll; digest → digest; others are not sent."""
    head = event_name.split(".", 1)[0]
    return head if head in CATEGORIES else None


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_internal(host: str) -> bool:
    """An IP literal on a private, link-local (cloud metadata) or reserved network. Names are not
    resolved here; loopback stays allowed for local tools and tests."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_loopback and (
        address.is_private or address.is_link_local or address.is_reserved
    )


def check_url(url: str) -> str:
    """https only; plain http only to this machine (tests and local tools)."""
    parts = urlsplit(url.strip().strip("<>"))
    host = parts.hostname or ""
    if not host:
        raise UsageError("Give a full URL like https://example.com/hook.", verb="webhook")
    if _is_internal(host):
        raise UsageError(
            "Webhooks cannot point at private or link-local addresses.", verb="webhook"
        )
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return parts.geturl()
    raise UsageError(
        "Webhooks need an https:// URL (plain http only for localhost).", verb="webhook"
    )


def _events(text: str | None) -> str:
    if not text:
        return ",".join(CATEGORIES)
    wanted = [w.strip().lower().rstrip("s") for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in CATEGORIES]
    if unknown or not wanted:
        raise UsageError(
            f"events: is a list of {', '.join(CATEGORIES)} (like events:decision,poll).",
            verb="webhook",
        )
    return ",".join(c for c in CATEGORIES if c in wanted)


def _active(session: UnitOfWork, workspace: str, channel: str) -> list[Webhook]:
    return list(
        session.execute(
            select(Webhook)
            .where(
                Webhook.workspace == workspace,
                Webhook.channel == channel,
                Webhook.removed_at.is_(None),
            )
            .order_by(Webhook.number)
        ).scalars()
    )


def _redact(url: str) -> str:
    """Show where a webhook goes without printing the secret path tokens many services use."""
    parts = urlsplit(url)
    path = parts.path if len(parts.path) <= 24 else parts.path[:20] + "…"
    return f"{parts.scheme}://{parts.netloc}{path}"


def cmd_webhook(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    action = words[0].lower() if words else ""
    if action == "add" and len(words) == 2:
        return _add(deps, actor, check_url(words[1]), _events(cmd.option("events")))
    if action == "list" and len(words) == 1:
        return _list(deps, actor)
    if action == "remove" and len(words) == 2:
        if not words[1].lstrip("#").isdigit():
            raise UsageError("Give the webhook's number from `webhook list`.", verb="webhook")
        return _remove(deps, actor, int(words[1].lstrip("#")))
    raise UsageError("Use webhook add <url>, webhook list or webhook remove <n>.", verb="webhook")


def _add(deps: Deps, actor: Actor, url: str, events: str) -> Reply:
    with deps.db.uow() as session:
        active = _active(session, actor.workspace, actor.channel)
        if len(active) >= MAX_PER_CHANNEL:
            raise UsageError(
                f"A channel has at most {MAX_PER_CHANNEL} webhooks; remove one first.",
                verb="webhook",
            )
        if any(w.url == url for w in active):
            raise UsageError("That URL is already a webhook here.", verb="webhook")
        # Numbers are per channel and never reused (removed rows keep theirs).
        last = session.execute(
            select(func.max(Webhook.number)).where(
                Webhook.workspace == actor.workspace, Webhook.channel == actor.channel
            )
        ).scalar_one()
        hook = Webhook(
            workspace=actor.workspace,
            channel=actor.channel,
            number=(last or 0) + 1,
            url=url,
            events=events,
            created_by=actor.user,
            created_at=deps.clock.now(),
        )
        session.add(hook)
        session.flush()
    text = f"Webhook {hook.number} sends {events.replace(',', ', ')} events to {_redact(url)}."
    return Reply(
        ok=True,
        kind="webhook",
        text=text,
        blocks=[
            Section(text),
            Context(
                "Bodies are JSON signed with HMAC-SHA256 over timestamp.body "
                "(headers X-Align-Signature: v1=…, X-Align-Timestamp)."
            ),
        ],
        data={"id": hook.number, "url": url, "events": events.split(",")},
    )


def _list(deps: Deps, actor: Actor) -> Reply:
    with deps.db.uow() as session:
        hooks = _active(session, actor.workspace, actor.channel)
    lines = tuple(Line(str(h.number), _redact(h.url), h.events.replace(",", ", ")) for h in hooks)
    return Reply(
        ok=True,
        kind="list",
        text=f"{len(hooks)} webhook(s)",
        blocks=[
            Heading("Webhooks"),
            ListBlock(lines, empty="No webhooks here. Add one with `webhook add <https-url>`."),
        ],
        data={
            "webhooks": [
                {"id": h.number, "url": _redact(h.url), "events": h.events.split(",")}
                for h in hooks
            ]
        },
    )


def _remove(deps: Deps, actor: Actor, number: int) -> Reply:
    with deps.db.uow() as session:
        hook = session.execute(
            select(Webhook).where(
                Webhook.workspace == actor.workspace,
                Webhook.channel == actor.channel,
                Webhook.number == number,
                Webhook.removed_at.is_(None),
            )
        ).scalar_one_or_none()
        if hook is None:
            raise NotFound(f"Webhook {number} not found in this channel.")
        hook.removed_at = deps.clock.now()
    return Reply(
        ok=True,
        kind="webhook",
        text=f"Removed webhook {number}.",
        blocks=[Section(f"Removed webhook {number}; it gets no more events.")],
        data={"id": number, "removed": True},
    )


def on_event(session: UnitOfWork, event: Event, now: datetime) -> None:
    """Listener: queue one signed call per webhook of the channel that wants this event."""
    wanted = category(event.name)
    if wanted is None:
        return
    for hook in _active(session, event.workspace, event.channel):
        if wanted not in hook.events.split(","):
            continue
        key = f"wh:{hook.id}:{uuid.uuid4().hex}"
        body: dict[str, Any] = {
            "event": event.name,
            "workspace": event.workspace,
            "channel": event.channel,
            "at": now.isoformat(),
            "delivery": key,
            "data": event.payload,
        }
        outbox.enqueue(
            session,
            workspace=event.workspace,
            channel=event.channel,
            platform="webhook",
            kind="webhook",
            reply=Reply(
                ok=True, kind="webhook", text=event.name, data={"url": hook.url, "body": body}
            ),
            key=key,
            now=now,
        )


__all__ = ["CATEGORIES", "category", "check_url", "cmd_webhook", "on_event", "sign", "verify"]
