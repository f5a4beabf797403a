"""The issue's "done when", as a dialog through the console adapter: three people run a ranked
poll and a dots poll, change a vote, close with `decide`, and see the linked decision."""

from __future__ import annotations

import io

from adapters.bootstrap import App
from adapters.console.repl import Console, console_actor

SCRIPT = """\
poll "Ship date or scope?" "Date" "Scope" "Both" mode:ranked
:as ben
vote P-1 2 1 3
:as cy
vote P-1 3 2
:as ana
vote P-1 1 2
poll "Spend 5 points" "Infra" "UX" "Docs" mode:dots:5
:as ben
vote P-2 1=3 2=2
:as cy
vote P-2 3=6
vote P-2 3=5
vote P-2 2=4 3=1
close P-1 decide
:as ana
close P-1 decide
close P-2 decide
show D-1
show P-1
vote P-1 3
"""

EXPECTED = """\
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · by @ana
  1. Date   ░░░░░░░░░░░░░░░░░░░░ 0
  2. Scope  ░░░░░░░░░░░░░░░░░░░░ 0
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
No votes yet.
0 of 0 voted
Rank the options of P-1: type `vote P-1 2 1 3`
You are @ben in #general (local).
✓ Recorded your vote on P-1: Scope > Date > Both
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · by @ana
  1. Date   ██████████░░░░░░░░░░ 1
  2. Scope  ████████████████████ 2 ★
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
Leading: Scope · Order: Scope > Date > Both
1 of 2 voted · not yet: @ana
Rank the options of P-1: type `vote P-1 2 1 3`
You are @cy in #general (local).
✓ Recorded your vote on P-1: Both > Scope
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · by @ana
  1. Date   ░░░░░░░░░░░░░░░░░░░░ 0
  2. Scope  ████████████████████ 1
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
Tie between Scope and Both · Order: Scope = Both > Date
2 of 3 voted · not yet: @ana
Rank the options of P-1: type `vote P-1 2 1 3`
You are @ana in #general (local).
✓ Recorded your vote on P-1: Date > Scope
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · by @ana
  1. Date   ██████████░░░░░░░░░░ 1
  2. Scope  ████████████████████ 2 ★
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
Leading: Scope · Order: Scope > Date > Both
3 of 3 voted
Rank the options of P-1: type `vote P-1 2 1 3`
P-2 · Spend 5 points
────────────────────
5 points to spread · by @ana
  1. Infra  ░░░░░░░░░░░░░░░░░░░░ 0
  2. UX     ░░░░░░░░░░░░░░░░░░░░ 0
  3. Docs   ░░░░░░░░░░░░░░░░░░░░ 0
No votes yet.
0 of 3 voted · not yet: @ana, @ben, @cy
Spread up to 5 points: type `vote P-2 1=2 3=1`
You are @ben in #general (local).
✓ Recorded your vote on P-2: Infra 3, UX 2
P-2 · Spend 5 points
────────────────────
5 points to spread · by @ana
  1. Infra  ████████████████████ 3 ★
  2. UX     █████████████░░░░░░░ 2
  3. Docs   ░░░░░░░░░░░░░░░░░░░░ 0
Leading: Infra
1 of 3 voted · not yet: @ana, @cy
Spread up to 5 points: type `vote P-2 1=2 3=1`
You are @cy in #general (local).
✗ That is 6 points; P-2 allows at most 5.
  Usage: vote <P-ID> <choice>... [| <reason>]
✓ Recorded your vote on P-2: Docs 5
P-2 · Spend 5 points
────────────────────
5 points to spread · by @ana
  1. Infra  ████████████░░░░░░░░ 3
  2. UX     ████████░░░░░░░░░░░░ 2
  3. Docs   ████████████████████ 5 ★
Leading: Docs
2 of 3 voted · not yet: @ana
Spread up to 5 points: type `vote P-2 1=2 3=1`
✓ Changed your vote on P-2: UX 4, Docs 1
P-2 · Spend 5 points
────────────────────
5 points to spread · by @ana
  1. Infra  ██████████░░░░░░░░░░ 3
  2. UX     ████████████████████ 6 ★
  3. Docs   ███░░░░░░░░░░░░░░░░░ 1
Leading: UX
2 of 3 voted · not yet: @ana
Spread up to 5 points: type `vote P-2 1=2 3=1`
✗ Only @ana or a workspace admin can close P-1.
  Usage: close <P-ID> [decide [pick:<option>]]
You are @ana in #general (local).
✓ Closed P-1: Scope · recorded D-1
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · closed Wed 2026-11-25 09:00 UTC · by @ana
  1. Date   ██████████░░░░░░░░░░ 1
  2. Scope  ████████████████████ 2 ★
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
Winner: Scope · Order: Scope > Date > Both
3 of 3 voted
Links: decided as D-1
✓ Closed P-2: UX · recorded D-2
P-2 · Spend 5 points
────────────────────
5 points to spread · closed Wed 2026-11-25 09:00 UTC · by @ana
  1. Infra  ██████████░░░░░░░░░░ 3
  2. UX     ████████████████████ 6 ★
  3. Docs   ███░░░░░░░░░░░░░░░░░ 1
Winner: UX
2 of 3 voted · not yet: @ana
Links: decided as D-2
D-1 · Ship date or scope? → Scope
─────────────────────────────────
Result of P-1 (schulze): Scope > Date > Both; 3 of 3 voted.
  Status:      accepted
  Owner:       nobody
  Date:        2026-11-25
  By:          @ana
Links: from poll P-1
Frozen tally of P-1: winner Scope; ranking Scope > Date > Both

History:
  Wed 2026-11-25 09:00 UTC created  (@ana)
P-1 · Ship date or scope?
─────────────────────────
ranked (schulze) · closed Wed 2026-11-25 09:00 UTC · by @ana
  1. Date   ██████████░░░░░░░░░░ 1
  2. Scope  ████████████████████ 2 ★
  3. Both   ░░░░░░░░░░░░░░░░░░░░ 0
Winner: Scope · Order: Scope > Date > Both
3 of 3 voted
Pairwise (row preferred over column)
       1   2   3
  1    —   1   2
  2    2   —   2
  3    1   1   —
Strongest paths
       1   2   3
  1    —   0   2
  2    2   —   2
  3    0   0   —
Condorcet winner: Scope
Links: decided as D-1

History:
  Wed 2026-11-25 09:00 UTC created  (@ana)
  Wed 2026-11-25 09:00 UTC closed: winner “Scope”; ranking Scope > Date > Both; recorded as D-1  (@ana)
✗ P-1 closed on Wed 2026-11-25 09:00 UTC.
  Usage: vote <P-ID> <choice>... [| <reason>]
"""  # noqa: E501 (the rendered transcript, verbatim)


def run(app: App, script: str) -> list[str]:
    out = io.StringIO()
    Console(app.engine, console_actor("local", "general", "ana"), out=out).run(script.splitlines())
    return out.getvalue().splitlines()


def test_three_people_run_a_ranked_and_a_dots_poll_and_decide(app: App) -> None:
    lines = run(app, SCRIPT)
    assert lines == EXPECTED.splitlines()
