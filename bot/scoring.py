"""RICE scoring: each scorer's inputs kept, the item's score from the median of each input.

RICE = reach × impact × confidence ÷ effort (Intercom). Taking the median per input, not the mean
of scores, keeps one outlier from dragging the item, and lets two people score different inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median

IMPACT_SCALE = (3.0, 2.0, 1.0, 0.5, 0.25)
INPUTS = ("reach", "impact", "confidence", "effort")
IMPACT_HELP = (
    "Impact uses Intercom's scale: 3 (massive), 2 (high), 1 (medium), 0.5 (low), 0.25 (minimal)."
)


@dataclass(frozen=True)
class Inputs:
    reach: float | None = None
    impact: float | None = None
    confidence: float | None = None
    effort: float | None = None


@dataclass(frozen=True)
class Score:
    medians: dict[str, float | None]
    rice: float | None
    scorers: int
    disagreements: dict[str, tuple[float, float]]


def combine(inputs: Sequence[Inputs]) -> Score:
    if len(inputs) == 1:
        return _alone(inputs[0])
    medians: dict[str, float | None] = {}
    disagreements: dict[str, tuple[float, float]] = {}
    for name in INPUTS:
        values = [getattr(i, name) for i in inputs if getattr(i, name) is not None]
        medians[name] = float(median(values)) if values else None
        if len(values) >= 2 and _wide(name, values):
            disagreements[name] = (min(values), max(values))
    return Score(medians, _rice(medians), len(inputs), disagreements)


def _alone(inputs: Inputs) -> Score:
    """`combine` of one scorer's inputs (most items have one), without the lists and medians:
    the median of one value is that value, and one scorer never disagrees. A list ranks every
    item of a channel, and the general path was a third of a `roadmap` of twenty."""
    reach, impact, confidence, effort = (
        inputs.reach,
        inputs.impact,
        inputs.confidence,
        inputs.effort,
    )
    medians: dict[str, float | None] = {
        "reach": None if reach is None else float(reach),
        "impact": None if impact is None else float(impact),
        "confidence": None if confidence is None else float(confidence),
        "effort": None if effort is None else float(effort),
    }
    return Score(medians, _rice(medians), 1, {})


def _rice(medians: dict[str, float | None]) -> float | None:
    """Reach × impact × confidence ÷ effort of the medians; None unless all four are known."""
    reach, impact = medians["reach"], medians["impact"]
    confidence, effort = medians["confidence"], medians["effort"]
    if reach is None or impact is None or confidence is None or effort is None:
        return None
    # `or 0.0`: a -0.0 typed as `reach:-0` makes a plain 0.0, not -0.0 in --json.
    reach, impact, confidence = reach or 0.0, impact or 0.0, confidence or 0.0
    return reach * impact * (confidence / 100.0) / effort if effort else None


def _wide(name: str, values: Iterable[float]) -> bool:
    """Scorers disagree widely: confidence 30+ points apart; impact two or more steps apart on
    the scale; reach and effort a factor of two or more apart."""
    values = list(values)
    low, high = min(values), max(values)
    if name == "confidence":
        return high - low >= 30
    if name == "impact":
        return abs(IMPACT_SCALE.index(high) - IMPACT_SCALE.index(low)) >= 2
    if low <= 0:
        return high > 0
    return high / low >= 2


def format_number(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")
