"""Open questions in the console: owner, due, overdue as time passes, mine, and answering with
`decide`, which records a decision linked to the question."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

from datetime import timedelta

from tests.console.conftest import Advance, Dialog, Exact


def test_ask_with_owner_and_due_then_it_becomes_overdue(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                "ask Which regions need data residency? owner:@ben due:fri",
                Exact(
                    """
Q-1 · Which regions need data residency?
────────────────────────────────────────
  Status:      open
  Owner:       @ben
  Due:         Fri 2026-11-27 17:00 UTC
  Asked by:    @pm
"""
                ),
            ),
            ("ask Do we need SOC2? due:2h", "Due:         Wed 2026-11-25 11:00 UTC"),
            ("ask Any blockers?", "Due:         —"),
            (
                "questions overdue",
                Exact("Questions · overdue\n───────────────────\n  No overdue questions."),
            ),
            Advance(timedelta(hours=3)),
            (
                "questions overdue",
                Exact(
                    "Questions · overdue\n───────────────────\n"
                    "  Q-2 Do we need SOC2?  (open · OVERDUE since Wed 2026-11-25 11:00 UTC)"
                ),
            ),
            (
                "questions",
                """
                Questions · open
                Q-3 Any blockers?  (open)
                Q-2 Do we need SOC2?  (open · OVERDUE since Wed 2026-11-25 11:00 UTC)
                Q-1 Which regions need data residency?  (open · @ben · due Fri 2026-11-27 17:00 UTC)
                """,
            ),
            Advance(timedelta(days=3)),
            (
                "questions overdue",
                "Q-1 Which regions need data residency?  (open · @ben · OVERDUE since Fri 2026-11-27 17:00 UTC)",
            ),
        ]
    )


def test_mine_lists_the_open_questions_i_own(dialog: Dialog) -> None:
    dialog.run(
        [
            ("ask Which regions? owner:@ben", "Owner:       @ben"),
            ("ask Budget? owner:@pm", "Owner:       @pm"),
            (
                "questions mine",
                Exact("Questions · mine\n────────────────\n  Q-2 Budget?  (open · @pm)"),
            ),
            (":as ben", "You are @ben in #general (local)."),
            (
                "questions mine",
                Exact("Questions · mine\n────────────────\n  Q-1 Which regions?  (open · @ben)"),
            ),
            ("answer Q-1 EU only", "Status:      answered"),
            ("questions mine", "No mine questions."),
        ]
    )


def test_answer_with_decide_records_a_linked_decision(dialog: Dialog) -> None:
    dialog.run(
        [
            ("ask Which regions? owner:@ben due:fri", "Q-1 · Which regions?"),
            (":as ben", ""),
            (
                "answer q-1 EU and UK decide",
                """
                Q-1 · Which regions?
                Status:      answered
                Answer (@ben, Wed 2026-11-25 09:00 UTC): EU and UK
                Links: decided as D-1
                """,
            ),
            (
                "show D-1",
                """
                D-1 · EU and UK
                Answer to Q-1: Which regions?
                Status:      accepted
                Owner:       @ben
                Links: answers Q-1
                """,
            ),
            (
                "show Q-1",
                """
                History:
                Wed 2026-11-25 09:00 UTC created  (@pm)
                Wed 2026-11-25 09:00 UTC answered: status open → answered; answer — → “EU and UK”; recorded as D-1  (@ben)
                """,
            ),
            ("answer Q-1 again", "✗ Q-1 was already answered: EU and UK"),
            ("questions", "No open questions."),
            (
                "questions all",
                "Q-1 Which regions?  (answered · @ben · due Fri 2026-11-27 17:00 UTC)",
            ),
        ]
    )


def test_answer_without_decide_records_no_decision(dialog: Dialog) -> None:
    dialog.run(
        [
            ("ask Which regions?", "Q-1 · Which regions?"),
            (
                "answer Q-1 “EU decide” later",
                # The quotes keep `decide` from being read as the flag, and stay as typed.
                "Answer (@pm, Wed 2026-11-25 09:00 UTC): “EU decide” later",
            ),
            ("decisions", "No decisions match."),
        ]
    )
