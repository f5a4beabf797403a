"""The one parser: a line of text into a verb, positional tokens and `key:value` options.

It knows the contract's token forms — straight and smart quotes, `key:value` (with a quoted value),
Slack/Teams/console mentions, object ids — and nothing about what a verb does with them.

Options are strict: a `key:value` token whose key the verb does not take is refused, naming the
keys it does take and the closest one, rather than kept as text (`decide Move to GraphQL
review:3m` would otherwise store a title with a typo'd option in it). Text that merely looks like
`key:value` stays text, because refusing it would make ordinary titles untypable:

- URLs: `https://…`, `http://…` and any `scheme://…`, and `mailto:…`;
- a key of one letter: `A:B testing`, `C:\temp`;
- a colon ending a word, as prose has it: `Pricing: go with tiers`, `re: the launch`;
- anything that does not start with a letter: times (`10:00`), ratios (`3:1`), emoji (`:tada:`),
  mentions and Slack links (`<https://…|…>`).

Anything else is kept as text by quoting it: `decide Move to GraphQL "review:3m"`.

Quotes group a poll's question and options, a vote's choices and an option's value
(`closes:"fri 17:00"`); inside a title or other free text they are part of what was typed, so
`decide Rename "Projects" to "Spaces"` keeps them (`Token.raw`, read by `join_text`). Quotes
around the whole text only group it: `decide "Use Postgres"` records Use Postgres.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from bot import grammar
from bot.errors import UnknownVerb, UsageError

QUOTES = {'"': '"”“', "“": '”“"', "”": '”“"', "‘": "’"}
_OPTION = re.compile(r"^([A-Za-z][A-Za-z_]*):(.*)$", re.S)
_PREFIX = re.compile(r"^/align(?:\s|$)", re.I)
_ID = re.compile(rf"^([{grammar.PREFIXES}])-(\d{{1,9}})$", re.I)
_SLACK_MENTION = re.compile(r"^<@([A-Za-z0-9._:-]+)(?:\|[^>]*)?>$")
_TEAMS_MENTION = re.compile(r"^<at>(.*?)</at>$", re.S)
_CONSOLE_MENTION = re.compile(r"^@([\w.\-:]+)$")
_SLACK_CHANNEL = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_CONSOLE_CHANNEL = re.compile(r"^#([\w.\-:@;]+)$")


@dataclass(frozen=True)
class Token:
    """`text` is the token with its grouping quotes taken off; `raw` is it as typed (empty for
    tokens built in code, which have nothing typed to keep)."""

    text: str
    quoted: bool = False
    pipe: bool = False
    raw: str = ""


@dataclass
class Command:
    verb: str
    args: list[Token]
    options: dict[str, list[str]] = field(default_factory=dict)
    raw: str = ""

    def option(self, key: str) -> str | None:
        values = self.options.get(key)
        return values[-1] if values else None

    def words(self) -> list[str]:
        return [t.text for t in self.args if not t.pipe]


@dataclass(frozen=True)
class Ref:
    """An object id as typed: `D-12` is Ref("D", 12)."""

    prefix: str
    number: int

    def __str__(self) -> str:
        return f"{self.prefix}-{self.number}"

    @property
    def kind(self) -> str:
        return grammar.KIND_BY_PREFIX[self.prefix].noun


def tokenize(text: str) -> list[Token]:
    """Split a command line into tokens, honouring quotes, pipes and platform markup."""
    tokens: list[Token] = []
    buf: list[str] = []
    quoted = False
    start = 0  # where the token being read began
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal buf, quoted
        if buf or quoted:
            tokens.append(Token("".join(buf), quoted=quoted, raw=text[start:i]))
        buf, quoted = [], False

    while i < n:
        ch = text[i]
        if not buf and not quoted:
            start = i
        if ch.isspace():
            flush()
            i += 1
        elif ch == "|":
            flush()
            tokens.append(Token("|", pipe=True, raw="|"))
            i += 1
        elif ch == "<" and (_markup_may_start(buf) or _next_in_list(buf)):
            end_tag = "</at>" if text.startswith("<at>", i) else ">"
            end = text.find(end_tag, i + 1)
            if end == -1:
                buf.append(ch)
                i += 1
            else:
                buf.append(text[i : end + len(end_tag)])
                i = end + len(end_tag)
        elif ch in QUOTES and _markup_may_start(buf):
            closers = QUOTES[ch]
            j = i + 1
            while j < n and not (
                text[j] in closers
                and (ch != "‘" or j + 1 == n or text[j + 1].isspace() or text[j + 1] in '”"')
            ):
                j += 1
            if j >= n:
                raise UsageError(f"A quote was opened but not closed: {text[i : i + 30]}…")
            # Alone it is quoted text; after `key:` it is the option's value.
            quoted = quoted or not buf
            buf.append(text[i + 1 : j])
            i = j + 1
        else:
            buf.append(ch)
            i += 1
    flush()
    return tokens


def _markup_may_start(buf: list[str]) -> bool:
    """Quotes and platform markup open a token, or an option's value right after `key:`."""
    return not buf or (buf[-1] == ":" and bool(_OPTION.match("".join(buf))))


def _next_in_list(buf: list[str]) -> bool:
    """Markup also opens the next entry of an option's comma-separated list, so a Teams mention
    with a space in the name stays in it: `approvers:<at>Ana Li</at>,<at>Ben Wu</at>`."""
    return bool(buf) and buf[-1] == "," and bool(_OPTION.match("".join(buf)))


def strip_prefix(text: str) -> str:
    """Drop a leading `/align` (typed in the console or pasted from Slack), but not `/aligned`."""
    stripped = text.strip()
    if _PREFIX.match(stripped):
        return stripped[len("/align") :].strip()
    return stripped


def parse(text: str) -> Command:
    """Parse one line: the verb, its options (only keys it accepts; see the module docstring for
    what is refused and what stays text) and the rest as tokens."""
    body = strip_prefix(text)
    try:
        tokens = tokenize(body)
    except UsageError as exc:
        # The line is broken after its verb; name it so the reply carries its usage line.
        first = body.split(maxsplit=1)[0].lower() if body.split() else ""
        exc.verb = exc.verb or (first if first in grammar.BY_NAME else None)
        raise
    if not tokens:
        return Command("help", [], {}, raw=text)
    head = tokens[0]
    name = head.text.strip().lower()
    if head.pipe or name not in grammar.BY_NAME:
        raise _unknown(head.text)
    spec = grammar.BY_NAME[name]
    args: list[Token] = []
    options: dict[str, list[str]] = {}
    for token in tokens[1:]:
        match = None if (token.quoted or token.pipe) else _OPTION.match(token.text)
        if match and match.group(1).lower() in spec.options:
            key, value = match.group(1).lower(), match.group(2)
            if value == "":
                raise UsageError(f"`{key}:` needs a value.", verb=name)
            options.setdefault(key, []).append(value)
        elif match and not _looks_like_text(match.group(1), match.group(2)):
            raise _unknown_option(spec, match.group(1).lower(), token.text)
        else:
            args.append(token)
    return Command(name, args, options, raw=text)


_SCHEMES_WITHOUT_SLASHES = frozenset({"mailto"})


def _looks_like_text(key: str, value: str) -> bool:
    """`key:value` forms that ordinary text has, and no verb's option could be."""
    return (
        len(key) == 1
        or value == ""
        or value.startswith("//")
        or key.lower() in _SCHEMES_WITHOUT_SLASHES
    )


def _unknown_option(spec: grammar.Verb, key: str, typed: str) -> UsageError:
    known = sorted(spec.options)
    keep = f' To keep it as text, put it in quotes: "{typed[:40]}".'
    if not known:
        return UsageError(
            f"`{spec.name}` takes no options (`{key}:` is not one).{keep}", verb=spec.name
        )
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean `{close[0]}:`?" if close else ""
    names = ", ".join(f"{k}:" for k in known)
    return UsageError(
        f"`{spec.name}` has no option `{key}:`.{hint} Its options: {names}.{keep}", verb=spec.name
    )


def _unknown(word: str) -> UnknownVerb:
    suggestion = grammar.closest(word) if word.strip() and word != "|" else None
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return UnknownVerb(
        f"I don't know `{word[:40]}`.{hint} Commands: {', '.join(grammar.VERB_NAMES)}.",
        suggestion=suggestion,
    )


def _wanted(expect: str | None) -> str:
    """`PQ` → "a poll or question id like P-5 or Q-3"."""
    kinds = [grammar.KIND_BY_PREFIX[p] for p in expect or grammar.PREFIXES]
    noun = " or ".join(k.noun for k in kinds) + " id" if expect else "id"
    article = "an" if noun[0] in "aeiou" else "a"
    examples = " or ".join(", ".join(f"{k.prefix}-{k.example}" for k in kinds).rsplit(", ", 1))
    return f"{article} {noun} like {examples}"


def parse_ref(text: str, *, verb: str, expect: str | None = None) -> Ref:
    """Read an object id (`d-12` works too); `expect` limits it to some prefixes, e.g. "PQ"."""
    match = _ID.match(text.strip())
    if not match:
        raise UsageError(f"`{text[:40]}` is not {_wanted(expect)}.", verb=verb)
    ref = Ref(match.group(1).upper(), int(match.group(2)))
    if expect and ref.prefix not in expect:
        raise UsageError(f"{ref} is not {_wanted(expect)}.", verb=verb)
    return ref


def parse_user(text: str, *, verb: str, mentions: dict[str, str] | None = None) -> str:
    """A person, from any surface's mention form, as the platform's user id."""
    text = text.strip()
    for pattern in (_SLACK_MENTION, _CONSOLE_MENTION):
        match = pattern.match(text)
        if match:
            return match.group(1)
    match = _TEAMS_MENTION.match(text)
    if match:
        name = match.group(1).strip()
        if mentions and name in mentions:
            return mentions[name]
        raise UsageError(f"I can't tell who <at>{name}</at> is.", verb=verb)
    raise UsageError(f"`{text[:40]}` is not a person; mention them like @ana.", verb=verb)


def parse_channel(text: str) -> str | None:
    """A channel named in text — Slack's `<#C0123|general>`, the console's `#roadmap` — as its
    id; None when the text names no channel (Teams channels come as mentions: `parse_user`)."""
    text = text.strip()
    for pattern in (_SLACK_CHANNEL, _CONSOLE_CHANNEL):
        match = pattern.match(text)
        if match:
            return match.group(1)
    return None


def split_list(values: list[str]) -> list[str]:
    """An option given as a comma-separated list, maybe repeated (`approvers:@a,@b
    approvers:@c`), as its entries — commas inside platform markup (`<at>Li, Ana</at>`) do not
    separate."""
    out: list[str] = []
    for value in values:
        start = index = 0
        while index < len(value):
            closer = "</at>" if value.startswith("<at>", index) else ">"
            end = value.find(closer, index + 1) if value[index] == "<" else -1
            if end != -1:
                index = end + len(closer)
                continue
            if value[index] == ",":
                out.append(value[start:index])
                start = index + 1
            index += 1
        out.append(value[start:])
    return [entry.strip() for entry in out if entry.strip()]


def is_ref(text: str) -> bool:
    return bool(_ID.match(text.strip()))


def join_text(tokens: list[Token]) -> str:
    """Free text (a title, a rationale, an answer) as typed, quotes included — except quotes
    around the whole of it, which group it as they group a poll's question."""
    if len(tokens) == 1 and tokens[0].quoted and len(tokens[0].raw) == len(tokens[0].text) + 2:
        return tokens[0].text.strip()
    return " ".join(t.raw or t.text for t in tokens).strip()


def split_pipe(tokens: list[Token]) -> tuple[list[Token], list[Token] | None]:
    """Text before the first `|` and after it (None when there is no pipe)."""
    for index, token in enumerate(tokens):
        if token.pipe:
            return tokens[:index], [t for t in tokens[index + 1 :]]
    return tokens, None
