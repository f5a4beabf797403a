"""Bad input anywhere: one short line saying what was wrong, the verb's usage line, and nothing
stored — for a table of malformed commands, verb by verb."""

# ruff: noqa: E501 — expected replies are kept verbatim, one line each, as the bot prints them.
from __future__ import annotations

import pytest

from adapters.bootstrap import App
from bot import grammar
from bot.context import Actor
from tests.engine.dump import counts

ME = Actor("local", "general", "pm")
SEED = (
    "decide Use Postgres",
    "item SSO",
    "item Dark mode",
    "ask Which regions?",
    'poll "Ship?" "Date" "Scope"',
    "ask Answered? owner:@pm",
    "answer Q-2 yes",
)

MALFORMED: list[tuple[str, str, str]] = [
    # (verb whose usage is shown, command, the reason, exactly)
    ("help", "help nope", "There is no command `nope`."),
    ("decide", "decide", "A decision needs a title."),
    ("decide", "decide | only a rationale", "A decision needs a title."),
    (
        "decide",
        "decide x status:superseded",
        "A new decision's status is proposed, accepted or rejected.",
    ),
    ("decide", "decide x owner:ana", "`ana` is not a person; mention them like @ana."),
    ("decide", "decide x owner:<at>Nobody</at>", "I can't tell who <at>Nobody</at> is."),
    ("decide", "decide x tag:", "`tag:` needs a value."),
    ("decide", 'decide "never closed', 'A quote was opened but not closed: "never closed…'),
    (
        "decisions",
        "decisions status:maybe",
        "Status is one of proposed, accepted, rejected, superseded.",
    ),
    (
        "decisions",
        "decisions since:someday",
        "I can't read `someday` as a starting time. Use a date (2026-11-01), a day (mon, yesterday) or how long ago (3d, 48h, 2w).",
    ),
    ("show", "show", "Give one id."),
    ("show", "show D-1 I-1", "Give one id."),
    ("show", "show X-1", "`X-1` is not an id like D-12, I-7, Q-3 or P-5."),
    ("status", "status D-1", "Give a decision id and a status."),
    ("status", "status D-1 maybe", "Status is one of proposed, accepted, rejected, superseded."),
    ("status", "status I-1 accepted", "I-1 is not a decision id like D-12."),
    ("status", "status D-1 superseded by:D-1", "A decision cannot supersede itself."),
    ("status", "status D-1 rejected by:D-1", "by: goes with superseded."),
    ("status", "status D-1 accepted", "D-1 is already accepted."),
    ("item", "item", "An item needs a title."),
    ("item", "item x lane:soon", "lane is now, next or later."),
    (
        "item",
        "item x impact:7",
        "Impact 7 is not allowed. Impact uses Intercom's scale: 3 (massive), 2 (high), 1 (medium), 0.5 (low), 0.25 (minimal).",
    ),
    ("item", "item x confidence:101%", "Confidence is a percentage from 0% to 100%."),
    ("item", "item x reach:-5", "Reach counts people or events: from 0 to 1,000,000,000,000."),
    (
        "item",
        "item x reach:1e308 impact:3 confidence:100 effort:1",
        "Reach counts people or events: from 0 to 1,000,000,000,000.",
    ),
    ("item", "item x effort:0", "Effort is in person-months: from 0.01 to 1,000,000."),
    ("item", "item x reach:nan", "reach must be a number, not `nan`."),
    ("score", "score I-1", "Give at least one of reach, impact, confidence, effort."),
    (
        "score",
        "score impact:1",
        "Give one item id and at least one of reach, impact, confidence, effort.",
    ),
    ("score", "score D-1 impact:1", "D-1 is not an item id like I-7."),
    (
        "score",
        "score I-1 impact:1.5",
        "Impact 1.5 is not allowed. Impact uses Intercom's scale: 3 (massive), 2 (high), 1 (medium), 0.5 (low), 0.25 (minimal).",
    ),
    ("score", "score I-9 impact:1", "I-9 not found in this channel."),
    ("move", "move I-1", "Give an item id and a lane."),
    ("move", "move I-1 sideways", "The lane is now, next, later or done."),
    ("move", "move I-1 later", "I-1 is already in later."),
    ("priorities", "priorities everything", "`everything` is not an option here."),
    ("priorities", "priorities by:magic", "by: is rice or votes."),
    ("priorities", "priorities lane:soon", "lane is now, next, later or done."),
    ("roadmap", "roadmap now", "roadmap takes no arguments."),
    ("ask", "ask", "What is the question?"),
    (
        "ask",
        "ask x due:someday",
        "I can't read `someday` as a time. Use a date (2026-12-01), a day (fri, friday 17:00), a time (17:00) or 3d, 48h, 2w.",
    ),
    (
        "ask",
        "ask x due:2026-02-30",
        "`2026-02-30` is not a date. Use a date (2026-12-01), a day (fri, friday 17:00), a time (17:00) or 3d, 48h, 2w.",
    ),
    ("ask", "ask x owner:nobody", "`nobody` is not a person; mention them like @ana."),
    ("questions", "questions closed", "Choose open, overdue, mine or all."),
    ("answer", "answer", "Give a question id and the answer."),
    ("answer", "answer Q-1", "What is the answer?"),
    ("answer", "answer Q-1 decide", "What is the answer?"),
    ("answer", "answer I-1 yes", "I-1 is not a question id like Q-3."),
    ("answer", "answer Q-2 again", "Q-2 was already answered: yes"),
    ("poll", 'poll "Only one option?" "a"', None),
    ("poll", 'poll "Q" "a" "b" mode:weird', None),
    ("vote", "vote", "Which poll?"),
    ("vote", "vote P-1 9", "P-1 has options 1 to 2."),
    ("vote", "vote D-1 1", "D-1 is not a poll id like P-5."),
    ("results", "results", "Which poll?"),
    ("close", "close P-1 now", "Give a poll id, optionally followed by decide."),
    ("prioritize", "prioritize I-1", "Prioritize 2 to 25 items; you gave 1."),
    ("prioritize", "prioritize I-1 I-1", "An item is listed twice."),
    ("edit", "edit D-1", "Give one id and at least one field:value."),
    ("edit", "edit D-1 due:fri", "D-1 is not a proposal, so it has no due time."),
    (
        "edit",
        "edit D-1 add:x",
        "A decision has no `add` to edit; use title, rationale, owner, tags, due (a proposal's) or review.",
    ),
    ("edit", "edit D-1 review:2020-01-01", "The review date must be in the future."),
    (
        "edit",
        "edit I-1 owner:@ana",
        "An item has no `owner` to edit; use title or tags (move changes the lane, score the RICE inputs).",
    ),
    (
        "edit",
        "edit Q-1 rationale:x",
        "A question has no `rationale` to edit; use text, owner or due.",
    ),
    (
        "edit",
        "edit Q-1 due:someday",
        "I can't read `someday` as a time. Use a date (2026-12-01), a day (fri, friday 17:00), a time (17:00) or 3d, 48h, 2w.",
    ),
    ("edit", "edit D-1 title:Use Postgres", None),
    ("edit", "edit D-1 title:“Use Postgres”", "Nothing changed on D-1."),
    ("nudge", "nudge", "Give a poll, question or proposal id."),
    ("nudge", "nudge I-1", "I-1 is not a poll or question or decision id like P-5, Q-3 or D-12."),
    (
        "nudge",
        "nudge D-1",
        "D-1 is not a proposal: nobody was asked to sign it off (`propose <title> approvers:@a,@b` asks them).",
    ),
    ("propose", "propose", "A proposal needs a title."),
    (
        "propose",
        "propose Ship it",
        "Name who signs it off: approvers:@ana,@ben (their stances decide).",
    ),
    ("propose", "propose Ship it approvers:ana", "`ana` is not a person; mention them like @ana."),
    (
        "propose",
        "propose Ship it approvers:#general",
        "Approvers are people; `#general` is a channel.",
    ),
    (
        "propose",
        "propose Ship it approvers:@ana rule:unanimous",
        "rule is one of all, majority, consent.",
    ),
    (
        "propose",
        "propose Ship it approvers:@ana rule:consent",
        "rule:consent needs due: — it is accepted at that time unless someone objects.",
    ),
    (
        "propose",
        "propose Ship it approvers:@ana due:2020-01-01",
        "The due time must be in the future.",
    ),
    (
        "propose",
        "propose Ship it approvers:@ana review:2020-01-01",
        "The review date must be in the future.",
    ),
    ("agree", "agree", "Which proposal? Give its id, like D-7."),
    ("agree", "agree P-1", "P-1 is not a decision id like D-12."),
    ("agree", "agree D-99", "D-99 not found in this channel."),
    (
        "abstain",
        "abstain D-1 | x",
        "D-1 is not a proposal: nobody was asked to sign it off (`propose <title> approvers:@a,@b` asks them).",
    ),
    (
        "pending",
        "pending all",
        "`pending` takes nothing more: it lists what waits for you in this channel.",
    ),
    ("object", "object D-1", "An objection needs a reason: `object D-1 | <why>`."),
    ("object", "object D-1 |   ", "An objection needs a reason: `object D-1 | <why>`."),
    ("block", "block D-1", "A block needs a reason: `block D-1 | <why>`."),
    ("agree", "agree D-1 D-2 | yes", "Put only the proposal's id before the `|`."),
    ("review", "review D-1", "Give a decision id and keep or revisit."),
    ("review", "review D-1 revisit next:3m", "next: goes with keep."),
    ("link", "link D-1", "Give two ids: a decision and what it relates to."),
    ("link", "link I-1 Q-1", "One of the two must be a decision (D-n)."),
    ("link", "link D-1 D-1", "D-1 cannot be linked to itself."),
    ("nudge", "nudge Q-1", "Q-1 has no owner to remind; set one with `edit Q-1 owner:@someone`."),
    ("export", "export", "Export decisions, items, questions or polls."),
    ("export", "export decisions format:pdf", "format is md, csv or json."),
]


@pytest.fixture
def seeded(app: App) -> App:
    for line in SEED:
        reply = app.engine.handle(ME, line)
        assert reply.ok, f"{line}: {reply.error}"
    return app


def test_every_malformed_command_fails_with_one_line_and_the_usage(seeded: App) -> None:
    before = counts(seeded)
    for verb, line, reason in MALFORMED:
        reply = seeded.engine.handle(ME, line)
        assert (reply.ok, reply.kind) == (False, "error"), line
        assert reply.error and "\n" not in reply.error, line
        if reason is not None:
            assert reply.error == reason, line
        assert reply.usage == "Usage: " + grammar.verb(verb).usage, line
        assert reply.ephemeral, line
    assert counts(seeded) == before


def test_the_table_covers_every_verb_of_the_foundation() -> None:
    covered = {verb for verb, _line, _reason in MALFORMED}
    assert covered >= set(grammar.VERB_NAMES) - {"digest", "webhook"}


def test_an_unknown_verb_lists_the_verbs_instead_of_a_usage_line(seeded: App) -> None:
    before = counts(seeded)
    reply = seeded.engine.handle(ME, "decied Use MySQL")
    assert not reply.ok and reply.usage is None
    assert reply.error == (
        "I don't know `decied`. Did you mean `decide`? Commands: "
        + ", ".join(grammar.VERB_NAMES)
        + "."
    )
    assert reply.data == {"code": "unknown_verb", "suggestion": "decide"}
    assert counts(seeded) == before
