"""Block Kit for the engine's Reply: one renderer over the neutral block vocabulary.

Slack rejects a whole message when one limit is broken (50 blocks, 3,000 characters of section
text, 10 fields, 25 elements an actions block, 75 characters of button text…), so every value is
clamped here and long lists end with "… and N more" plus the view's hint: a reply is never lost
to `invalid_blocks`. User text is escaped (`<!channel>` typed into a title must not ping anyone,
``` must not turn the rest of a message into a code block); mentions `<@U…>` and channel links
`<#C…>` pass through for Slack to render. Single `*`, `_` and backticks stay: they format the
words they wrap and break nothing around them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.views import (
    Actions,
    Bars,
    Block,
    Button,
    Context,
    Divider,
    Form,
    FormField,
    Heading,
    ListBlock,
    Pre,
    Reply,
    Section,
    bar,
)

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100  # modals and App Home
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_TEXT = 2000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTONS_PER_BLOCK = 5  # Slack allows 25; five keeps a row readable on desktop and mobile
FALLBACK_TEXT = 3000
LIST_LINES = 40  # lines of one list shown in a message; the rest are counted
LINES_PER_SECTION = 10
BAR_WIDTH = 12
OPTION_TEXT = 75
MODAL_TITLE = 24

CMD_ACTION_PREFIX = "align_cmd_"
ASK_ACTION_PREFIX = "align_ask_"
FORM_ACTION = "align_form"
BALLOT_CALLBACK = "align_ballot"
REASON_CALLBACK = "align_reason"
REASON_INPUT = "reason"
REASON_TEXT = 1000
FORM_INPUT = "value"

_KEEP = re.compile(r"(<[@#][A-Z0-9]+(?:\|[^<>]*)?>)")  # a mention; split keeps it (capture)
# Mentions with plain text between them that has no `<` (and, by the counts, no `>`).
_ONLY_MENTIONS = re.compile(r"[^<]*+(?:<[@#][A-Z0-9]++(?:\|[^<>]*+)?>[^<]*+)*+")


def escape(text: str) -> str:
    """Escape Slack's control characters in user text, keeping user and channel mentions.

    Called on every section of every list reply, so str methods (C loops) answer where they
    can instead of regex scans: a 20-line chunk with a mention a line took 31 µs, now 3.2 µs;
    without mentions 12 µs, now 0.2 µs; with `&` in one line 31 µs, now 6 µs; with `&` and
    `<b>` in every line 35 µs, now 12 µs. A text whose `<`s all open mentions, whose `>`s all
    close them (hence the counts) and that has no `&` and no ``` comes back as it is: the
    common chunk. Otherwise the plain parts between mentions are escaped one by one.
    tests/slack/test_blocks.py checks it against the straightforward version.
    """
    if "<" not in text:
        return _escape_plain(text)
    if (
        "&" not in text
        and ("`" not in text or "```" not in text)
        and text.count("<") == text.count(">")
        and _ONLY_MENTIONS.fullmatch(text)
    ):
        return text
    parts = _KEEP.split(text)  # plain, mention, plain, …, plain
    parts[::2] = [_escape_plain(part) for part in parts[::2]]
    return "".join(parts)


_FENCE = re.compile(r"`{3,}")


def _escape_plain(text: str) -> str:
    """&, < and > as entities; and a run of three or more backticks (a code fence, which would
    swallow the rest of the message into a code block) as as many apostrophes. Each `in`
    check is far cheaper than a replace or a regex scan that finds nothing."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "`" in text and "```" in text:
        return _FENCE.sub(lambda m: "'" * len(m.group(0)), text)
    return text


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(escape(text) or " ", limit)}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text or " ", limit), "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text, CONTEXT_TEXT)]}


def _chunk_lines(lines: list[str], *, per_block: int = LINES_PER_SECTION) -> list[str]:
    """Join lines into section texts that each stay under Slack's 3,000 characters."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, SECTION_TEXT // 2)
        if current and (len(current) >= per_block or size + len(line) + 1 > SECTION_TEXT - 100):
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


class _Renderer:
    """Renders one reply; numbers its command buttons so every action_id is unique."""

    def __init__(self) -> None:
        self.buttons = 0

    def block(self, block: Block) -> list[dict[str, Any]]:
        if isinstance(block, Heading):
            return [{"type": "header", "text": _plain(block.text, HEADER_TEXT)}]
        if isinstance(block, Section):
            return self.section(block)
        if isinstance(block, Bars):
            return self.bars(block)
        if isinstance(block, ListBlock):
            return self.list(block)
        if isinstance(block, Context):
            return [_context(block.text)]
        if isinstance(block, Pre):
            body = clip(escape(block.text), SECTION_TEXT - 20).replace("```", "'''")
            return [{"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}}]
        if isinstance(block, Divider):
            return [{"type": "divider"}]
        if isinstance(block, Actions):
            return self.actions(block.buttons)
        if isinstance(block, Form):
            return [form_button(block)]
        return []

    def section(self, block: Section) -> list[dict[str, Any]]:
        fields = [
            {"type": "mrkdwn", "text": clip(f"*{escape(name)}*\n{escape(value)}", FIELD_TEXT)}
            for name, value in block.fields
        ]
        out: list[dict[str, Any]] = []
        first: dict[str, Any] = {"type": "section"}
        if block.text or not fields:
            first["text"] = _mrkdwn(block.text)
        if fields:
            first["fields"] = fields[:MAX_FIELDS]
        out.append(first)
        for start in range(MAX_FIELDS, len(fields), MAX_FIELDS):
            out.append({"type": "section", "fields": fields[start : start + MAX_FIELDS]})
        return out

    def bars(self, block: Bars) -> list[dict[str, Any]]:
        lines = []
        for row in block.rows:
            note = f" {row.note}" if row.note else ""
            lines.append(f"`{bar(row.fraction, BAR_WIDTH)}` *{row.value}*  {row.label}{note}")
        return [_section(chunk) for chunk in _chunk_lines(lines, per_block=25)]

    def list(self, block: ListBlock) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if block.title:
            out.append(_section(f"*{block.title}*"))
        if not block.lines:
            out.append(_context(block.empty))
            return out
        lines = []
        for line in block.lines[:LIST_LINES]:
            meta = f"  _{line.meta}_" if line.meta else ""
            lines.append(f"*{line.ref}*  {line.text}{meta}" if line.ref else f"{line.text}{meta}")
        out += [_section(chunk) for chunk in _chunk_lines(lines)]
        hidden = len(block.lines) - LIST_LINES
        if hidden > 0:
            hint = f" {block.more_hint}" if block.more_hint else ""
            out.append(_context(f"… and {hidden} more.{hint}"))
        return out

    def actions(self, buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(buttons), BUTTONS_PER_BLOCK):
            elements = []
            for button in buttons[start : start + BUTTONS_PER_BLOCK]:
                element: dict[str, Any] = {
                    "type": "button",
                    "action_id": f"{CMD_ACTION_PREFIX}{self.buttons}",
                    "text": _plain(button.label, BUTTON_TEXT),
                    "value": button.command[:BUTTON_VALUE],
                }
                if button.ask:  # opens a modal asking for the text first (see reason_modal)
                    element["action_id"] = f"{ASK_ACTION_PREFIX}{self.buttons}"
                    asked = {"command": button.command, "ask": button.ask, "label": button.label}
                    if button.into:
                        asked["into"] = button.into
                    element["value"] = json.dumps(asked)[:BUTTON_VALUE]
                if button.style != "default":
                    element["style"] = button.style
                self.buttons += 1
                elements.append(element)
            out.append({"type": "actions", "elements": elements})
        return out


def form_button(form: Form) -> dict[str, Any]:
    """A ranked or dots ballot is a button that opens the modal; the value names the poll."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": FORM_ACTION,
                "style": "primary",
                "text": _plain(form.submit_label, BUTTON_TEXT),
                "value": form.poll,
            }
        ],
    }


def fit(blocks: list[dict[str, Any]], limit: int, hint: str = "") -> list[dict[str, Any]]:
    """At most `limit` blocks; what does not fit is counted in a closing context line."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    more = f"… and {len(blocks) - len(kept)} more blocks not shown."
    return [*kept, _context(f"{more} {hint}".strip())]


def render(reply: Reply, *, limit: int = MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """The reply's blocks as Block Kit, within `limit` blocks. Errors show the usage line."""
    renderer = _Renderer()
    out: list[dict[str, Any]] = []
    if not reply.ok and not reply.blocks:
        out.append(_section(f":warning: {reply.error or reply.text}"))
        if reply.usage:
            out.append(_context(reply.usage))
    for block in reply.blocks:
        out += renderer.block(block)
    if not out:
        out.append(_section(reply.text))
    return fit(out, limit, "Narrow it down (a tag, a lane, `since:`) to see the rest.")


def fallback_text(reply: Reply) -> str:
    """The message's `text`: shown in notifications and where blocks cannot be."""
    return clip(escape(reply.error if not reply.ok and reply.error else reply.text), FALLBACK_TEXT)


def message(reply: Reply) -> dict[str, Any]:
    """Keyword arguments for chat.postMessage / chat.update / a response_url body."""
    return {"text": fallback_text(reply), "blocks": render(reply)}


def find_form(reply: Reply) -> Form | None:
    return next((b for b in reply.blocks if isinstance(b, Form)), None)


# ------------------------------------------------------------------ the ballot modal


def ballot_modal(form: Form, *, channel: str) -> dict[str, Any]:
    """A ranked ballot is a select per rank; a dots ballot a number input per option.

    The poll, mode, channel and budget ride in `private_metadata`: a view submission carries
    no channel of its own, and the submission is checked against the budget it was shown.
    """
    meta = {"poll": form.poll, "mode": form.mode, "channel": channel, "budget": form.budget}
    blocks: list[dict[str, Any]] = [_section(form.title)]
    if form.mode == "dots" and form.budget:
        blocks.append(_context(f"Spread up to {form.budget} points. Leave a box empty for 0."))
    for field in form.fields:
        blocks.append(_input(field))
    return {
        "type": "modal",
        "callback_id": BALLOT_CALLBACK,
        "private_metadata": json.dumps(meta),
        "title": _plain(f"Vote on {form.poll}", MODAL_TITLE),
        "submit": _plain(form.submit_label, MODAL_TITLE),
        "close": _plain("Cancel", MODAL_TITLE),
        "blocks": fit(blocks, VIEW_BLOCKS),
    }


def _input(field: FormField) -> dict[str, Any]:
    element: dict[str, Any]
    if field.kind == "choice":
        element = {
            "type": "static_select",
            "action_id": FORM_INPUT,
            "placeholder": _plain("Pick an option", 150),
            "options": [
                {"text": _plain(text, OPTION_TEXT), "value": value[:150]}
                for value, text in field.choices[:100]
            ],
        }
    elif field.kind == "text":
        element = {
            "type": "plain_text_input",
            "action_id": FORM_INPUT,
            "multiline": True,
            "max_length": field.maximum or REASON_TEXT,
        }
    else:
        element = {
            "type": "number_input",
            "action_id": FORM_INPUT,
            "is_decimal_allowed": False,
            "min_value": "0",
        }
        if field.maximum is not None:
            element["max_value"] = str(field.maximum)
    return {
        "type": "input",
        "block_id": field.name,
        "optional": not field.required,
        "label": _plain(field.label, 2000),
        "element": element,
    }


# ------------------------------------------------------------------ the reason modal


def reason_modal(
    command: str,
    ask: str,
    label: str,
    *,
    channel: str,
    message_ts: str | None,
    into: str | None = None,
) -> dict[str, Any]:
    """A button that asks for a line of text first (Object's reason, Add option's new option):
    one required text input. The command, where the answer goes (`into`), the channel and the
    message clicked ride in `private_metadata`; the submission is checked by the engine before
    the ack, so a refusal shows under the input."""
    meta = {"command": command, "channel": channel, "ts": message_ts, "into": into}
    return {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": json.dumps(meta),
        "title": _plain(clip(f"{label} · {command.split()[-1]}", MODAL_TITLE), MODAL_TITLE),
        "submit": _plain(label, MODAL_TITLE),
        "close": _plain("Cancel", MODAL_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_INPUT,
                "label": _plain(ask, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": FORM_INPUT,
                    "multiline": into is None,
                    "max_length": REASON_TEXT,
                },
            }
        ],
    }


def submitted_values(view: dict[str, Any]) -> dict[str, str | None]:
    """A view submission's inputs by block id (the form field's name)."""
    values: dict[str, str | None] = {}
    for block_id, actions in (view.get("state", {}).get("values", {}) or {}).items():
        state = actions.get(FORM_INPUT) or next(iter(actions.values()), {})
        selected = state.get("selected_option")
        if selected:
            values[block_id] = str(selected.get("value"))
        else:
            value = state.get("value")
            values[block_id] = str(value).strip() if value not in (None, "") else None
    return values
