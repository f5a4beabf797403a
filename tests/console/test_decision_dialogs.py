"""Decisions, as a team records them in the console: statuses, supersede links both ways, owner,
tags, and finding them again by words, tag:, status: and since:."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

from datetime import timedelta

from tests.console.conftest import Advance, Dialog, Exact


def test_recording_a_decision_shows_it_in_full(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                "decide Use Postgres | mature and boring owner:@ana tag:infra tag:db",
                Exact(
                    """
D-1 · Use Postgres
──────────────────
mature and boring
  Status:      accepted
  Owner:       @ana
  Date:        2026-11-25
  By:          @pm
  Tags:        db, infra
"""
                ),
            ),
            (
                "/align decide “Launch EU first” status:proposed",
                """
                D-2 · Launch EU first
                No rationale recorded.
                Status:      proposed
                Owner:       nobody
                """,
            ),
        ]
    )


def test_statuses_and_supersede_links_both_ways(dialog: Dialog) -> None:
    dialog.run(
        [
            ("decide Use MySQL", "D-1 · Use MySQL"),
            ("decide Use Postgres status:proposed", "Status:      proposed"),
            ("status D-2 accepted", "Status:      accepted"),
            (
                "status D-2 accepted",
                Exact(
                    "✗ D-2 is already accepted.\n"
                    "  Usage: status <D-ID> proposed|accepted|rejected|superseded [by:D-ID]"
                ),
            ),
            ("status d-1 superseded by:d-2", "Status:      superseded\nLinks: superseded by D-2"),
            (
                "show D-1",
                """
                D-1 · Use MySQL
                Links: superseded by D-2
                History:
                Wed 2026-11-25 09:00 UTC created  (@pm)
                Wed 2026-11-25 09:00 UTC changed: status accepted → superseded; superseded by D-2  (@pm)
                """,
            ),
            (
                "show D-2",
                """
                D-2 · Use Postgres
                Links: supersedes D-1
                History:
                Wed 2026-11-25 09:00 UTC created  (@pm)
                Wed 2026-11-25 09:00 UTC changed: status proposed → accepted  (@pm)
                Wed 2026-11-25 09:00 UTC linked: supersedes D-1  (@pm)
                """,
            ),
            ("status D-2 rejected", "Status:      rejected"),
            ("status D-2 superseded by:D-2", "✗ A decision cannot supersede itself."),
            ("status D-1 accepted by:D-2", "✗ by: goes with superseded."),
        ]
    )


def test_finding_decisions_by_words_tags_status_and_since(dialog: Dialog) -> None:
    dialog.run(
        [
            ("decide Use Postgres | mature and boring owner:@ana tag:infra", "D-1 · Use Postgres"),
            ("decide Launch EU first tag:launch status:proposed", "D-2 · Launch EU first"),
            ("status D-1 superseded by:D-2", "Status:      superseded"),
            (
                "decisions",
                Exact(
                    """
Decisions
─────────
  D-2 Launch EU first  (proposed · 2026-11-25)
  D-1 Use Postgres  (superseded · 2026-11-25 · @ana)
"""
                ),
            ),
            (
                "decisions BORING",
                "Decisions matching “BORING”\nD-1 Use Postgres  (superseded · 2026-11-25 · @ana)",
            ),
            ("decisions tag:launch", "D-2 Launch EU first  (proposed · 2026-11-25)"),
            ("decisions status:superseded", "D-1 Use Postgres  (superseded · 2026-11-25 · @ana)"),
            ("decisions status:accepted", "No decisions match."),
            ("decisions postgres tag:launch", "No decisions match."),
            Advance(timedelta(days=10)),  # Saturday 2026-12-05 09:00
            ("decide Hire a designer", "Date:        2026-12-05"),
            (
                "decisions since:3d",
                Exact("Decisions\n─────────\n  D-3 Hire a designer  (accepted · 2026-12-05)"),
            ),
            ("decisions since:mon", "D-3 Hire a designer  (accepted · 2026-12-05)"),
            ("decisions since:2026-12-05", "D-3 Hire a designer  (accepted · 2026-12-05)"),
            (
                "decisions since:2w",
                "D-3 Hire a designer  (accepted · 2026-12-05)\n"
                "D-2 Launch EU first  (proposed · 2026-11-25)\n"
                "D-1 Use Postgres  (superseded · 2026-11-25 · @ana)",
            ),
            ("decisions since:2026-11-25", "D-1 Use Postgres  (superseded · 2026-11-25 · @ana)"),
            (
                "decisions since:someday",
                "✗ I can't read `someday` as a starting time. Use a date (2026-11-01), a day (mon, yesterday) or how long ago (3d, 48h, 2w).",
            ),
        ]
    )


def test_since_mon_means_the_last_monday_not_the_next(dialog: Dialog) -> None:
    dialog.run(
        [
            ("decide Old news", "D-1 · Old news"),  # Wednesday 2026-11-25
            Advance(timedelta(days=5)),  # Monday 2026-11-30 09:00
            ("decide Fresh", "D-2 · Fresh"),
            (
                "decisions since:mon",
                Exact("Decisions\n─────────\n  D-2 Fresh  (accepted · 2026-11-30)"),
            ),
            ("decisions since:tue", "D-2 Fresh  (accepted · 2026-11-30)"),
        ]
    )
    assert "Old news" not in dialog.say("decisions since:mon")
    assert "Old news" in dialog.say("decisions since:wed")


def test_owner_from_a_console_mention_and_tags_are_cleaned(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                "decide Ship it owner:@ben tag:#Launch tag:launch",
                "Owner:       @ben\nTags:        launch",
            ),
            ("decide Ship it owner:ben", "✗ `ben` is not a person; mention them like @ana."),
        ]
    )
