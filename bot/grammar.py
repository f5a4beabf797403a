"""The verbs and object kinds of Align's one grammar.

This is the single place a usage line is written. `help`, every error reply, the README's command
table (`align commands --markdown`) and the Teams app manifest's command list are all read from it.
Each verb names its handler (`module.function` under `bot/`) next to its usage, and each object
kind its id prefix, model and module, so a new kind or verb is added here and in its own module —
the engine, the parser and `show`/`edit` find it from this table. Nothing here imports the
modules it names: the parser reads this file, and those modules read the parser.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kind:
    """An object kind: `D-12` is decision 12. `model` names its class in `storage.models`;
    `module` (under `bot/`) provides `snapshot`, `view` and `edit` for `show` and `edit`."""

    prefix: str
    noun: str
    plural: str
    model: str
    module: str
    example: int
    title_field: str


KINDS: tuple[Kind, ...] = (
    Kind("D", "decision", "decisions", "Decision", "decisions", 12, "title"),
    Kind("I", "item", "items", "Item", "items", 7, "title"),
    Kind("Q", "question", "questions", "Question", "questions", 3, "text"),
    Kind("P", "poll", "polls", "Poll", "polls", 5, "question"),
)
KIND_BY_PREFIX: dict[str, Kind] = {k.prefix: k for k in KINDS}
KIND_BY_NOUN: dict[str, Kind] = {k.noun: k for k in KINDS}
PREFIXES = "".join(k.prefix for k in KINDS)


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str
    summary: str
    options: frozenset[str] = field(default_factory=frozenset)
    example: str | None = None
    group: str = "decisions"
    handler: str = ""
    """`module.function` under `bot/` that runs the verb: (deps, actor, command) → Reply."""
    reads: bool = False
    """The verb only reads: it stores nothing, so running it twice is harmless and losing it to
    a crash loses no data. The engine runs it in a read transaction (no write lock), and an
    adapter may run it without recording the request first (`Engine.only_reads`). A verb whose
    reply becomes a live message, or that counts, caches or notes anything, is not one."""
    profile: bool = True
    """The verb may read who the person is beyond their id (admin rights, their own time zone).
    One that does not (a vote: a refusal shows the channel's zone) is run without looking the
    person up first (`Engine.needs_profile`), so a thousand people clicking one poll cost no
    thousand profile lookups (on Slack, users.info calls it would soon be rate-limited on). A
    ballot form is one too."""


def _opts(*names: str) -> frozenset[str]:
    return frozenset(names)


VERBS: tuple[Verb, ...] = (
    Verb(
        "help",
        "help [verb]",
        "Shows the commands, or one command's usage and an example.",
        group="general",
        example="help poll",
        handler="general.cmd_help",
        reads=True,
    ),
    Verb(
        "decide",
        "decide <title> [| <rationale>] [owner:@u] [tag:x]... [status:proposed] [review:time]",
        "Records a decision (default status accepted).",
        _opts("owner", "tag", "status", "review"),
        example="decide Launch in EU first | GDPR work is done owner:@ana tag:launch",
        handler="decisions.cmd_decide",
    ),
    Verb(
        "decisions",
        "decisions [words] [tag:x] [status:x] [since:date] [page:N]",
        "Lists or searches decisions, newest first.",
        _opts("tag", "status", "since", "page"),
        example="decisions pricing since:2w",
        handler="decisions.cmd_decisions",
        reads=True,
    ),
    Verb(
        "show",
        "show <ID>",
        "Shows one decision, item, question or poll in full, with history.",
        group="general",
        example="show D-12",
        handler="general.cmd_show",
    ),
    Verb(
        "status",
        "status <D-ID> proposed|accepted|rejected|superseded [by:D-ID]",
        "Changes a decision's status (its maker, owner or an admin); superseded by:D-9 links "
        "both ways.",
        _opts("by"),
        example="status D-3 superseded by:D-9",
        handler="decisions.cmd_status",
    ),
    Verb(
        "propose",
        "propose <title> [| <rationale>] approvers:@a,@b [consulted:@c,...] "
        "[informed:@d,#channel,...] [due:time] [rule:all|majority|consent] [owner:@u] [tag:x] "
        "[review:time]",
        "Proposes a decision that the approvers sign off (rule all by default).",
        _opts("approvers", "consulted", "informed", "due", "rule", "owner", "tag", "review"),
        group="sign-off",
        example="propose Launch in EU first | GDPR work is done approvers:@ana,@ben "
        "informed:@dee due:fri",
        handler="signoff.proposing.cmd_propose",
    ),
    Verb(
        "agree",
        "agree <D-ID> [| <reason>]",
        "Agrees to a proposal (approvers count; anyone else's stance is advice).",
        group="sign-off",
        example="agree D-7 | the numbers hold up",
        handler="signoff.stances.cmd_agree",
    ),
    Verb(
        "abstain",
        "abstain <D-ID> [| <reason>]",
        "Abstains on a proposal: it no longer waits for you.",
        group="sign-off",
        example="abstain D-7 | not my area",
        handler="signoff.stances.cmd_abstain",
    ),
    Verb(
        "object",
        "object <D-ID> | <reason>",
        "Objects to a proposal, with the reason; an objection holds it (except under majority).",
        group="sign-off",
        example="object D-7 | the legal review is not done",
        handler="signoff.stances.cmd_object",
    ),
    Verb(
        "block",
        "block <D-ID> | <reason>",
        "Blocks a proposal, with the reason; a block holds it under every rule.",
        group="sign-off",
        example="block D-7 | it breaks the EU data residency promise",
        handler="signoff.stances.cmd_block",
    ),
    Verb(
        "pending",
        "pending",
        "What waits for you here: sign-offs, polls to vote in, questions you own.",
        group="sign-off",
        example="pending",
        handler="pending.cmd_pending",
        reads=True,
    ),
    Verb(
        "review",
        "review <D-ID> keep [next:time] | review <D-ID> revisit",
        "Answers a review reminder: keep the decision (next review optional) or reopen it.",
        _opts("next"),
        group="sign-off",
        example="review D-7 keep next:6m",
        handler="signoff.review.cmd_review",
    ),
    Verb(
        "link",
        "link <ID> <ID>",
        "Links a decision to an item, question, poll or decision, both ways.",
        group="sign-off",
        example="link D-7 I-3",
        handler="links.cmd_link",
    ),
    Verb(
        "item",
        "item <title> [reach:N impact:N confidence:N% effort:N] [lane:now|next|later] [tag:x]",
        "Adds a backlog item, optionally with your RICE score.",
        _opts("reach", "impact", "confidence", "effort", "lane", "tag"),
        group="roadmap",
        example="item SSO login reach:800 impact:2 confidence:80% effort:3 lane:next",
        handler="items.cmd_item",
    ),
    Verb(
        "score",
        "score <I-ID> [reach:N] [impact:N] [confidence:N%] [effort:N]",
        "Gives your RICE inputs (impact: 3, 2, 1, 0.5 or 0.25); the item uses the median.",
        _opts("reach", "impact", "confidence", "effort"),
        group="roadmap",
        example="score I-7 impact:1 effort:2",
        handler="items.cmd_score",
    ),
    Verb(
        "move",
        "move <I-ID> now|next|later|done",
        "Moves an item between roadmap lanes.",
        group="roadmap",
        example="move I-7 now",
        handler="items.cmd_move",
    ),
    Verb(
        "priorities",
        "priorities [by:rice|votes] [lane:x] [page:N]",
        "The ranked backlog.",
        _opts("by", "lane", "page"),
        group="roadmap",
        example="priorities by:votes",
        handler="items.cmd_priorities",
        reads=True,
    ),
    Verb(
        "roadmap",
        "roadmap",
        "Now / Next / Later, each lane ranked.",
        group="roadmap",
        example="roadmap",
        handler="items.cmd_roadmap",
        reads=True,
    ),
    Verb(
        "ask",
        "ask <question> [owner:@u] [due:time]",
        "Opens a question.",
        _opts("owner", "due"),
        group="questions",
        example="ask Which regions need data residency? owner:@ben due:fri",
        handler="questions.cmd_ask",
    ),
    Verb(
        "questions",
        "questions [open|overdue|mine|all] [page:N]",
        "Lists questions (default open).",
        _opts("page"),
        group="questions",
        example="questions overdue",
        handler="questions.cmd_questions",
        reads=True,
    ),
    Verb(
        "answer",
        "answer <Q-ID> <text> [decide]",
        "Answers a question; with decide also records a linked decision.",
        group="questions",
        example="answer Q-3 EU and UK only decide",
        handler="questions.cmd_answer",
    ),
    Verb(
        "poll",
        'poll "<question>" "<option>" "<option>"... [mode:single|multi|ranked|dots:N] '
        "[method:schulze|borda|irv] [max:N] [anonymous|public] [results:hidden] [options:open] "
        "[closes:time [every:week|2w|month]]",
        "Opens a poll with 2 to 25 options (default single; ranked counts by Schulze); "
        "every: opens a new one each period.",
        _opts("mode", "method", "closes", "max", "results", "options", "every"),
        group="polls",
        example='poll "Ship date or scope?" "Date" "Scope" mode:ranked closes:fri',
        handler="polls.cmd_poll",
    ),
    Verb(
        "prioritize",
        "prioritize <I-ID> <I-ID>... [mode:ranked|dots:N] [method:schulze|borda|irv] [closes:time]",
        "Opens a poll over backlog items; its result feeds priorities by:votes.",
        _opts("mode", "method", "closes"),
        group="polls",
        example="prioritize I-1 I-2 I-3 mode:dots:5",
        handler="polls.cmd_prioritize",
    ),
    Verb(
        "vote",
        "vote <P-ID> <choice>... [| <reason>]",
        "Votes: option numbers or texts; ranked: in order of preference; dots: 1=5 3=2; "
        "a reason after |.",
        group="polls",
        example="vote P-4 2 | the date is what customers asked for",
        handler="polls.cmd_vote",
        profile=False,
    ),
    Verb(
        "results",
        "results <P-ID>",
        "The current tally and who has voted.",
        group="polls",
        example="results P-4",
        handler="polls.cmd_results",
    ),
    Verb(
        "close",
        "close <P-ID> [decide [pick:<option>]]",
        "Closes a poll now (creator or admin); decide also records the result as a decision "
        "(a tie needs pick: to name the winner).",
        _opts("pick"),
        group="polls",
        example="close P-4 decide",
        handler="polls.cmd_close",
    ),
    Verb(
        "edit",
        "edit <ID> field:value...",
        'Edits title, rationale, owner, tags, due, review or closes; add:"…" adds a poll option; '
        "every:off stops a recurring poll.",
        _opts(
            "title",
            "rationale",
            "owner",
            "tag",
            "tags",
            "due",
            "review",
            "closes",
            "add",
            "text",
            "every",
        ),
        group="general",
        example='edit D-4 title:"Launch in EU and UK first"',
        handler="general.cmd_edit",
    ),
    Verb(
        "nudge",
        "nudge <P-ID|Q-ID|D-ID>",
        "Reminds who has not voted yet (privately, in an anonymous poll), the question's owner, "
        "or approvers yet to sign off.",
        group="polls",
        example="nudge P-4",
        handler="general.cmd_nudge",
    ),
    Verb(
        "digest",
        "digest [now] | digest weekly <day> <HH:MM> [tz:Area/City] | digest off | digest status",
        "Posts the roadmap digest now, or schedules it weekly.",
        _opts("tz"),
        group="digest",
        example="digest weekly mon 09:00 tz:Europe/Berlin",
        handler="digest.cmd_digest",
    ),
    Verb(
        "webhook",
        "webhook add <https-url> [events:decision,poll,digest] | webhook list | webhook rotate <n> "
        "| webhook remove <n>",
        "Sends this channel's events as signed JSON to another tool.",
        _opts("events"),
        group="digest",
        example="webhook add https://example.com/hook events:decision",
        handler="webhooks.cmd_webhook",
    ),
    Verb(
        "export",
        "export decisions|items|questions|polls [format:md|csv|json]",
        "The channel's records as a file (decisions in Markdown follow MADR).",
        _opts("format"),
        group="general",
        example="export decisions format:md",
        handler="exports.cmd_export",
    ),
)

BY_NAME: dict[str, Verb] = {verb.name: verb for verb in VERBS}
VERB_NAMES: tuple[str, ...] = tuple(verb.name for verb in VERBS)


def verb(name: str) -> Verb:
    return BY_NAME[name]


def usage(name: str | None) -> str | None:
    if name is None or name not in BY_NAME:
        return None
    return "Usage: " + BY_NAME[name].usage


def closest(word: str) -> str | None:
    """The verb a typo most likely meant, if any is close enough."""
    matches = difflib.get_close_matches(word.lower(), VERB_NAMES, n=1, cutoff=0.6)
    return matches[0] if matches else None


def markdown_table() -> str:
    """The command table for the README, generated so the two never disagree."""
    lines = ["| command | what it does |", "|---|---|"]
    for v in VERBS:
        usage, summary = (text.replace("|", chr(92) + "|") for text in (v.usage, v.summary))
        lines.append(f"| `{usage}` | {summary} |")
    return "\n".join(lines)
