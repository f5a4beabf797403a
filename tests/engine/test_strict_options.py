"""Options are strict and titles keep their quotes, as people meet them (SQLite and PostgreSQL):
a `key:value` no verb takes is refused with the verb's options, a hint and the usage line, and
nothing is stored; text that only looks like one is kept as typed."""

from __future__ import annotations

import pytest

from tests.conftest import Chat


def test_an_unknown_option_is_refused_with_a_hint_and_nothing_is_stored(chat: Chat) -> None:
    # `review:` is an option of decide, propose and edit only (a review date for a decision)
    reply = chat.fails("item Move to GraphQL review:3m")
    assert reply.error is not None
    assert reply.error.startswith("`item` has no option `review:`. Its options: confidence:")
    assert (reply.usage or "").startswith("Usage: item <title>")
    assert chat.ok("priorities").data["items"] == []
    typo = chat.fails("decide Use Postgres ownr:@ana")
    assert "Did you mean `owner:`?" in (typo.error or "")
    assert chat.ok("decisions").data["decisions"] == []


@pytest.mark.parametrize(
    ("line", "listing", "key"),
    [
        ("ask Which regions? owner:@ben dew:fri", "questions", "questions"),
        ("item SSO login reach:800 efort:3", "priorities", "items"),
    ],
)
def test_other_verbs_refuse_unknown_options_too(
    chat: Chat, line: str, listing: str, key: str
) -> None:
    chat.fails(line)
    assert chat.ok(listing).data[key] == []


def test_an_unknown_option_on_a_change_changes_nothing(chat: Chat) -> None:
    chat.ok("decide Use Postgres")
    reply = chat.fails("edit D-1 titel:Use MySQL")
    assert "Did you mean `title:`?" in (reply.error or "")
    assert chat.ok("show D-1").data["title"] == "Use Postgres"
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    chat.fails("close P-1 decide now:yes")
    assert chat.ok("results P-1").data["closed"] is False


def test_text_that_looks_like_an_option_is_kept(chat: Chat) -> None:
    line = "decide A:B test at 10:00 re: pricing | see https://example.com/x and 3:1 odds"
    data = chat.ok(line).data
    assert data["title"] == "A:B test at 10:00 re: pricing"
    assert data["rationale"] == "see https://example.com/x and 3:1 odds"
    quoted = chat.ok('decide Move to GraphQL "review:3m"').data
    assert quoted["title"] == 'Move to GraphQL "review:3m"'


def test_quotes_inside_a_title_are_kept_and_around_it_only_group(chat: Chat) -> None:
    renamed = chat.ok('decide Rename "Projects" to "Spaces" | users said “Spaces” tag:naming')
    assert renamed.data["title"] == 'Rename "Projects" to "Spaces"'
    assert renamed.data["rationale"] == "users said “Spaces”"
    assert renamed.data["tags"] == ["naming"]
    assert chat.ok('decide "Use Postgres"').data["title"] == "Use Postgres"
    assert chat.ok('ask Is "Spaces" clear? owner:@ben').data["text"] == 'Is "Spaces" clear?'
    assert chat.ok('item Rename "Projects" lane:now').data["title"] == 'Rename "Projects"'
    # Quotes still group a poll's question and options, and a vote's choice.
    poll = chat.ok('poll "Name?" "Spaces" "Projects v2"').data
    assert (poll["question"], poll["options"]) == ("Name?", ["Spaces", "Projects v2"])
    assert chat.ok('vote P-1 "Projects v2"', user="ana").data["voted"] == "Projects v2"
