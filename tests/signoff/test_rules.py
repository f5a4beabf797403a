"""The three sign-off rules of the contract, as a table: approvers, their stances, and where the
proposal stands. Pure: no database."""

from __future__ import annotations

import pytest

from bot.signoff.rules import standing

A3 = ("ana", "ben", "cho")

CASES = [
    # rule, approvers, stances, due passed, state
    # all: every approver who has not abstained agrees, with at least one agree
    ("all", A3, {}, False, "open"),
    ("all", A3, {"ana": "agree", "ben": "agree"}, False, "open"),
    ("all", A3, {"ana": "agree", "ben": "agree", "cho": "agree"}, False, "accepted"),
    ("all", A3, {"ana": "agree", "ben": "abstain", "cho": "agree"}, False, "accepted"),
    ("all", A3, {"ana": "abstain", "ben": "abstain", "cho": "abstain"}, False, "open"),
    ("all", A3, {"ana": "agree", "ben": "agree", "cho": "object"}, False, "held"),
    ("all", A3, {"ana": "agree", "ben": "agree", "cho": "block"}, False, "held"),
    ("all", A3, {"ana": "agree", "zed": "block"}, False, "open"),  # zed is no approver
    ("all", ("ana",), {"ana": "agree", "zed": "block", "yan": "object"}, False, "accepted"),
    # majority: more than half agree and no block stands; objections do not hold it
    ("majority", A3, {"ana": "agree"}, False, "open"),
    ("majority", A3, {"ana": "agree", "ben": "agree"}, False, "accepted"),
    ("majority", A3, {"ana": "agree", "ben": "agree", "cho": "object"}, False, "accepted"),
    ("majority", A3, {"ana": "agree", "ben": "agree", "cho": "block"}, False, "held"),
    ("majority", ("ana", "ben", "cho", "dee"), {"ana": "agree", "ben": "agree"}, False, "open"),
    ("majority", ("ana", "ben"), {"ana": "agree", "ben": "abstain"}, False, "open"),
    # consent: at the due time, unless an objection or a block stands; silence is consent
    ("consent", A3, {}, False, "open"),
    ("consent", A3, {"ana": "agree", "ben": "agree", "cho": "agree"}, False, "open"),
    ("consent", A3, {}, True, "accepted"),
    ("consent", A3, {"ana": "abstain"}, True, "accepted"),
    ("consent", A3, {"ana": "agree", "cho": "object"}, True, "held"),
    ("consent", A3, {"ben": "block"}, True, "held"),
    ("consent", A3, {"zed": "block"}, True, "accepted"),  # advice never holds it
]


@pytest.mark.parametrize(("rule", "approvers", "stances", "due_passed", "state"), CASES)
def test_rule_table(
    rule: str,
    approvers: tuple[str, ...],
    stances: dict[str, str],
    due_passed: bool,
    state: str,
) -> None:
    assert standing(rule, approvers, stances, due_passed=due_passed).state == state


def test_who_holds_and_who_is_waiting_are_named() -> None:
    found = standing("all", A3, {"ana": "agree", "ben": "block"})
    assert (found.holding, found.waiting, found.agreed) == (("ben",), ("cho",), ("ana",))
    under_majority = standing("majority", A3, {"ana": "object", "ben": "block"})
    assert under_majority.holding == ("ben",)  # an objection does not hold a majority vote
    assert under_majority.objected == ("ana",)
