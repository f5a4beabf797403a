"""The one parser, as a table: what a person types → verb, positional text and options.

Every token form of the contract (straight and smart quotes, `key:value` anywhere, quoted values,
Slack/Teams/console mentions, ids in any case, a leading `/align`) and every way a line can be
malformed, each with the message a person would see.
"""

from __future__ import annotations

import pytest

from bot import grammar
from bot.errors import UnknownVerb, UsageError
from bot.parser import Ref, parse, parse_ref, parse_user


def shape(line: str) -> tuple[str, list[str], dict[str, list[str]]]:
    command = parse(line)
    return command.verb, [t.text for t in command.args], command.options


PARSED = [
    # quoted text, straight and smart
    ('decide "Launch EU first"', ("decide", ["Launch EU first"], {})),
    ("decide “Launch EU first” tag:launch", ("decide", ["Launch EU first"], {"tag": ["launch"]})),
    ("decide ‘Launch EU’ now", ("decide", ["Launch EU", "now"], {})),
    # an apostrophe inside a word is text, not a quote
    ("decide don’t ship on fridays", ("decide", ["don’t", "ship", "on", "fridays"], {})),
    ("decide it's fine", ("decide", ["it's", "fine"], {})),
    ("decide we don’t ‘ship’ it", ("decide", ["we", "don’t", "ship", "it"], {})),
    # options anywhere after the verb, repeated, with quoted values
    (
        "decide tag:a Use Postgres tag:b owner:@ana",
        ("decide", ["Use", "Postgres"], {"tag": ["a", "b"], "owner": ["@ana"]}),
    ),
    (
        'poll "Ship?" "Date" "Scope" closes:"fri 17:00"',
        ("poll", ["Ship?", "Date", "Scope"], {"closes": ["fri 17:00"]}),
    ),
    ("ask Who? due:“fri 17:00”", ("ask", ["Who?"], {"due": ["fri 17:00"]})),
    ("decide x tag:‘a b’", ("decide", ["x"], {"tag": ["a b"]})),
    ("ITEM SSO Reach:10 LANE:now", ("item", ["SSO"], {"reach": ["10"], "lane": ["now"]})),
    # text that only looks like key:value stays text: times, ratios, URLs, one-letter keys,
    # a colon ending a word, emoji, quoted tokens
    ("decide Ship at 10:00 3:1", ("decide", ["Ship", "at", "10:00", "3:1"], {})),
    ("decide Read https://example.com/a", ("decide", ["Read", "https://example.com/a"], {})),
    ("decide Use ftp://x.org now", ("decide", ["Use", "ftp://x.org", "now"], {})),
    ("decide Mail mailto:ana@example.com", ("decide", ["Mail", "mailto:ana@example.com"], {})),
    ("decide A:B test C:\\temp", ("decide", ["A:B", "test", "C:\\temp"], {})),
    ("decide Pricing: tiers re: launch", ("decide", ["Pricing:", "tiers", "re:", "launch"], {})),
    ("decide Ship :tada: now", ("decide", ["Ship", ":tada:", "now"], {})),
    ('decide Move "review:3m"', ("decide", ["Move", "review:3m"], {})),
    ("webhook add https://example.com/h", ("webhook", ["add", "https://example.com/h"], {})),
    ("digest weekly mon 09:00", ("digest", ["weekly", "mon", "09:00"], {})),
    ("ask Is due:fri ok?", ("ask", ["Is", "ok?"], {"due": ["fri"]})),
    # the rationale pipe, with or without spaces
    ("decide A | because B", ("decide", ["A", "|", "because", "B"], {})),
    ("decide A|B", ("decide", ["A", "|", "B"], {})),
    # mentions as option values and as text
    ("decide x owner:<@U0123ABC>", ("decide", ["x"], {"owner": ["<@U0123ABC>"]})),
    ("decide x owner:<@U0123ABC|ana>", ("decide", ["x"], {"owner": ["<@U0123ABC|ana>"]})),
    ("decide x owner:<at>Ana Smith</at>", ("decide", ["x"], {"owner": ["<at>Ana Smith</at>"]})),
    ("decide ask <@U1|ana> first", ("decide", ["ask", "<@U1|ana>", "first"], {})),
    ("decide ask <at>Ana Smith</at> first", ("decide", ["ask", "<at>Ana Smith</at>", "first"], {})),
    # a leading /align (any case) is dropped; an empty line is help
    ("/align decide x", ("decide", ["x"], {})),
    ("/ALIGN   roadmap", ("roadmap", [], {})),
    ("/align", ("help", [], {})),
    ("", ("help", [], {})),
    ("   ", ("help", [], {})),
    # ids are text to the parser; the verb reads them
    ("show d-12", ("show", ["d-12"], {})),
    ("status D-3 superseded by:d-9", ("status", ["D-3", "superseded"], {"by": ["d-9"]})),
]


@pytest.mark.parametrize(("line", "expected"), PARSED, ids=[c[0] or "<empty>" for c in PARSED])
def test_parser_reads(line: str, expected: tuple[str, list[str], dict[str, list[str]]]) -> None:
    assert shape(line) == expected


def test_quoted_tokens_are_marked_and_pipes_are_not_text() -> None:
    command = parse('poll "Q" Date | x')
    assert [(t.text, t.quoted, t.pipe) for t in command.args] == [
        ("Q", True, False),
        ("Date", False, False),
        ("|", False, True),
        ("x", False, False),
    ]
    assert command.words() == ["Q", "Date", "x"]


MALFORMED = [
    ('decide "unclosed title', "decide", "A quote was opened but not closed"),
    ("decide “smart but open", "decide", "A quote was opened but not closed"),
    ('poll "Q" "a" closes:"fri 17:00', "poll", "A quote was opened but not closed"),
    ("decide x tag:", "decide", "`tag:` needs a value."),
    ("decide x owner:", "decide", "`owner:` needs a value."),
    ("ask x due:", "ask", "`due:` needs a value."),
    # options are strict: an unknown key is refused with the known ones and the closest
    (
        "ask Move to GraphQL? review:3m",
        "ask",
        "`ask` has no option `review:`. Its options: due:, owner:. "
        'To keep it as text, put it in quotes: "review:3m".',
    ),
    (
        "decide Use Postgres ownr:@ana",
        "decide",
        "`decide` has no option `ownr:`. Did you mean `owner:`? Its options: owner:, review:, "
        'status:, tag:. To keep it as text, put it in quotes: "ownr:@ana".',
    ),
    (
        'poll "Q" "a" "b" close:fri',
        "poll",
        "`poll` has no option `close:`. Did you mean `closes:`?",
    ),
    (
        "show D-1 full:yes",
        "show",
        "`show` takes no options (`full:` is not one). "
        'To keep it as text, put it in quotes: "full:yes".',
    ),
    ("edit D-1 titel:x", "edit", "`edit` has no option `titel:`. Did you mean `title:`?"),
    ("item SSO Lane:now effrt:3", "item", "`item` has no option `effrt:`. Did you mean `effort:`?"),
    ("item x review:“3 months”", "item", "`item` has no option `review:`."),
    ("answer Q-1 because review:3m", "answer", "`answer` takes no options (`review:` is not one)."),
]


@pytest.mark.parametrize(("line", "verb", "message"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_lines_are_usage_errors(line: str, verb: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(line)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_unclosed_quote_names_the_verb_so_the_usage_line_is_shown() -> None:
    with pytest.raises(UsageError) as caught:
        parse('decide "unclosed')
    assert caught.value.verb == "decide"


@pytest.mark.parametrize(
    ("line", "suggestion"),
    [
        ("decied foo", "decide"),
        ("desicions", "decisions"),
        ("quesitons", "questions"),
        ("prioritise I-1 I-2", "prioritize"),
        ("/align roadmpa", "roadmap"),
        ("xyzzy", None),
        ("|", None),
        ("/aligned decide x", None),
    ],
)
def test_unknown_verb_suggests_the_closest(line: str, suggestion: str | None) -> None:
    with pytest.raises(UnknownVerb) as caught:
        parse(line)
    assert caught.value.suggestion == suggestion
    if suggestion:
        assert f"Did you mean `{suggestion}`?" in caught.value.message
    assert "Commands: help, decide" in caught.value.message


def test_a_quoted_verb_is_still_the_verb() -> None:
    assert parse('"decide" x').verb == "decide"


IDS = [
    ("D-12", None, Ref("D", 12)),
    ("d-12", None, Ref("D", 12)),
    ("i-7", "I", Ref("I", 7)),
    (" q-3 ", "Q", Ref("Q", 3)),
    ("p-5", "PQ", Ref("P", 5)),
    ("Q-5", "PQ", Ref("Q", 5)),
]


@pytest.mark.parametrize(("text", "expect", "ref"), IDS)
def test_ids_are_case_insensitive(text: str, expect: str | None, ref: Ref) -> None:
    assert parse_ref(text, verb="show", expect=expect) == ref


BAD_IDS = [
    ("X-1", None, "`X-1` is not an id like D-12, I-7, Q-3 or P-5."),
    ("D12", None, "`D12` is not an id like D-12, I-7, Q-3 or P-5."),
    ("D-", "D", "`D-` is not a decision id like D-12."),
    ("I-1", "D", "I-1 is not a decision id like D-12."),
    ("D-1", "I", "D-1 is not an item id like I-7."),
    ("D-1", "PQ", "D-1 is not a poll or question id like P-5 or Q-3."),
]


@pytest.mark.parametrize(("text", "expect", "message"), BAD_IDS)
def test_wrong_ids_say_what_was_expected(text: str, expect: str | None, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_ref(text, verb="status", expect=expect)
    assert caught.value.message == message
    assert caught.value.verb == "status"


MENTIONS = {"Ana": "aad-ana", "Ben Ode": "aad-ben"}
PEOPLE = [
    ("<@U0123ABC>", "U0123ABC"),
    ("<@U0123ABC|ana>", "U0123ABC"),
    ("<at>Ana</at>", "aad-ana"),
    ("<at>Ben Ode</at>", "aad-ben"),
    ("@ana", "ana"),
    ("@ana.b-c", "ana.b-c"),
]


@pytest.mark.parametrize(("text", "user"), PEOPLE)
def test_mentions_from_every_surface(text: str, user: str) -> None:
    assert parse_user(text, verb="decide", mentions=MENTIONS) == user


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<at>Nobody</at>", "I can't tell who <at>Nobody</at> is."),
        ("ana", "`ana` is not a person; mention them like @ana."),
        ("@", "`@` is not a person; mention them like @ana."),
        ("<@>", "`<@>` is not a person; mention them like @ana."),
    ],
)
def test_people_that_cannot_be_read(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_user(text, verb="decide", mentions=MENTIONS)
    assert caught.value.message == message


def test_options_are_only_those_the_verb_accepts() -> None:
    for spec in grammar.VERBS:
        for key in spec.options:
            command = parse(f"{spec.name} x {key}:v")
            assert command.options == {key: ["v"]}, spec.name


@pytest.mark.parametrize("spec", grammar.VERBS, ids=[v.name for v in grammar.VERBS])
def test_every_verb_refuses_an_option_it_does_not_know(spec: grammar.Verb) -> None:
    with pytest.raises(UsageError) as caught:
        parse(f"{spec.name} x zzunknown:1")
    message = caught.value.message
    assert caught.value.verb == spec.name
    assert "zzunknown:" in message and "put it in quotes" in message
    for key in spec.options:
        assert f"{key}:" in message, (spec.name, key)
    if not spec.options:
        assert "takes no options" in message


def test_quotes_typed_inside_free_text_are_kept_and_around_it_only_group() -> None:
    from bot.parser import join_text, split_pipe

    def title(line: str) -> tuple[str, str | None]:
        before, after = split_pipe(parse(line).args)
        return join_text(before), None if after is None else join_text(after)

    assert title('decide Rename "Projects" to "Spaces"') == ('Rename "Projects" to "Spaces"', None)
    assert title("decide Rename “Projects”, then ‘ship’") == (
        "Rename “Projects”, then ‘ship’",
        None,
    )
    assert title('decide "Use Postgres" | "it scales"') == ("Use Postgres", "it scales")
    assert title('decide "Use Postgres" now') == ('"Use Postgres" now', None)
    assert title('decide Say "a  b" tag:x') == ('Say "a  b"', None)
