"""The engine's answers: a platform-neutral document that each adapter renders.

A `Reply` carries a small vocabulary of blocks (heading, section, fields, bars, list, context,
divider, actions, form) plus the JSON contract of `commands.md` in `data`. Slack renders it as
Block Kit, Teams as an Adaptive Card, the console as text — one renderer per platform over this
vocabulary, not one per command. People appear as `<@user id>`; each adapter shows them its way.
Buttons carry the very command a user could type, so a click and a typed line are one path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Literal

from bot import effects
from bot.effects import Effect


@dataclass(frozen=True)
class Heading:
    text: str
    type: Literal["heading"] = "heading"


@dataclass(frozen=True)
class Section:
    text: str
    fields: tuple[tuple[str, str], ...] = ()
    type: Literal["section"] = "section"


@dataclass(frozen=True)
class BarRow:
    label: str
    value: str
    fraction: float
    note: str = ""


@dataclass(frozen=True)
class Bars:
    rows: tuple[BarRow, ...]
    type: Literal["bars"] = "bars"


@dataclass(frozen=True)
class Line:
    ref: str
    text: str
    meta: str = ""


@dataclass(frozen=True)
class ListBlock:
    lines: tuple[Line, ...]
    title: str = ""
    empty: str = "Nothing here yet."
    more_hint: str = ""
    type: Literal["list"] = "list"


@dataclass(frozen=True)
class Context:
    text: str
    type: Literal["context"] = "context"


@dataclass(frozen=True)
class Pre:
    """Fixed-width text, for tables such as a pairwise matrix."""

    text: str
    type: Literal["pre"] = "pre"


@dataclass(frozen=True)
class Divider:
    type: Literal["divider"] = "divider"


@dataclass(frozen=True)
class Button:
    label: str
    command: str
    style: Literal["default", "primary", "danger"] = "default"
    ask: str | None = None
    """The button asks for a line of text first (this is the question, e.g. "Why do you
    object?"); the answer is the command's text after `|` (`object D-7 | <answer>`), handed to
    `Engine.submit_text`. Surfaces show a modal or an inline input; the console the command."""
    into: str | None = None
    """With `ask`: the option the answer becomes instead of the text after `|` — "add" makes
    `edit P-3` with the answer `Tacos` run as `edit P-3 add:"Tacos"`."""


@dataclass(frozen=True)
class Actions:
    buttons: tuple[Button, ...]
    label: str = "Vote"
    """What the buttons do, for surfaces that print them as text (the console)."""
    type: Literal["actions"] = "actions"


@dataclass(frozen=True)
class FormField:
    """One input of a ballot form: a choice among options, a number, or a line of text (the
    optional reason)."""

    name: str
    label: str
    kind: Literal["choice", "number", "text"]
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    maximum: int | None = None
    """The largest number, or the longest text."""
    error: str | None = None
    """Why the value given here was refused (a form handed back to correct)."""


@dataclass(frozen=True)
class Form:
    """A ballot to fill in (ranked or dots). Submitting builds `vote <poll> …` from the fields.
    `typed` is an example of the same ballot as a line to type, for surfaces without forms; it
    only names options the poll has."""

    poll: str
    mode: Literal["ranked", "dots"]
    title: str
    fields: tuple[FormField, ...]
    budget: int | None = None
    submit_label: str = "Vote"
    typed: str = ""
    type: Literal["form"] = "form"


Block = Heading | Section | Bars | ListBlock | Context | Pre | Divider | Actions | Form


@dataclass(frozen=True)
class OutFile:
    filename: str
    mime: str
    content: str


class Later(MutableMapping[str, Any]):
    """A reply's `data` built the first time it is read. A list's JSON form is for `--json`
    and webhooks; Slack and Teams show the blocks, and building it for them cost the engine
    and the rendering of `questions` 0.42 ms instead of 0.36, `roadmap` 0.46 instead of 0.38
    (in one process, on a channel holding twenty of each, as bench_slack's reads).
    `build` must need nothing of the transaction: the rows are in hand when it runs."""

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build: Callable[[], dict[str, Any]] | None = build
        self._built: dict[str, Any] = {}

    def _data(self) -> dict[str, Any]:
        if self._build is not None:
            self._built, self._build = self._build(), None
        return self._built

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


@dataclass
class Reply:
    """What the engine answers. `text` is the one-line gist (fallback text, notifications).

    How it is shown is typed, never inferred from `data`: `ephemeral` — only to the person who
    asked; `receipt` — it acknowledges an action whose result shows in a live message (a vote,
    a stance): surfaces that keep live messages show only `text`, to the person who acted;
    `file` — an export; `notify` — who the message calls on; `direct_to` — a private message
    (outbox). `effects` say what else follows from the command (see `bot/effects.py`);
    `field_errors` put a form's mistakes next to the inputs they concern (by input name).
    """

    ok: bool
    kind: str
    text: str
    blocks: list[Block] = field(default_factory=list)
    data: MutableMapping[str, Any] = field(default_factory=dict)
    """The JSON contract's fields; a list's are built when first read (`Later`)."""
    error: str | None = None
    usage: str | None = None
    file: OutFile | None = None
    ephemeral: bool = False
    receipt: bool = False
    effects: tuple[Effect, ...] = ()
    field_errors: dict[str, str] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    """People this message calls on (a proposal's approvers when it is first posted): surfaces
    that tell a notifying mention from a shown name (Teams) mention them; others are named."""
    direct_to: str | None = None
    """An outbox message for one person only, privately (a DM), not for the channel."""

    def to_json(self) -> dict[str, Any]:
        """The JSON contract: always `ok`; `error` on failure; the view's own fields."""
        out: dict[str, Any] = {"ok": self.ok, "kind": self.kind}
        if not self.ok:
            out["error"] = self.error
            if self.usage:
                out["usage"] = self.usage
        out.update(self.data)
        out["text"] = self.text
        if self.file is not None:
            out["file"] = asdict(self.file)
        return out


def mention(user: str | None) -> str:
    return f"<@{user}>" if user else "nobody"


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 decision`, `2 decisions` — never `1 decisions` or `decision(s)`."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def bar(fraction: float, width: int = 20) -> str:
    """A text bar, the same in every surface: ██████░░░░."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


_BLOCK_TYPES: dict[str, type] = {
    "heading": Heading,
    "section": Section,
    "bars": Bars,
    "list": ListBlock,
    "context": Context,
    "pre": Pre,
    "divider": Divider,
    "actions": Actions,
    "form": Form,
}


def reply_to_payload(reply: Reply) -> dict[str, Any]:
    """A Reply as plain JSON, for the outbox: it is rendered per platform only when sent.

    Not `asdict`: it deep-copies `data`, which is plain JSON already, and for a digest of a busy
    channel that copy dominated the cost of queueing it."""
    out = {f.name: getattr(reply, f.name) for f in fields(reply)}
    out["data"] = dict(reply.data)
    out["blocks"] = [_plain(b) for b in reply.blocks]
    out["file"] = _plain(reply.file)
    out["effects"] = effects.to_json(reply.effects)
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def reply_from_payload(payload: dict[str, Any]) -> Reply:
    """The inverse of `reply_to_payload`."""
    blocks: list[Block] = []
    for raw in payload.get("blocks", []):
        raw = dict(raw)
        kind = raw.pop("type")
        if kind == "section":
            raw["fields"] = tuple(tuple(f) for f in raw.get("fields", ()))
        elif kind == "bars":
            raw["rows"] = tuple(BarRow(**r) for r in raw["rows"])
        elif kind == "list":
            raw["lines"] = tuple(Line(**line) for line in raw["lines"])
        elif kind == "actions":
            raw["buttons"] = tuple(Button(**b) for b in raw["buttons"])
        elif kind == "form":
            raw["fields"] = tuple(
                FormField(**(f | {"choices": tuple(tuple(c) for c in f.get("choices", ()))}))
                for f in raw["fields"]
            )
        blocks.append(_BLOCK_TYPES[kind](**raw))
    file = payload.get("file")
    return Reply(
        ok=payload["ok"],
        kind=payload["kind"],
        text=payload["text"],
        blocks=blocks,
        data=payload.get("data", {}),
        error=payload.get("error"),
        usage=payload.get("usage"),
        file=OutFile(**file) if file else None,
        ephemeral=payload.get("ephemeral", False),
        receipt=payload.get("receipt", False),
        effects=effects.from_json(payload.get("effects")),
        field_errors=dict(payload.get("field_errors") or {}),
        notify=tuple(payload.get("notify") or ()),
        direct_to=payload.get("direct_to"),
    )
