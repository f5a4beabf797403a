"""Who, where and what an incoming Teams activity is, in the engine's terms.

- workspace: `teams:<tenant id>` (the Bot Framework Emulator has no tenant: `teams:<channel id>`);
- channel: the conversation id without its `;messageid=` suffix, so a channel and the reply
  threads inside it are one space (commands.md, "Visibility");
- user: the person's AAD object id (the Emulator has none: its user id);
- command text: the message with the bot's own `<at>…</at>` removed. Other people's mentions stay
  as `<at>Name</at>` for the parser, resolved through the activity's mention entities.

Nothing here talks to the network; `mentions_of` takes a lookup for the rare mention entity that
carries no AAD id (the bot's async side fills it from the roster).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botbuilder.schema import Activity

PLATFORM = "teams"
_AT = re.compile(r"^<at[^>]*>(.*?)</at>$", re.S | re.I)


def channel_of(conversation_id: str) -> str:
    """The space a conversation belongs to: `19:abc@thread.tacv2;messageid=1` → `19:abc@…`."""
    return conversation_id.split(";messageid=", 1)[0]


def _channel_data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    return data if isinstance(data, dict) else {}


def tenant_of(activity: Activity) -> str | None:
    tenant = (_channel_data(activity).get("tenant") or {}).get("id")
    if not tenant and activity.conversation is not None:
        tenant = activity.conversation.tenant_id
    return tenant or None


def workspace_of(activity: Activity) -> str:
    return f"{PLATFORM}:{tenant_of(activity) or activity.channel_id or 'unknown'}"


def is_shared(activity: Activity) -> bool:
    """Whether others read this conversation too: a team's channel or a group chat (Teams marks
    both `isGroup`), not a personal chat with the bot."""
    conversation = activity.conversation
    if conversation is None:
        return False
    return bool(conversation.is_group) or conversation.conversation_type in ("channel", "groupChat")


def user_of(activity: Activity) -> str:
    sender = activity.from_property
    if sender is None:
        return "unknown"
    return sender.aad_object_id or sender.id or "unknown"


def timezone_of(activity: Activity) -> str | None:
    """The sender's IANA time zone from the clientInfo entity Teams attaches, if any."""
    for entity in activity.entities or []:
        props = entity.additional_properties or {}
        if (entity.type or "").lower() == "clientinfo" and props.get("timezone"):
            return str(props["timezone"])
    return None


def _mention_entities(activity: Activity) -> list[dict[str, Any]]:
    found = []
    for entity in activity.entities or []:
        if (entity.type or "").lower() == "mention":
            props = dict(entity.additional_properties or {})
            if isinstance(props.get("mentioned"), dict):
                found.append(props)
    return found


def _bot_ids(activity: Activity) -> set[str]:
    recipient = activity.recipient
    if recipient is None:
        return set()
    return {i for i in (recipient.id, recipient.aad_object_id) if i}


def command_text(activity: Activity) -> str:
    """The message text with the bot's own mention removed — only the mention's exact text.

    botbuilder's `TurnContext.remove_recipient_mention` deletes every occurrence of the bot's
    *name* anywhere in the text (it substitutes the name, not the tag), which would cut "Align"
    out of `poll "Should Align support SSO?"`; so the tag itself is removed here.
    """
    text = activity.text or ""
    bots = _bot_ids(activity)
    for mention in _mention_entities(activity):
        if mention["mentioned"].get("id") in bots:
            tag = mention.get("text") or f"<at>{mention['mentioned'].get('name', '')}</at>"
            text = text.replace(tag, " ")
    return " ".join(text.replace("\xa0", " ").split())


def mentioned_people(activity: Activity) -> list[tuple[str, str, str]]:
    """(name as written between <at> tags, Teams id, AAD id or "") of everyone mentioned except
    the bot."""
    bots = _bot_ids(activity)
    people = []
    for mention in _mention_entities(activity):
        who = mention["mentioned"]
        if who.get("id") in bots:
            continue
        match = _AT.match(mention.get("text") or "")
        name = (match.group(1) if match else who.get("name") or "").strip()
        if name and who.get("id"):
            people.append((name, str(who["id"]), str(who.get("aadObjectId") or "")))
    return people


def mentions_of(
    activity: Activity, aad_of: Callable[[str], str | None]
) -> tuple[tuple[str, str], ...]:
    """`Actor.mentions`: (name, AAD object id) so the parser resolves `owner:<at>Ana</at>`.

    Teams' mention entities carry the `29:` id; `aad_of` maps it to the AAD object id (from the
    roster); without one the `29:` id is used, which is still a stable id for that person.
    """
    return tuple(
        (name, aad or aad_of(teams_id) or teams_id)
        for name, teams_id, aad in mentioned_people(activity)
    )
