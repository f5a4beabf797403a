"""The grammar is the single source of usage lines: help, errors and the README all read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import App, build
from bot import grammar
from bot.clock import FakeClock
from bot.context import Actor
from tests.conftest import START, make_settings

README = Path(__file__).resolve().parents[2] / "README.md"
ME = Actor("local", "general", "pm")


@pytest.fixture
def sqlite_app(migrated_sqlite_url: str) -> Iterator[App]:
    app = build(make_settings(migrated_sqlite_url), clock=FakeClock(START))
    yield app
    app.db.dispose()


def test_every_verb_has_a_usage_line_a_summary_and_an_example() -> None:
    for spec in grammar.VERBS:
        assert spec.usage.split()[0] == spec.name
        assert spec.summary.endswith(".")
        assert spec.example and spec.example.split()[0] == spec.name, spec.name


@pytest.mark.parametrize("name", grammar.VERB_NAMES)
def test_help_for_every_verb_shows_its_usage_and_example(sqlite_app: App, name: str) -> None:
    reply = sqlite_app.engine.handle(ME, f"help {name}")
    assert reply.ok and reply.kind == "help"
    assert reply.data == {"verb": name, "usage": grammar.verb(name).usage}
    texts = [getattr(block, "text", "") for block in reply.blocks]
    assert grammar.verb(name).usage in texts
    assert f"Example: `{grammar.verb(name).example}`" in texts


def test_help_lists_every_verb(sqlite_app: App) -> None:
    reply = sqlite_app.engine.handle(ME, "help")
    assert [v["verb"] for v in reply.data["verbs"]] == list(grammar.VERB_NAMES)


def test_help_for_a_typo_suggests_the_verb(sqlite_app: App) -> None:
    reply = sqlite_app.engine.handle(ME, "help decied")
    assert not reply.ok
    assert reply.error == "There is no command `decied`. Did you mean `decide`?"


def test_usage_lines_start_with_usage() -> None:
    assert grammar.usage("decide") == "Usage: " + grammar.verb("decide").usage
    assert grammar.usage("nope") is None
    assert grammar.usage(None) is None


def test_markdown_table_has_a_row_per_verb_with_escaped_pipes() -> None:
    rows = grammar.markdown_table().splitlines()
    assert rows[:2] == ["| command | what it does |", "|---|---|"]
    assert len(rows) == 2 + len(grammar.VERBS)
    assert rows[2 + grammar.VERB_NAMES.index("move")].startswith(
        r"| `move <I-ID> now\|next\|later\|done` |"
    )


def test_readme_command_table_matches_the_grammar() -> None:
    """The README's table is generated (`align commands --markdown`); it must not drift."""
    assert grammar.markdown_table() in README.read_text(encoding="utf-8")


def test_every_verb_names_a_handler_the_engine_runs(sqlite_app: App) -> None:
    handlers = sqlite_app.engine.handlers
    assert set(handlers) == set(grammar.VERB_NAMES)
    for spec in grammar.VERBS:
        assert callable(handlers[spec.name]), spec.name
        assert handlers[spec.name].__name__ == spec.handler.rpartition(".")[2]


def test_every_kind_resolves_to_its_model_and_a_module_that_shows_and_edits_it() -> None:
    from bot import kinds

    assert len({k.prefix for k in grammar.KINDS}) == len(grammar.KINDS)
    for kind in grammar.KINDS:
        model = kinds.model(kind.prefix)
        assert model.__name__ == kind.model
        assert hasattr(model, kind.title_field), kind.noun
        module = kinds.module(kind.prefix)
        for name in ("snapshot", "view", "edit"):
            assert callable(getattr(module, name)), (kind.noun, name)
        assert kinds.ref_of(kind.noun, kind.example) == f"{kind.prefix}-{kind.example}"


@pytest.mark.parametrize("kind", grammar.KINDS, ids=lambda k: k.noun)
def test_an_id_of_every_kind_is_read_in_either_case(kind: grammar.Kind) -> None:
    from bot.parser import parse_ref

    ref = parse_ref(f"{kind.prefix.lower()}-{kind.example}", verb="show")
    assert (ref.prefix, ref.number, ref.kind) == (kind.prefix, kind.example, kind.noun)
