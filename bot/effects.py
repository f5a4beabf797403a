"""What a command did that outlives its reply, stated by the engine as typed effects.

An adapter shows a reply; it does not work out from the reply's data what else must happen. The
engine says it: `Posted("P-3")` — this reply is the poll's live message, so wherever it lands,
later changes update it in place; `Changed("P-3", "vote")` — the poll changed (its transaction has
committed), so every live message of it is re-rendered. One service in `adapters/postings.py`
carries these out for every platform, for direct replies and for outbox messages alike (the outbox
stores a reply's effects with it, so a poll closed by the scheduler updates its messages as a
typed `close` does).

They name the object by its id rather than being one class per kind (`PollPosted`,
`ProposalChanged`): keeping a live message current is the same job for a poll and for a proposal,
and the kind is in the id. Effects are small frozen dataclasses in the style of cosmicpython's
domain events; `to_json` and `from_json` carry them through the outbox.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

ChangeReason = Literal["vote", "edit", "close", "stance", "status"]


@dataclass(frozen=True)
class Posted:
    """The reply is the live message of the object `ref` (an id like `P-3`): remember where it
    lands, to keep it current."""

    ref: str


@dataclass(frozen=True)
class Changed:
    """The object `ref` changed after commit (a vote, an edit, the close, a stance on a proposal,
    its status settled or reopened); its live messages show an old state."""

    ref: str
    reason: ChangeReason


Effect = Posted | Changed
_TYPES: dict[str, type[Effect]] = {t.__name__: t for t in (Posted, Changed)}


def to_json(effects: tuple[Effect, ...]) -> list[dict[str, Any]]:
    return [{"type": type(e).__name__, **asdict(e)} for e in effects]


def from_json(raw: list[dict[str, Any]] | None) -> tuple[Effect, ...]:
    out: list[Effect] = []
    for item in raw or []:
        fields = dict(item)
        out.append(_TYPES[fields.pop("type")](**fields))
    return tuple(out)


__all__ = ["Changed", "Effect", "Posted", "from_json", "to_json"]
