"""`edit` keeps history: every edited field shows in `show` as before → after, for every kind."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

from tests.console.conftest import Dialog, Exact

EDIT_USAGE = "  Usage: edit <ID> field:value..."


def test_editing_a_decision_keeps_every_field_in_history(dialog: Dialog) -> None:
    dialog.run(
        [
            ("decide Launch EU first tag:launch", "D-1 · Launch EU first"),
            (
                'edit D-1 title:"Launch EU and UK first" rationale:“GDPR work is done” '
                "owner:@ben tags:launch,eu",
                """
                D-1 · Launch EU and UK first
                GDPR work is done
                Owner:       @ben
                Tags:        eu, launch
                """,
            ),
            (
                "show D-1",
                """
                History:
                Wed 2026-11-25 09:00 UTC created  (@pm)
                Wed 2026-11-25 09:00 UTC edited: title “Launch EU first” → “Launch EU and UK first”; rationale — → “GDPR work is done”; owner — → @ben; tags launch → eu, launch  (@pm)
                """,
            ),
            (":as cy", ""),
            ("edit d-1 owner:@cy", "Owner:       @cy"),
            ("show D-1", "Wed 2026-11-25 09:00 UTC edited: owner @ben → @cy  (@cy)"),
            ("edit D-1 owner:@cy", Exact("✗ Nothing changed on D-1.\n" + EDIT_USAGE)),
            (
                "edit D-1 due:fri",
                "✗ D-1 is not a proposal, so it has no due time.",
            ),
        ]
    )


def test_editing_an_item_and_a_question_keeps_history(dialog: Dialog) -> None:
    dialog.run(
        [
            ("item SSO tag:auth", "I-1 · SSO"),
            (
                "edit I-1 title:“SSO login” tag:auth tag:security",
                "I-1 · SSO login\nTags:        auth, security",
            ),
            (
                "show I-1",
                "Wed 2026-11-25 09:00 UTC edited: title “SSO” → “SSO login”; tags auth → auth, security  (@pm)",
            ),
            ("ask Which regions? due:fri", "Due:         Fri 2026-11-27 17:00 UTC"),
            (
                'edit Q-1 text:"Which regions need residency?" owner:@ben due:"2026-12-01 10:00"',
                "Q-1 · Which regions need residency?\nOwner:       @ben\n"
                "Due:         Tue 2026-12-01 10:00 UTC",
            ),
            (
                "show Q-1",
                "Wed 2026-11-25 09:00 UTC edited: text “Which regions?” → “Which regions need residency?”; owner — → @ben; "
                "due Fri 2026-11-27 17:00 UTC → Tue 2026-12-01 10:00 UTC  (@pm)",
            ),
            ("edit Q-1 due:none", "Due:         —"),
            (
                "show Q-1",
                "Wed 2026-11-25 09:00 UTC edited: due Tue 2026-12-01 10:00 UTC → —  (@pm)",
            ),
        ]
    )


def test_editing_a_poll_keeps_history(dialog: Dialog) -> None:
    dialog.run(
        [
            ('poll "Ship date or scope?" "Date" "Scope" closes:fri', "P-1 · Ship date or scope?"),
            (
                'edit P-1 title:"Date or scope?" closes:"2026-12-01 12:00" add:"Both"',
                "P-1 · Date or scope?\n3. Both   ░░░░░░░░░░░░░░░░░░░░ 0",
            ),
            (
                "show P-1",
                "Wed 2026-11-25 09:00 UTC edited: question “Ship date or scope?” → “Date or scope?”; "
                "closes Fri 2026-11-27 17:00 UTC → Tue 2026-12-01 12:00 UTC; "
                "options Date, Scope → Date, Scope, Both  (@pm)",
            ),
        ]
    )
