"""Render the engine's `Reply` as an Adaptive Card (or, for errors and short confirmations, as
plain message text). One renderer over the block vocabulary of `bot.views`, not one per command.

- Heading → large bold TextBlock; Section → TextBlock + FactSet; Bars → one ColumnSet per row;
  ListBlock → FactSet (ref → text · meta); Context → small subtle TextBlock; Pre → monospace
  TextBlocks; Divider → a separator on the next element; Actions → Action.Submit buttons whose
  data is `{"align": "<command>"}` — the very command a user could type; a button that asks for
  text first (Object, Block, Add option) is an Action.ShowCard holding an Input.Text and an
  Action.Submit with `{"align_ask": "<command>", "align_input": "<input id>", "align_into":
  "<option>"}` (Teams merges the input's value into the data); Form → inputs on the card
  (Input.ChoiceSet per rank, Input.Number per option, Input.Text for the optional reason) and one
  Action.Submit with `{"align_form": "P-n", "mode": "ranked|dots"}`.
- People appear as `<@aad id>` in the engine's texts: shown by name when known, and as real Teams
  mentions (which notify) only in nudges and for the people a reply calls on (`Reply.notify`: a
  proposal's approvers when it is posted; in a plain text too, the sender of a request given up,
  told in a channel) — a card listing who has not voted or answered should not ping them every
  time it is refreshed.
- TextBlocks read Markdown: user text cannot make a link (`[text](url)` is shown as typed).
- Teams rejects messages over about 28 KB. Long lists (and pre-formatted text, bars, ranked
  forms) are cut to fit, ending with "… and N more".
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.views import (
    Actions,
    Bars,
    Block,
    Button,
    Context,
    Divider,
    Form,
    Heading,
    ListBlock,
    Pre,
    Reply,
    Section,
    bar,
)

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
MAX_CARD_BYTES = 24_000
"""Budget for the card JSON; Teams' whole-message limit is about 28 KB, the envelope takes the
rest."""
MAX_TEXT = 3_000
BUTTONS_PER_ROW = 5
_LIMITS: tuple[int | None, ...] = (None, 200, 120, 80, 50, 30, 20, 12, 8, 5, 3)
_MENTION = re.compile(r"<@([A-Za-z0-9._:\-]+)(?:\|[^>]*)?>")
_TEAMS_TAG = re.compile(r"</?at>", re.I)
_LINK = re.compile(r"\]\s*\(")
"""Markdown link syntax `[text](url)`: typed into a title it would show "text" and hide where
it leads. A zero-width space between `]` and `(` leaves the text as typed and makes no link in any
Teams client (a backslash escape would show in renderers that do not read it)."""


def mentioned_ids(reply: Reply) -> set[str]:
    """Every person the reply names, so their display names can be looked up first."""
    texts = [reply.text, reply.error or ""]
    for block in reply.blocks:
        texts.extend(_texts_of(block))
    return {m.group(1) for text in texts for m in _MENTION.finditer(text or "")}


def _texts_of(block: Block) -> Iterable[str]:
    if isinstance(block, Heading | Context | Pre):
        yield block.text
    elif isinstance(block, Section):
        yield block.text
        for key, value in block.fields:
            yield key
            yield value
    elif isinstance(block, ListBlock):
        yield block.title
        for line in block.lines:
            yield line.ref  # a person, in a proposal's list of approvers
            yield line.text
            yield line.meta
    elif isinstance(block, Bars):
        for row in block.rows:
            yield row.label
            yield row.note


@dataclass(frozen=True)
class Text:
    """A reply as a message text, and the mention entities of the `<at>` tags in it."""

    text: str
    mentions: tuple[dict[str, Any], ...] = ()


def as_text(
    reply: Reply, names: Mapping[str, str], teams_ids: Mapping[str, str] | None = None
) -> Text:
    """A short message text: the error (with the usage line) or the one-line gist. People are
    shown by name; those the reply calls on (`Reply.notify`: a given-up request's sender in a
    channel) are mentioned for real when their name is known — `<at>Name</at>`, and an entity
    that names them by their `29:` id (`teams_ids`), the id a text message's mention takes,
    else by the one Align knows them by."""
    if not reply.ok:
        body = reply.error or reply.text
        if reply.usage:
            body += "\n\n" + reply.usage
    else:
        body = reply.text
    teams_ids = teams_ids or {}
    mentions: dict[str, dict[str, Any]] = {}
    parts: list[str] = []
    shown = 0
    for match in _MENTION.finditer(body):
        parts.append(_plain(body[shown : match.start()]))
        user = match.group(1)
        name = names.get(user)
        if name is not None and user in reply.notify:
            tag = f"<at>{_plain(name)}</at>"
            mentioned = {"id": teams_ids.get(user, user), "name": name}
            mentions.setdefault(user, {"type": "mention", "text": tag, "mentioned": mentioned})
            parts.append(tag)
        else:
            parts.append(_plain(user if name is None else name))
        shown = match.end()
    parts.append(_plain(body[shown:]))
    # Sent as Markdown too; over the whole text, as a link could be made across a name.
    text = _LINK.sub("]\u200b(", "".join(parts))
    return Text(text, tuple(mentions.values()))


def _plain(text: str) -> str:
    """Text for a Teams message, none of it markup: a mention we could not resolve, echoed
    back, is plain text; usage lines hold <title>, not HTML tags to Teams."""
    text = _TEAMS_TAG.sub("", text)
    return html.escape(_LINK.sub("]\u200b(", text), quote=False)


@dataclass
class _Renderer:
    names: Mapping[str, str]
    ping: bool
    limit: int | None
    notify: frozenset[str] = frozenset()
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    body: list[dict[str, Any]] = field(default_factory=list)
    separator: bool = False
    inputs: int = 0

    # -- text ---------------------------------------------------------------------------------

    def text(self, raw: str) -> str:
        def person(match: re.Match[str]) -> str:
            user = match.group(1)
            name = self.names.get(user)
            if name is None:
                return user
            if not (self.ping or user in self.notify):
                return name
            tag = f"<at>{name}</at>"
            self.entities.setdefault(
                user, {"type": "mention", "text": tag, "mentioned": {"id": user, "name": name}}
            )
            return tag

        clipped = raw if len(raw) <= MAX_TEXT else raw[: MAX_TEXT - 1] + "…"
        return _MENTION.sub(person, _LINK.sub("]\u200b(", clipped))

    def add(self, element: dict[str, Any]) -> None:
        if self.separator:
            element = {**element, "separator": True, "spacing": "Medium"}
            self.separator = False
        self.body.append(element)

    def cut(self, items: list[Any]) -> tuple[list[Any], int]:
        if self.limit is None or len(items) <= self.limit:
            return items, 0
        return items[: self.limit], len(items) - self.limit

    def more(self, hidden: int, hint: str = "") -> None:
        if hidden:
            text = f"… and {hidden} more" + (f" — {hint}" if hint else "")
            self.add(_small(text))

    # -- blocks -------------------------------------------------------------------------------

    def block(self, block: Block) -> None:
        if isinstance(block, Heading):
            self.add(
                {
                    "type": "TextBlock",
                    "text": self.text(block.text),
                    "size": "Large",
                    "weight": "Bolder",
                    "wrap": True,
                }
            )
        elif isinstance(block, Section):
            if block.text:
                self.add({"type": "TextBlock", "text": self.text(block.text), "wrap": True})
            if block.fields:
                facts = [{"title": self.text(k), "value": self.text(v)} for k, v in block.fields]
                self.add({"type": "FactSet", "facts": facts})
        elif isinstance(block, Context):
            self.add(_small(self.text(block.text)))
        elif isinstance(block, Pre):
            lines, hidden = self.cut(block.text.splitlines() or [""])
            for index, line in enumerate(lines):
                self.add(
                    {
                        "type": "TextBlock",
                        "text": self.text(line) or " ",
                        "fontType": "Monospace",
                        "wrap": True,
                        "spacing": "Default" if index == 0 else "None",
                    }
                )
            self.more(hidden)
        elif isinstance(block, Divider):
            self.separator = True
        elif isinstance(block, Bars):
            self.bars(block)
        elif isinstance(block, ListBlock):
            self.list_block(block)
        elif isinstance(block, Actions):
            self.actions(block)
        elif isinstance(block, Form):
            self.form(block)

    def bars(self, block: Bars) -> None:
        rows, hidden = self.cut(list(block.rows))
        for row in rows:
            value = row.value + (f" {row.note}" if row.note else "")
            self.add(
                {
                    "type": "ColumnSet",
                    "spacing": "Small",
                    "columns": [
                        {
                            "type": "Column",
                            "width": "stretch",
                            "items": [
                                {"type": "TextBlock", "text": self.text(row.label), "wrap": True}
                            ],
                        },
                        {
                            "type": "Column",
                            "width": "auto",
                            "items": [
                                {
                                    "type": "TextBlock",
                                    "text": bar(row.fraction, 12),
                                    "fontType": "Monospace",
                                    "color": "Accent",
                                }
                            ],
                        },
                        {
                            "type": "Column",
                            "width": "auto",
                            "items": [
                                {"type": "TextBlock", "text": self.text(value), "weight": "Bolder"}
                            ],
                        },
                    ],
                }
            )
        self.more(hidden)

    def list_block(self, block: ListBlock) -> None:
        if block.title:
            self.add({"type": "TextBlock", "text": self.text(block.title), "weight": "Bolder"})
        if not block.lines:
            self.add(_small(self.text(block.empty)))
            return
        lines, hidden = self.cut(list(block.lines))
        facts = [
            {
                "title": self.text(line.ref),
                "value": self.text(line.text + (f" · {line.meta}" if line.meta else "")),
            }
            for line in lines
        ]
        self.add({"type": "FactSet", "facts": facts})
        self.more(hidden, block.more_hint)
        if block.more_hint and not hidden:
            self.add(_small(self.text(block.more_hint)))

    def actions(self, block: Actions) -> None:
        buttons = [
            self.ask(button)
            if button.ask
            else {
                "type": "Action.Submit",
                "title": button.label[:80],
                "data": {"align": button.command},
                **({"style": _STYLES[button.style]} if button.style in _STYLES else {}),
            }
            for button in block.buttons
        ]
        for start in range(0, len(buttons), BUTTONS_PER_ROW):
            self.add({"type": "ActionSet", "actions": buttons[start : start + BUTTONS_PER_ROW]})

    def ask(self, button: Button) -> dict[str, Any]:
        """A button that asks for text first: a ShowCard with a required text input and the
        submit that carries the command (each input gets its own id on the card); `into` names
        the option the text becomes (Add option), else it is the reason after `|`."""
        self.inputs += 1
        input_id = f"reason{self.inputs}"
        data: dict[str, Any] = {"align_ask": button.command, "align_input": input_id}
        if button.into:
            data["align_into"] = button.into
        submit = {
            "type": "Action.Submit",
            "title": button.label[:80],
            "data": data,
            **({"style": _STYLES[button.style]} if button.style in _STYLES else {}),
        }
        return {
            "type": "Action.ShowCard",
            "title": button.label[:80],
            "card": {
                "type": "AdaptiveCard",
                "body": [
                    {
                        "type": "Input.Text",
                        "id": input_id,
                        "label": self.text(button.ask or ""),
                        "isMultiline": button.into is None,
                        "maxLength": 1000,
                        "isRequired": True,
                        "errorMessage": "Write something first."
                        if button.into
                        else "A reason is required.",
                    }
                ],
                "actions": [submit],
            },
        }

    def form(self, block: Form) -> None:
        self.add({"type": "TextBlock", "text": self.text(block.title), "weight": "Bolder"})
        fields, hidden = self.cut(list(block.fields))
        for item in fields:
            if item.kind == "text":
                element: dict[str, Any] = {
                    "type": "Input.Text",
                    "id": item.name,
                    "label": self.text(item.label),
                    "isMultiline": True,
                }
                if item.maximum is not None:
                    element["maxLength"] = item.maximum
            elif item.kind == "choice":
                element = {
                    "type": "Input.ChoiceSet",
                    "id": item.name,
                    "label": self.text(item.label),
                    "style": "compact",
                    "placeholder": "—",
                    "choices": [{"title": t[:100], "value": v} for v, t in item.choices],
                }
            else:
                element = {
                    "type": "Input.Number",
                    "id": item.name,
                    "label": self.text(item.label),
                    "min": 0,
                    "placeholder": "0",
                }
                if item.maximum is not None:
                    element["max"] = item.maximum
            if item.required:
                element["isRequired"] = True
                element["errorMessage"] = f"{item.label} is required."
            self.add(element)
            if item.error:
                self.add(
                    {
                        "type": "TextBlock",
                        "text": self.text(item.error),
                        "color": "Attention",
                        "size": "Small",
                        "wrap": True,
                    }
                )
        if hidden:
            self.add(_small(f"… {hidden} more ranks: type `vote {block.poll} …` to rank them all."))
        if block.budget:
            self.add(_small(f"Spread up to {block.budget} points in total."))
        submit = {
            "type": "Action.Submit",
            "title": block.submit_label,
            "style": "positive",
            "data": {"align_form": block.poll, "mode": block.mode},
        }
        self.add({"type": "ActionSet", "actions": [submit]})


_STYLES = {"primary": "positive", "danger": "destructive"}


def _small(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "size": "Small", "isSubtle": True, "wrap": True}


def _file_blocks(reply: Reply) -> list[Block]:
    if reply.file is None:
        return []
    return [Context(f"{reply.file.filename} ({reply.file.mime})"), Pre(reply.file.content)]


def _build(reply: Reply, names: Mapping[str, str], ping: bool, limit: int | None) -> dict[str, Any]:
    renderer = _Renderer(names=names, ping=ping, limit=limit, notify=frozenset(reply.notify))
    blocks = list(reply.blocks) or [Section(reply.text)]
    for block in [*blocks, *_file_blocks(reply)]:
        renderer.block(block)
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": renderer.body,
        "msteams": {"width": "Full"},
    }
    if renderer.entities:
        card["msteams"]["entities"] = list(renderer.entities.values())
    return card


def size_of(card: Mapping[str, Any]) -> int:
    return len(json.dumps(card, ensure_ascii=False).encode())


def render(
    reply: Reply,
    *,
    names: Mapping[str, str] | None = None,
    ping: bool | None = None,
    max_bytes: int = MAX_CARD_BYTES,
) -> dict[str, Any]:
    """The reply as an Adaptive Card that fits in one Teams message."""
    names = names or {}
    ping = reply.kind == "nudge" if ping is None else ping
    card: dict[str, Any] = {}
    for limit in _LIMITS:
        card = _build(reply, names, ping, limit)
        if size_of(card) <= max_bytes:
            return card
    # Still too big (huge texts): keep the gist.
    return _build(Reply(ok=reply.ok, kind=reply.kind, text=reply.text), names, ping, None)
