"""Whatever anyone types — the grammar's own tokens in any order, or plain noise — the engine
answers with a reply or a usage error, never an internal error."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from bot import grammar
from bot.clock import FakeClock
from bot.context import Actor
from tests.conftest import START, make_settings

OPTION_VALUES = [
    "", "x", "@ana", "<@U1|ana>", "<at>Ana</at>", "now", "later", "done", "rice", "votes",
    "3", "0.25", "-1", "1e308", "1e-308", "nan", "inf", "80%", "101%", "ranked", "dots:3",
    "dots:0", "dots:x", "multi", "schulze", "irv", "fri", "17:00", "3d", "48h", "2w", "0m",
    "2026-12-01", "2026-12-01T17:00", "9999-12-31T23:59", "0001-01-01", "none", "md", "csv",
    "json", "D-1", "d-2", "accepted", '"fri 17:00"', "“a b”", "Europe/Berlin", "Nowhere/Zone",
]  # fmt: skip
OPTION_KEYS = sorted({key for verb in grammar.VERBS for key in verb.options} | {"foo"})
WORDS = [
    "D-1", "d-1", "I-1", "i-2", "Q-1", "P-1", "p-2", "P-3", "P-99", "X-1", "D-0", "D-999999999",
    "decide", "now", "next", "later", "done", "open", "overdue", "mine", "all", "superseded",
    "accepted", "proposed", "rejected", "decisions", "items", "questions", "polls", "1", "2",
    "3", "0", "-1", "1=3", "2=2", "9=1", "1=x", "~2", "|", "anonymous", "weekly", "off",
    "status", "mon", "09:00", "add", "list", "remove", "https://example.com/h", "@ana",
    "<@U0123ABC>", "<@U0123ABC|ana>", "<at>Ana</at>", "<at>", "<", ">", '"', "“", "”", "‘",
    "’", "don’t", '"a b"', "“x y”", "‘p q’", "\u200b", "é", "🚀", "", "\t", "/align",
]  # fmt: skip

verbs = st.sampled_from([*grammar.VERB_NAMES, "decied", "/align", "HELP", "Show"])
options = st.builds(
    lambda k, v: f"{k}:{v}", st.sampled_from(OPTION_KEYS), st.sampled_from(OPTION_VALUES)
)
tokens = st.one_of(st.sampled_from(WORDS), options, st.text(max_size=8))
grammatical = st.builds(
    lambda verb, rest: " ".join([verb, *rest]), verbs, st.lists(tokens, max_size=8)
)
lines = st.one_of(grammatical, st.text(max_size=60))
actors = st.builds(
    Actor,
    workspace=st.just("local"),
    channel=st.sampled_from(["general", "other"]),
    user=st.sampled_from(["pm", "ana", "ben"]),
    is_admin=st.booleans(),
    tz=st.sampled_from([None, "Europe/Berlin", "Pacific/Kiritimati", "America/Adak", "No/Zone"]),
)
SEED = (
    "decide Use Postgres owner:@ana tag:infra",
    "item SSO reach:100 impact:1 confidence:50% effort:1",
    "item Dark mode",
    "ask Which regions? owner:@pm due:fri",
    'poll "Ship?" "Date" "Scope"',
    'poll "Order?" "a" "b" "c" mode:ranked',
    'poll "Spend?" "a" "b" mode:dots:5 closes:3d',
)


EXAMPLES = int(os.environ.get("ALIGN_FUZZ_EXAMPLES", "200"))


def test_any_line_gets_a_reply_never_an_internal_error(tmp_path: Path) -> None:
    """One SQLite database for the whole test, seeded once; the examples share it and change
    it, so a vote or an edit in one example is the state that another one meets."""
    clock = FakeClock(START)
    app = build(make_settings(f"sqlite:///{tmp_path / 'fuzz.db'}"), clock=clock)
    for line in SEED:
        assert app.engine.handle(Actor("local", "general", "pm"), line).ok, line
    clock.advance(timedelta(hours=1))

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(line=lines, actor=actors)
    def answers(line: str, actor: Actor) -> None:
        reply = app.engine.handle(actor, line)
        assert reply.kind != "internal", f"{line!r} by {actor}: {reply.error}"
        assert reply.ok or reply.error, line

    try:
        answers()
    finally:
        app.db.dispose()
