"""When a proposal is accepted — the three rules of the contract, as a pure function of who the
approvers are and where they stand.

- **all** (default): accepted the moment every approver who has not abstained has agreed (at
  least one agree); any objection or block holds it.
- **majority**: accepted when more than half of the approvers agree and no block stands
  (objections are heard, they do not hold it).
- **consent**: accepted at the due time if no objection or block stands — silence is consent.

Only approvers' stances count; anyone else's is advice and never reaches this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

RULES = ("all", "majority", "consent")
STANCES = ("agree", "abstain", "object", "block")
REASON_REQUIRED = frozenset({"object", "block"})

State = Literal["accepted", "held", "open"]

RULE_TEXT = {
    "all": "all — accepted when every approver who has not abstained agrees",
    "majority": "majority — accepted when more than half of the approvers agree and none blocks",
    "consent": "consent — accepted at the due time unless someone objects or blocks",
}


@dataclass(frozen=True)
class Standing:
    """Where a proposal stands under its rule: `accepted` (the rule is met now), `held` (an
    objection or block stops it), or `open` (still waiting)."""

    state: State
    agreed: tuple[str, ...]
    abstained: tuple[str, ...]
    objected: tuple[str, ...]
    blocked: tuple[str, ...]
    waiting: tuple[str, ...]
    """Approvers who have not answered."""
    holding: tuple[str, ...]
    """Who holds it: blockers, and objectors where objections hold (not under majority)."""


def standing(
    rule: str, approvers: Sequence[str], stances: Mapping[str, str], *, due_passed: bool = False
) -> Standing:
    """Evaluate `rule` for these approvers and their current stances (user → stance; people
    who are not approvers are ignored). `due_passed` says the due time has come (consent)."""

    def having(stance: str) -> tuple[str, ...]:
        return tuple(a for a in approvers if stances.get(a) == stance)

    agreed, abstained = having("agree"), having("abstain")
    objected, blocked = having("object"), having("block")
    waiting = tuple(a for a in approvers if stances.get(a) not in STANCES)
    holding = blocked if rule == "majority" else blocked + objected
    state: State = "open"
    if holding:
        state = "held"
    elif rule == "majority":
        state = "accepted" if 2 * len(agreed) > len(approvers) else "open"
    elif rule == "consent":
        state = "accepted" if due_passed else "open"
    elif agreed and len(agreed) + len(abstained) == len(approvers):
        state = "accepted"
    return Standing(state, agreed, abstained, objected, blocked, waiting, holding)


__all__ = ["REASON_REQUIRED", "RULES", "RULE_TEXT", "STANCES", "Standing", "standing"]
