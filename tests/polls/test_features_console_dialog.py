"""The poll features as a dialog through the console adapter (what `align chat` prints): a
public multi poll with a cap and open options, reasons, an option added by someone else, a click
past the cap refused, an edit refused to a non-creator; then an anonymous poll whose tally stays
hidden until it is closed and whose reason names nobody."""

from __future__ import annotations

import io

from adapters.bootstrap import App
from adapters.console.repl import Console, console_actor

SCRIPT = """\
poll "Lunch?" "Pizza" "Sushi" mode:multi max:2 public options:open
:as ben
vote P-1 1 2 | both are near
edit P-1 add:"Ramen"
vote P-1 ~3
:as cy
vote P-1 3 | ramen, obviously
edit P-1 title:Dinner?
poll "Sealed?" "Yes" "No" results:hidden anonymous
vote P-2 1 | no one may know
:as ana
vote P-2 2
results P-2
:as cy
close P-2
"""

EXPECTED = """\
P-1 · Lunch?
────────────
up to 2 choices · public: everyone sees who chose what · anyone may add options · by @ana
  1. Pizza  ░░░░░░░░░░░░░░░░░░░░ 0
  2. Sushi  ░░░░░░░░░░░░░░░░░░░░ 0
No votes yet.
0 of 0 voted
Who chose what:
  1. Pizza —
  2. Sushi —
Vote: [Pizza] `vote P-1 ~1` · [Sushi] `vote P-1 ~2`
Say why: `vote P-1 <choice> | <reason>`.
Anyone here may add an option: [Add option] `edit P-1 add:"…"`
You are @ben in #general (local).
✓ Recorded your vote on P-1: Pizza, Sushi | both are near
P-1 · Lunch?
────────────
up to 2 choices · public: everyone sees who chose what · anyone may add options · by @ana
  1. Pizza  ████████████████████ 1
  2. Sushi  ████████████████████ 1
Tie between Pizza and Sushi
1 of 2 voted · not yet: @ana
Who chose what:
  1. Pizza @ben
  2. Sushi @ben
Reasons:
  @ben “both are near”  (Pizza, Sushi)
Vote: [Pizza] `vote P-1 ~1` · [Sushi] `vote P-1 ~2`
Say why: `vote P-1 <choice> | <reason>`.
Anyone here may add an option: [Add option] `edit P-1 add:"…"`
P-1 · Lunch?
────────────
up to 2 choices · public: everyone sees who chose what · anyone may add options · by @ana
  1. Pizza  ████████████████████ 1
  2. Sushi  ████████████████████ 1
  3. Ramen  ░░░░░░░░░░░░░░░░░░░░ 0
Tie between Pizza and Sushi
1 of 2 voted · not yet: @ana
Who chose what:
  1. Pizza @ben
  2. Sushi @ben
  3. Ramen —
Reasons:
  @ben “both are near”  (Pizza, Sushi)
Vote: [Pizza] `vote P-1 ~1` · [Sushi] `vote P-1 ~2` · [Ramen] `vote P-1 ~3`
Say why: `vote P-1 <choice> | <reason>`.
Anyone here may add an option: [Add option] `edit P-1 add:"…"`
✗ P-1 allows at most 2 choices; that would make 3 (Pizza, Sushi, Ramen). Unpick one first: click it again, or type `vote P-1 -<number>`.
  Usage: vote <P-ID> <choice>... [| <reason>]
You are @cy in #general (local).
✓ Recorded your vote on P-1: Ramen | ramen, obviously
P-1 · Lunch?
────────────
up to 2 choices · public: everyone sees who chose what · anyone may add options · by @ana
  1. Pizza  ████████████████████ 1
  2. Sushi  ████████████████████ 1
  3. Ramen  ████████████████████ 1
Tie between Pizza, Sushi and Ramen
2 of 3 voted · not yet: @ana
Who chose what:
  1. Pizza @ben
  2. Sushi @ben
  3. Ramen @cy
Reasons:
  @ben “both are near”  (Pizza, Sushi)
  @cy  “ramen, obviously”  (Ramen)
Vote: [Pizza] `vote P-1 ~1` · [Sushi] `vote P-1 ~2` · [Ramen] `vote P-1 ~3`
Say why: `vote P-1 <choice> | <reason>`.
Anyone here may add an option: [Add option] `edit P-1 add:"…"`
✗ Only @ana or a workspace admin can edit P-1. Anyone here may add an option: `edit P-1 add:"…"`.
  Usage: edit <ID> field:value...
P-2 · Sealed?
─────────────
one choice · anonymous · results hidden until it closes · by @cy
Results are hidden until P-2 closes (by hand).
0 of 3 voted
Vote: [Yes] `vote P-2 1` · [No] `vote P-2 2`
Say why: `vote P-2 <choice> | <reason>`.
✓ Recorded your vote on P-2: your vote is secret · results are hidden until the poll closes
P-2 · Sealed?
─────────────
one choice · anonymous · results hidden until it closes · by @cy
Results are hidden until P-2 closes (by hand).
1 of 3 voted
Vote: [Yes] `vote P-2 1` · [No] `vote P-2 2`
Say why: `vote P-2 <choice> | <reason>`.
You are @ana in #general (local).
✓ Recorded your vote on P-2: your vote is secret · results are hidden until the poll closes
P-2 · Sealed?
─────────────
one choice · anonymous · results hidden until it closes · by @cy
Results are hidden until P-2 closes (by hand).
2 of 3 voted
Vote: [Yes] `vote P-2 1` · [No] `vote P-2 2`
Say why: `vote P-2 <choice> | <reason>`.
P-2 · Sealed?
─────────────
one choice · anonymous · results hidden until it closes · by @cy
Results are hidden until P-2 closes (by hand).
2 of 3 voted
You are @cy in #general (local).
✓ Closed P-2: a tie
P-2 · Sealed?
─────────────
one choice · anonymous · closed Wed 2026-11-25 09:00 UTC · by @cy
  1. Yes  ████████████████████ 1
  2. No   ████████████████████ 1
Tie between Yes and No
2 of 3 voted
Reasons:
   “no one may know”
"""  # noqa: E501 (the rendered transcript, verbatim)


def run(app: App, script: str) -> list[str]:
    out = io.StringIO()
    Console(app.engine, console_actor("local", "general", "ana"), out=out).run(script.splitlines())
    return out.getvalue().splitlines()


def test_public_capped_open_and_hidden_polls_in_the_console(app: App) -> None:
    assert run(app, SCRIPT) == EXPECTED.splitlines()
