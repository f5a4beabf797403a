"""The backlog in the console: RICE per scorer with the median of each input, the impact scale,
confidence in %, lanes, move, priorities, the roadmap, and the disagreement flag on show."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

from tests.console.conftest import Dialog, Exact

SCORE_USAGE = "  Usage: score <I-ID> [reach:N] [impact:N] [confidence:N%] [effort:N]"


def test_each_scorer_counts_and_the_item_uses_the_median_of_each_input(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                "item SSO login reach:800 impact:2 confidence:80% effort:4 lane:next tag:auth",
                Exact(
                    """
I-1 · SSO login
───────────────
  Lane:        next
  RICE:        320
  Scorers:     1
  Reach:       800
  Impact:      2
  Confidence:  80%
  Effort:      4
  Tags:        auth
"""
                ),
            ),
            (":as ben", "You are @ben in #general (local)."),
            (
                "score I-1 reach:200 impact:3 confidence:40% effort:2",
                # medians of two: reach 500, impact 2.5, confidence 60%, effort 3 → 250
                "RICE:        250\nScorers:     2\nReach:       500\nImpact:      2.5\n"
                "Confidence:  60%\nEffort:      3",
            ),
            (":as cy", "You are @cy in #general (local)."),
            (
                "score i-1 reach:400 impact:0.5 confidence:100 effort:8",
                # medians of three: 400 × 2 × 80% ÷ 4 = 160
                "RICE:        160\nScorers:     3\nReach:       400\nImpact:      2\n"
                "Confidence:  80%\nEffort:      4",
            ),
            (":as ben", "You are @ben in #general (local)."),
            ("score I-1 effort:3", "Scorers:     3\nEffort:      4"),  # ben's own input replaced
            (
                "show I-1",
                """
                I-1 · SSO login
                RICE:        160
                ⚠ Scorers disagree widely: reach 200–800; impact 0.5–3; confidence 40–100; effort 3–8. Worth a conversation.
                Scores:
                @ben reach 200 · impact 3 · confidence 40% · effort 3
                @cy  reach 400 · impact 0.5 · confidence 100% · effort 8
                @pm  reach 800 · impact 2 · confidence 80% · effort 4
                History:
                Wed 2026-11-25 09:00 UTC created  (@pm)
                Wed 2026-11-25 09:00 UTC scored: reach 200, impact 3, confidence 40%, effort 2; RICE 320 → 250  (@ben)
                Wed 2026-11-25 09:00 UTC scored: reach 400, impact 0.5, confidence 100%, effort 8; RICE 250 → 160  (@cy)
                Wed 2026-11-25 09:00 UTC scored: effort 3  (@ben)
                """,
            ),
        ]
    )


def test_agreeing_scorers_raise_no_flag(dialog: Dialog) -> None:
    dialog.run(
        [
            ("item Dark mode reach:100 impact:1 confidence:50% effort:1", "RICE:        50"),
            (":as ben", ""),
            ("score I-1 reach:120 impact:1 confidence:60% effort:1", "Scorers:     2"),
        ]
    )
    assert "disagree" not in dialog.say("show I-1")


def test_impact_is_on_intercoms_scale_and_confidence_is_a_percentage(dialog: Dialog) -> None:
    scale = (
        "✗ Impact {} is not allowed. Impact uses Intercom's scale: 3 (massive), 2 (high), "
        "1 (medium), 0.5 (low), 0.25 (minimal)."
    )
    dialog.run(
        [
            ("item SSO", "RICE:        —\nScorers:     0"),
            ("score I-1 impact:7", Exact(scale.format(7) + "\n" + SCORE_USAGE)),
            ("score I-1 impact:1.5", Exact(scale.format(1.5) + "\n" + SCORE_USAGE)),
            ("score I-1 confidence:120%", "✗ Confidence is a percentage from 0% to 100%."),
            ("score I-1 reach:lots", "✗ reach must be a number, not `lots`."),
            ("score I-1 effort:0", "✗ Effort is in person-months: from 0.01 to 1,000,000."),
            ("score I-1", "✗ Give at least one of reach, impact, confidence, effort."),
            ("score I-1 impact:0.25 confidence:5%", "Impact:      0.25\nConfidence:  5%"),
        ]
    )


def test_lanes_move_priorities_and_the_roadmap(dialog: Dialog) -> None:
    dialog.run(
        [
            (
                "item SSO login reach:800 impact:2 confidence:80% effort:4 lane:next",
                "Lane:        next",
            ),
            ("item Dark mode reach:100 impact:1 confidence:50% effort:1", "Lane:        later"),
            ("item Audit log lane:now", "Lane:        now"),
            (
                "item Billing reach:10 impact:3 confidence:100% effort:1 lane:soon",
                "✗ lane is now, next or later.",
            ),
            ("move I-2 now", Exact("Moved I-2 Dark mode: later → now")),
            ("move I-2 now", "✗ I-2 is already in now."),
            ("move I-2 sideways", "✗ The lane is now, next, later or done."),
            (
                "priorities",
                Exact(
                    """
Priorities by rice
──────────────────
  I-1 SSO login  (RICE 320)
  I-2 Dark mode  (RICE 50)
  I-3 Audit log  (RICE —)
"""
                ),
            ),
            (
                "priorities lane:now",
                "Priorities by rice · now\nI-2 Dark mode  (RICE 50)\nI-3 Audit log  (RICE —)",
            ),
            (
                "roadmap",
                Exact(
                    """
Roadmap
───────
Now:
  I-2 Dark mode  (RICE 50)
  I-3 Audit log  (RICE —)
Next:
  I-1 SSO login  (RICE 320)
Later:
  —
"""
                ),
            ),
            ("move I-3 done", "Moved I-3 Audit log: now → done"),
            ("priorities lane:done", "I-3 Audit log  (RICE —)"),
            ("show I-2", "History:\nWed 2026-11-25 09:00 UTC moved: lane later → now  (@pm)"),
        ]
    )
    assert "Audit log" not in dialog.say("roadmap")
    assert "Audit log" not in dialog.say("priorities")
