"""One scorer's RICE (`combine` of one set of inputs, on its own short path) is what the
medians of several scorers give when they all agree: the same medians, in the same order, the
same RICE to the last bit, no disagreement."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import product

from bot.scoring import Inputs, combine


def test_one_scorer_scores_as_agreeing_scorers_do() -> None:
    for reach, impact, confidence, effort in product(
        (None, 0.0, 1.0, 7.0, 1e12),
        (None, 0.25, 0.5, 3.0),
        (None, 0.0, 33.0, 100.0),
        (None, 0.01, 3.0, 1e6),
    ):
        alone = Inputs(reach, impact, confidence, effort)
        one = combine([alone])
        assert one == replace(combine([alone, alone]), scorers=1)
        assert list(one.medians) == ["reach", "impact", "confidence", "effort"]
        assert one.rice is None or type(one.rice) is float


def test_no_scorer_has_no_score() -> None:
    none = combine([])
    assert (none.rice, none.scorers, none.disagreements) == (None, 0, {})
    assert none.medians == {"reach": None, "impact": None, "confidence": None, "effort": None}


def test_a_negative_zero_input_makes_a_plain_zero() -> None:
    """`reach:-0` passes the range check as -0.0; the RICE it makes is 0.0, which `--json`
    shows as 0.0, not -0.0."""
    for inputs in (
        [Inputs(-0.0, 1.0, 50.0, 1.0)],
        [Inputs(-0.0, 1.0, 50.0, 1.0)] * 2,
        [Inputs(1.0, 1.0, -0.0, 1.0)],
    ):
        rice = combine(inputs).rice
        assert rice == 0.0 and math.copysign(1.0, rice) == 1.0
