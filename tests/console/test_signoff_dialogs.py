"""Sign-off in the console, as a team runs it: a proposal, approvers' stances (and advice from
others), the three rules, reasons required, overrides, reviews and `pending` — with the console's
scheduler and outbox in the loop, so what the channel, the informed people and channels are told
appears in the terminal as it would be delivered. On SQLite and PostgreSQL (the `app` fixture)."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.bootstrap import App
from adapters.console.repl import Console, console_actor
from adapters.console.runtime import ConsoleRuntime, start_console_runtime
from bot.clock import FakeClock
from tests.console.conftest import key_lines_in_order

PROPOSE = (
    "propose Launch in EU first | GDPR work is done approvers:@ana,@ben consulted:@cho "
    "informed:@dee,#roadmap due:fri"
)


class Team:
    """People typing in one console, and the scheduler that delivers what the outbox holds."""

    def __init__(self, app: App, clock: FakeClock) -> None:
        self.out = io.StringIO()
        self.clock = clock
        self.console = Console(app.engine, console_actor("local", "general", "pm"), out=self.out)
        self.runtime: ConsoleRuntime = start_console_runtime(app, self.console, start=False)

    def _read_from(self, start: int) -> str:
        self.out.seek(start)
        return self.out.read().rstrip("\n")

    def say(self, line: str, *, by: str | None = None) -> str:
        if by is not None:
            self.console.line(f":as {by}")
        start = self.out.seek(0, io.SEEK_END)
        self.console.line(line)
        return self._read_from(start)

    def expect(self, line: str, lines: str, *, by: str | None = None) -> str:
        got = self.say(line, by=by)
        try:
            key_lines_in_order(lines, got)
        except AssertionError as exc:
            raise AssertionError(f"after {line!r}: {exc}") from None
        return got

    def tick(self) -> str:
        """One wake-up of the scheduler: what it delivered to the terminal."""
        start = self.out.seek(0, io.SEEK_END)
        self.runtime.tick()
        return self._read_from(start)


@pytest.fixture
def team(app: App, clock: FakeClock) -> Iterator[Team]:
    found = Team(app, clock)
    try:
        yield found
    finally:
        found.runtime.stop()


def test_all_rule_advice_does_not_count_a_block_holds_and_the_last_agree_accepts(
    team: Team,
) -> None:
    team.expect(
        PROPOSE,
        """
        D-1 · Launch in EU first
        GDPR work is done
          Status:      proposed
          Rule:        all
          Due:         Fri 2026-11-27 17:00 UTC
          Owner:       @pm
        Approvers:
          @ana ⏳ not yet
          @ben ⏳ not yet
        0 of 2 approvers agree · waiting for @ana, @ben.
        Consulted: @cho · Informed: @dee, #roadmap
        Sign off: [Agree] `agree D-1` · [Abstain] `abstain D-1` · [Object] `object D-1 | <why>` · [Block] `block D-1 | <why>`
        """,
    )
    assert team.say("object D-1", by="zed") == (
        "✗ An objection needs a reason: `object D-1 | <why>`.\n  Usage: object <D-ID> | <reason>"
    )
    team.expect(
        "object D-1 | the legal review is not done",
        """
        ✓ Recorded your objection to D-1 — “the legal review is not done” (advice: only the approvers' stances count)
        Approvers:
          @ana ⏳ not yet
        Advice (does not count):
          @zed ⚠️ objects: the legal review is not done
        0 of 2 approvers agree · waiting for @ana, @ben.
        """,
    )
    team.expect(
        "agree D-1 | the numbers hold",
        """
        ✓ Recorded your agreement on D-1 — “the numbers hold”
          @ana ✅ agrees: the numbers hold
          @ben ⏳ not yet
        1 of 2 approvers agree · waiting for @ben.
        """,
        by="ana",
    )
    assert team.say("block D-1 |  ", by="ben").startswith(
        "✗ A block needs a reason: `block D-1 | <why>`."
    )
    team.expect(
        "block D-1 | it breaks the data residency promise",
        """
        ✓ Recorded your block on D-1 — “it breaks the data residency promise”
          @ben ⛔ blocks: it breaks the data residency promise
        1 of 2 approvers agree · held by @ben.
        """,
    )
    assert team.tick() == ""  # nothing is accepted, nobody is told anything
    got = team.expect(
        "agree D-1 | residency is covered by the EU region",
        """
        ✓ Changed your stance on D-1: you agree — “residency is covered by the EU region”. D-1 is accepted.
          Status:      accepted
          @ana ✅ agrees: the numbers hold
          @ben ✅ agrees: residency is covered by the EU region
        Accepted (all).
        """,
    )
    assert "Sign off:" not in got  # no buttons once it is settled
    assert team.say("abstain D-1", by="ana") == (
        "✗ D-1 is accepted since 2026-11-25; stances can no longer change.\n"
        "  Usage: abstain <D-ID> [| <reason>]"
    )
    delivered = team.tick()
    key_lines_in_order(
        """
        ✅ D-1 accepted — @ana, @ben agreed
        “Launch in EU first”
        Reasons given:
          @ana agreed: the numbers hold
          @ben agreed: residency is covered by the EU region
        """,
        delivered,
    )
    told = (
        "For your information: D-1 “Launch in EU first” was accepted in #general — "
        "D-1 accepted — @ana, @ben agreed."
    )
    # Channels are delivered side by side, so the two notices may come in either order.
    for where in ("── to @dee, privately ──", "── in #roadmap (local) ──"):
        assert f"{where}\n{told}" in delivered, delivered
    assert delivered.count("For your information") == 2  # @dee once, #roadmap once
    assert "@cho" not in delivered  # consulted, not informed
    assert team.tick() == ""  # told once
    team.expect(
        "show D-1",
        """
        Approvers:
          @ana ✅ agrees: the numbers hold  (Wed 2026-11-25 09:00 UTC)
          @ben ✅ agrees: residency is covered by the EU region  (Wed 2026-11-25 09:00 UTC)
        Advice (does not count):
          @zed ⚠️ objects: the legal review is not done  (Wed 2026-11-25 09:00 UTC)
        Settled Wed 2026-11-25 09:00 UTC: accepted (all):
          @zed objects: the legal review is not done  (advice)
        History:
          Wed 2026-11-25 09:00 UTC created  (@pm)
          Wed 2026-11-25 09:00 UTC objected: “the legal review is not done” (advice)  (@zed)
          Wed 2026-11-25 09:00 UTC agreed: “the numbers hold”  (@ana)
          Wed 2026-11-25 09:00 UTC blocked: “it breaks the data residency promise”  (@ben)
          Wed 2026-11-25 09:00 UTC changed stance: blocked → agreed: “residency is covered by the EU region”  (@ben)
          Wed 2026-11-25 09:00 UTC accepted by sign-off (all): @ana agreed, @ben agreed  (@ben)
        """,
    )


def test_majority_hears_objections_but_a_block_holds(team: Team) -> None:
    team.expect(
        "propose Move standup to 10:00 approvers:@ana,@ben,@cho rule:majority",
        "  Rule:        majority",
    )
    team.expect("agree D-1", "1 of 3 approvers agree · waiting for @ben, @cho.", by="ana")
    team.expect(
        "object D-1 | mornings are for focus",
        "1 of 3 approvers agree · waiting for @cho.",  # an objection does not hold a majority
        by="ben",
    )
    team.expect("agree D-1", "✓ Recorded your agreement on D-1. D-1 is accepted.", by="cho")
    key_lines_in_order(
        """
        ✅ D-1 accepted — @ana, @cho agreed; @ben objected
        Reasons given:
          @ben objected: mornings are for focus
        """,
        team.tick(),
    )

    team.expect(
        "propose Drop the Friday release approvers:@ana,@ben,@cho rule:majority",
        "D-2 · Drop the Friday release",
        by="pm",
    )
    team.expect(
        "block D-2 | customers rely on it",
        "0 of 3 approvers agree · held by @cho · waiting for @ana, @ben.",
        by="cho",
    )
    team.expect("agree D-2", "1 of 3 approvers agree · held by @cho · waiting for @ben.", by="ana")
    got = team.expect("agree D-2", "2 of 3 approvers agree · held by @cho.", by="ben")
    assert "Status:      proposed" in got  # more than half agree, yet the block holds it
    team.expect(
        "abstain D-2 | ok, we can tell them",
        "✓ Changed your stance on D-2: you abstain — “ok, we can tell them”. D-2 is accepted.",
        by="cho",
    )


def test_consent_is_accepted_at_the_due_time_unless_someone_objects(
    team: Team, clock: FakeClock
) -> None:
    team.expect("propose Adopt the new API style guide approvers:@ana,@ben rule:consent", "")
    assert team.say("show D-1") == "✗ D-1 not found in this channel.\n  Usage: show <ID>"
    team.expect(
        "propose Adopt the new API style guide approvers:@ana,@ben rule:consent due:2d",
        """
          Rule:        consent
          Due:         Fri 2026-11-27 09:00 UTC
        0 of 2 approvers agree · waiting for @ana, @ben · accepted at Fri 2026-11-27 09:00 UTC unless someone objects.
        """,
    )
    team.expect(
        "propose Rename the repo approvers:@ana,@ben rule:consent due:2d", "D-2 · Rename the repo"
    )
    team.expect(
        "agree D-1",
        "1 of 2 approvers agree · waiting for @ben · accepted at Fri 2026-11-27 09:00 UTC unless someone objects.",
        by="ana",
    )
    team.expect("agree D-1", "Status:      proposed", by="ben")  # all agree: still until due
    team.expect(
        "object D-2 | links from old docs will break",
        "0 of 2 approvers agree · held by @ben · waiting for @ana.",
        by="ben",
    )

    clock.advance(timedelta(days=1) - timedelta(minutes=1))
    assert team.tick() == ""
    clock.advance(timedelta(minutes=1))  # 24 hours before due: who has not answered is reminded
    assert team.tick() == (
        "Reminder: @ana — D-2 “Rename the repo” waits for your sign-off; it is due "
        "Fri 2026-11-27 09:00 UTC.\n"
        "Answer with `agree D-2`, `abstain D-2`, `object D-2 | <why>` or `block D-2 | <why>`."
    )
    assert team.tick() == ""  # once
    clock.advance(timedelta(days=1) - timedelta(minutes=1))
    assert team.tick() == ""
    clock.advance(timedelta(minutes=1))
    delivered = team.tick()
    key_lines_in_order(
        """
        ✅ D-1 accepted at its due time (consent) — @ana, @ben agreed
        ✋ D-2 “Rename the repo” was due Fri 2026-11-27 09:00 UTC and is held: @ben objected.
        When the objection is resolved it is accepted by hand: `status D-2 accepted` (its owner or an admin).
        """,
        delivered,
    )
    assert team.tick() == ""  # each once
    team.expect("show D-1", "  Status:      accepted", by="pm")
    team.expect("show D-2", "  Status:      proposed")
    assert team.say("status D-2 accepted", by="ana").startswith(
        "✗ Only @pm or a workspace admin can change the status of D-2."
    )
    team.expect(
        "status D-2 accepted",
        """
        ✓ D-2 is now accepted (an override; the stances standing are recorded)
        Accepted by @pm (override).
        """,
        by="pm",
    )
    assert team.tick().startswith(
        "✅ D-2 accepted by @pm (override) — @ben objected; @ana did not answer"
    )
    team.expect(
        "show D-2",
        """
        Settled Fri 2026-11-27 09:00 UTC: accepted by @pm (override):
          @ben objects: links from old docs will break  (approver)
        History:
          Fri 2026-11-27 09:00 UTC overridden: accepted; stances standing: @ana no answer, @ben objected  (@pm)
        """,
    )


def test_nobody_changes_the_status_of_a_decision_they_neither_made_nor_own(
    team: Team,
) -> None:
    team.say("decide Use Postgres owner:@ana")
    assert team.say("status D-1 rejected", by="zed") == (
        "✗ Only @pm or @ana or a workspace admin can change the status of D-1.\n"
        "  Usage: status <D-ID> proposed|accepted|rejected|superseded [by:D-ID]"
    )
    team.expect("status D-1 rejected", "  Status:      rejected", by="ana")  # the owner may
    team.expect("status D-1 accepted", "  Status:      accepted", by="pm")  # and the maker
    team.expect("show D-1", "Wed 2026-11-25 09:00 UTC changed: status rejected → accepted  (@pm)")


def test_only_its_driver_edits_a_proposal(team: Team) -> None:
    team.say(PROPOSE)
    assert team.say("edit D-1 due:3d", by="ana") == (
        "✗ Only @pm or a workspace admin can edit D-1.\n  Usage: edit <ID> field:value..."
    )
    assert team.say('edit D-1 title:"Launch everywhere"', by="zed").startswith("✗ Only @pm")
    team.expect(
        "edit D-1 due:3d review:6m",
        """
          Due:         Sat 2026-11-28 09:00 UTC
          Review:      Tue 2027-05-25 09:00 UTC
        """,
        by="pm",
    )


def test_a_proposal_is_not_found_from_another_channel_or_workspace(team: Team) -> None:
    team.say(PROPOSE)
    team.console.line(":in random")
    for line in ("agree D-1", "object D-1 | x", "show D-1", "nudge D-1", "status D-1 accepted"):
        assert team.say(line, by="ana").splitlines()[0] == "✗ D-1 not found in this channel."
    assert "Nothing waits for you" in team.say("pending", by="ana")
    team.console.line(":in general")
    team.console.line(":workspace acme")
    assert team.say("agree D-1", by="ana").startswith("✗ D-1 not found in this channel.")
    team.console.line(":workspace local")
    team.expect("show D-1", "@ana ⏳ not yet")  # nothing was recorded from elsewhere


def test_pending_lists_what_you_owe_here_across_kinds(team: Team) -> None:
    team.say(PROPOSE)
    team.say("propose Second thing approvers:@ben")
    team.say('poll "Lunch?" "Pizza" "Salad"')
    team.say('poll "Offsite?" "Yes" "No"')
    team.say("vote P-2 1", by="ana")
    team.say("ask Which regions? owner:@ana due:fri", by="pm")
    team.say("ask Who pays? owner:@ben")
    assert team.say("pending", by="ana") == (
        "Waiting for you here\n"
        "────────────────────\n"
        "Sign-offs you owe:\n"
        "  D-1 Launch in EU first  (due Fri 2026-11-27 17:00 UTC)\n"
        "Polls you have not voted in:\n"
        "  P-1 Lunch?\n"
        "Questions you own:\n"
        "  Q-1 Which regions?  (due Fri 2026-11-27 17:00 UTC)"
    )
    team.say("agree D-1")
    assert "Sign-offs you owe:\n  None." in team.say("pending")
    team.console.line(":in random")
    assert team.say("pending") == (
        "Waiting for you here\n────────────────────\nNothing waits for you in this channel. 🎉"
    )


def test_nudge_reminds_approvers_who_have_not_answered(team: Team) -> None:
    team.say(PROPOSE)
    team.say("agree D-1", by="ana")
    assert team.say("nudge D-1", by="pm").splitlines()[0] == (
        "Reminder: @ben — D-1 “Launch in EU first” waits for your sign-off; it is due "
        "Fri 2026-11-27 17:00 UTC."
    )
    team.say("abstain D-1", by="ben")
    assert team.say("nudge D-1").startswith("✗ D-1 is accepted since 2026-11-25")


def test_a_review_reminds_the_owner_who_keeps_or_revisits(team: Team, clock: FakeClock) -> None:
    team.expect(
        "decide Use Postgres review:2w owner:@ana", "  Review:      Wed 2026-12-09 09:00 UTC"
    )
    team.say("propose Price in EUR approvers:@ben review:1m")
    team.say("agree D-2", by="ben")
    assert team.tick().startswith("✅ D-2 accepted — @ben agreed")
    clock.advance(timedelta(weeks=2))
    delivered = team.tick()
    assert delivered == (
        "Time to review D-1 “Use Postgres” (accepted): @ana, does it still hold?\n"
        "Review: [Keep] `review D-1 keep` · [Revisit] `review D-1 revisit`\n"
        "Or type `review D-1 keep next:6m`."
    )
    assert team.tick() == ""  # once per review date
    assert team.say("review D-1 keep", by="zed").startswith(
        "✗ Only @pm or @ana or a workspace admin can review D-1."
    )
    team.expect(
        "review D-1 keep next:3m",
        "✓ Kept D-1 as accepted; next review Tue 2027-03-09 09:00 UTC",
        by="ana",
    )
    clock.advance(timedelta(weeks=3))
    assert team.tick().startswith("Time to review D-2 “Price in EUR” (accepted): @pm")
    team.expect(
        "review D-2 revisit",
        """
        ↺ Reopened D-2 as proposed — 1 approver asked again
          Status:      proposed
          @ben ⏳ not yet
        Sign off: [Agree] `agree D-2` · [Abstain] `abstain D-2` · [Object] `object D-2 | <why>` · [Block] `block D-2 | <why>`
        """,
        by="pm",
    )
    team.expect(
        "show D-2",
        """
        History:
          Wed 2026-12-30 09:00 UTC reviewed: revisit  (@pm)
          Wed 2026-12-30 09:00 UTC reopened as proposed (was accepted); stances cleared: @ben agreed  (@pm)
        """,
    )
    team.expect("agree D-2", "✓ Recorded your agreement on D-2. D-2 is accepted.", by="ben")


def test_link_reads_both_ways(team: Team) -> None:
    team.say(PROPOSE)
    team.say("item EU region")
    team.say("ask Which regions?")
    assert team.say("link D-1 I-1") == "Linked D-1 and I-1."
    assert team.say("link I-1 D-1").startswith("✗ I-1 and D-1 are already linked.")
    assert team.say("link Q-1 D-1") == "Linked Q-1 and D-1."
    team.expect("show D-1", "Links: linked to I-1, Q-1")
    team.expect(
        "show I-1",
        "Links: linked to D-1\nHistory:\n  Wed 2026-11-25 09:00 UTC linked: to D-1  (@pm)",
    )
    team.expect("show Q-1", "Links: linked to D-1")
    team.console.line(":in random")
    team.say("item Elsewhere")
    assert team.say("link D-1 I-2").startswith("✗ D-1 not found in this channel.")


def test_digest_and_madr_export_carry_the_sign_off(team: Team, clock: FakeClock) -> None:
    team.say(PROPOSE)
    team.say("propose Second thing approvers:@ben,@cho due:3d")
    team.say("decide Use Postgres review:3d")
    team.say("agree D-1", by="ana")
    team.say("abstain D-1 | not my area", by="ben")
    team.say("agree D-2", by="ben")
    team.expect(
        "digest",
        """
        Decisions recorded:
          D-3 Use Postgres  (accepted)
        Accepted with sign-off:
          D-1 Launch in EU first  (all · @ana agreed, @ben abstained)
        Waiting for sign-off:
          D-2 Second thing  (1 of 2 answered · due Sat 2026-11-28 09:00 UTC)
        Due for review:
          D-3 Use Postgres  (review Sat 2026-11-28 09:00 UTC)
        """,
        by="pm",
    )
    body = team.say("export decisions")
    key_lines_in_order(
        """
        # D-1: Launch in EU first
        * Status: accepted
        * Date: 2026-11-25
        * Decision-makers: @ana, @ben
        * Consulted: @cho
        * Informed: @dee, #roadmap
        ## Decision Outcome
        Chosen: Launch in EU first
        Accepted by sign-off (all) on 2026-11-25.
        * @ana agreed
        * @ben abstained: not my area
        # D-2: Second thing
        * Status: proposed
        * Decision-makers: @ben, @cho
        # D-3: Use Postgres
        * Decision-makers: @pm
        """,
        body,
    )
