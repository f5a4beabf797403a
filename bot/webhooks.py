"""Outgoing webhooks: a channel's events as signed JSON to another tool.

`webhook add <https-url> [events:decision,poll,digest]`, `webhook list`, `webhook rotate <n>`,
`webhook remove <n>`. Each event becomes an outbox row (platform "webhook") in the transaction of
the change, so a webhook call is never lost and never made for a change that rolled back. The body
is signed when sent: HMAC-SHA256 over `"<timestamp>.<body>"` as `v1=<hex>` — `verify` below is
what a receiver runs.

Keys: every webhook has its own signing secret, shown once, privately, to whoever adds (or
rotates) it, as GitHub and Stripe do. It is derived from ALIGN_SECRET and a random salt stored with
the webhook, so the database alone does not hold it, and a receiver holding it learns nothing
about ALIGN_SECRET (which also keys anonymous ballots). Webhooks added before this existed keep
being signed with ALIGN_SECRET itself, so their receivers keep working after an upgrade; `webhook
list` marks them and `webhook rotate <n>` gives one its own secret.

Where a webhook may point is bot/webhook_targets.py's to say.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
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
from bot.webhook_targets import (
    TargetPolicy,
    TargetRefused,
    Unresolved,
    parse_target,
    resolve_checked,
)
from storage.db import UnitOfWork
from storage.models import Webhook

CATEGORIES = ("decision", "poll", "digest")
MAX_PER_CHANNEL = 10
SECRET_PREFIX = "whsec_"


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


def signing_secret(server_secret: bytes, salt: str | None) -> bytes:
    """The key a webhook's bodies are signed with: its own secret (as shown to the person who
    added it, UTF-8), or for a webhook from before per-webhook secrets, ALIGN_SECRET itself."""
    if salt is None:
        return server_secret
    digest = hmac.new(server_secret, b"align.webhook.v1:" + salt.encode(), hashlib.sha256)
    return (SECRET_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")).encode()


def check_url(url: str, policy: TargetPolicy) -> tuple[str, str | None]:
    """The URL if a webhook may call it, and a warning when its name cannot be checked now.

    https only; no private, loopback, link-local or reserved address in any spelling, literal
    or resolved. A name that does not resolve yet is accepted (a receiver may be set up after
    the webhook), with a warning: it is checked again before every delivery."""
    try:
        target = parse_target(url, policy)
        resolve_checked(target, policy)
    except TargetRefused as exc:
        raise UsageError(str(exc), verb="webhook") from exc
    except Unresolved:
        return target.url, (
            f"`{target.host[:80]}` does not resolve yet; it is checked again before every "
            "delivery, and nothing is sent while it points nowhere public."
        )
    return target.url, None


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
        events = _events(cmd.option("events"))
        url, warning = check_url(words[1], deps.webhook_targets)
        return _add(deps, actor, url, events, warning)
    if action == "list" and len(words) == 1:
        return _list(deps, actor)
    if action in ("remove", "rotate") and len(words) == 2:
        if not words[1].lstrip("#").isdigit():
            raise UsageError("Give the webhook's number from `webhook list`.", verb="webhook")
        number = int(words[1].lstrip("#"))
        return _remove(deps, actor, number) if action == "remove" else _rotate(deps, actor, number)
    raise UsageError(
        "Use webhook add <url>, webhook list, webhook rotate <n> or webhook remove <n>.",
        verb="webhook",
    )


def _secret_reply(deps: Deps, hook: Webhook, text: str, data: dict[str, Any]) -> Reply:
    """The reply that shows a webhook's secret: to the asker only, and only this once."""
    secret = signing_secret(deps.secret, hook.key_salt).decode()
    return Reply(
        ok=True,
        kind="webhook",
        text=text,
        blocks=[
            Section(text),
            Section(f"Signing secret (shown only now — store it with the receiver): `{secret}`"),
            Context(
                "Bodies are JSON signed with HMAC-SHA256 over timestamp.body with that secret "
                "(headers X-Align-Signature: v1=…, X-Align-Timestamp)."
            ),
        ],
        data={**data, "secret": secret},
        ephemeral=True,
    )


def _add(deps: Deps, actor: Actor, url: str, events: str, warning: str | None) -> Reply:
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
            key_salt=secrets.token_hex(16),
        )
        session.add(hook)
        session.flush()
    text = f"Webhook {hook.number} sends {events.replace(',', ', ')} events to {_redact(url)}."
    data: dict[str, Any] = {"id": hook.number, "url": url, "events": events.split(",")}
    if warning:
        text += f" ⚠ {warning}"
        data["warning"] = warning
    return _secret_reply(deps, hook, text, data)


def _rotate(deps: Deps, actor: Actor, number: int) -> Reply:
    """A new secret for a webhook: the old one stops working for bodies signed from now on."""
    with deps.db.uow() as session:
        hook = _find(session, actor, number)
        hook.key_salt = secrets.token_hex(16)
    text = f"Webhook {number} has a new signing secret; the old one no longer verifies."
    return _secret_reply(deps, hook, text, {"id": number, "rotated": True})


def _list(deps: Deps, actor: Actor) -> Reply:
    with deps.db.uow() as session:
        hooks = _active(session, actor.workspace, actor.channel)
    lines = tuple(
        Line(str(h.number), _redact(h.url), h.events.replace(",", ", ") + _key_note(h))
        for h in hooks
    )
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
                {
                    "id": h.number,
                    "url": _redact(h.url),
                    "events": h.events.split(","),
                    "own_secret": h.key_salt is not None,
                }
                for h in hooks
            ]
        },
    )


def _key_note(hook: Webhook) -> str:
    if hook.key_salt is not None:
        return ""
    return f" · signed with the server key: `webhook rotate {hook.number}` gives it its own"


def _find(session: UnitOfWork, actor: Actor, number: int) -> Webhook:
    hook = session.execute(
        select(Webhook)
        .where(
            Webhook.workspace == actor.workspace,
            Webhook.channel == actor.channel,
            Webhook.number == number,
            Webhook.removed_at.is_(None),
        )
        .with_for_update()
    ).scalar_one_or_none()
    if hook is None:
        raise NotFound(f"Webhook {number} not found in this channel.")
    return hook


def _remove(deps: Deps, actor: Actor, number: int) -> Reply:
    with deps.db.uow() as session:
        hook = _find(session, actor, number)
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
            # The salt, not the secret: the sender derives the key when it signs (see above).
            reply=Reply(
                ok=True,
                kind="webhook",
                text=event.name,
                data={"url": hook.url, "body": body, "key_salt": hook.key_salt},
            ),
            key=key,
            now=now,
        )


__all__ = [
    "CATEGORIES",
    "category",
    "check_url",
    "cmd_webhook",
    "on_event",
    "sign",
    "signing_secret",
    "verify",
]
