"""Plain-text rendering of engine replies, for a terminal."""

from __future__ import annotations

import re

from bot.views import (
    Actions,
    Bars,
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

_MENTION = re.compile(r"<@([^>|]+)(?:\|[^>]*)?>")
_BOLD = re.compile(r"(?<!\w)\*([^*\n]+)\*(?!\w)")
_ITALIC = re.compile(r"(?<!\w)_([^_\n]+)_(?!\w)")
LIST_LIMIT = 50


def plain(text: str) -> str:
    """Chat markup to terminal text: mentions as @user, *bold* and _italic_ without marks."""
    return _ITALIC.sub(r"\1", _BOLD.sub(r"\1", _MENTION.sub(r"@\1", text)))


def _button(button: Button) -> str:
    """A button as the line to type: one that asks for text shows where the text goes."""
    if button.ask is None:
        typed = button.command
    elif button.into is not None:
        typed = f'{button.command} {button.into}:"…"'
    else:
        typed = f"{button.command} | <why>"
    return f"[{button.label}] `{typed}`"


def render(reply: Reply) -> str:
    if not reply.ok:
        lines = [f"✗ {plain(reply.error or reply.text)}"]
        if reply.usage:
            lines.append(f"  {reply.usage}")
        return "\n".join(lines)
    out: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Heading):
            out.append(plain(block.text))
            out.append("─" * min(len(block.text), 60))
        elif isinstance(block, Section):
            if block.text:
                out.append(plain(block.text))
            for name, value in block.fields:
                out.append(f"  {name + ':':<12} {plain(value)}")
        elif isinstance(block, Bars):
            width = max((len(r.label) for r in block.rows), default=0)
            for row in block.rows:
                out.append(
                    f"  {row.label:<{width}}  {bar(row.fraction)} {row.value} {row.note}".rstrip()
                )
        elif isinstance(block, ListBlock):
            if block.title:
                out.append(f"{plain(block.title)}:")
            if not block.lines:
                out.append(f"  {block.empty}")
            width = min(max((len(plain(line.ref)) for line in block.lines), default=6), 12)
            for line in block.lines[:LIST_LIMIT]:
                meta = f"  ({plain(line.meta)})" if line.meta else ""
                out.append(f"  {plain(line.ref):<{width}} {plain(line.text)}{meta}")
            if len(block.lines) > LIST_LIMIT:
                hint = f" {block.more_hint}" if block.more_hint else ""
                out.append(f"  … and {len(block.lines) - LIST_LIMIT} more.{hint}")
        elif isinstance(block, Context):
            out.append(plain(block.text))
        elif isinstance(block, Pre):
            out.append(block.text)
        elif isinstance(block, Divider):
            out.append("")
        elif isinstance(block, Actions):
            out.append(f"{block.label}: " + " · ".join(_button(b) for b in block.buttons))
        elif isinstance(block, Form):
            out.append(f"{block.title}: type `{block.typed}`")
    if reply.file is not None:
        out.append(f"── {reply.file.filename} ──")
        out.append(reply.file.content.rstrip("\n"))
    return "\n".join(out).rstrip()
