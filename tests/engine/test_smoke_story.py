"""The issue's done-when story, end to end through the engine on both databases."""

from __future__ import annotations

from tests.conftest import Chat


def test_a_new_team_records_scores_asks_and_exports(chat: Chat) -> None:
    d1 = chat.ok("decide Use Postgres | mature and boring owner:@ana tag:infra")
    d2 = chat.ok("decide “Launch EU first” tag:launch")
    assert (d1.data["id"], d2.data["id"]) == ("D-1", "D-2")
    chat.ok("status D-1 superseded by:D-2")
    shown = chat.ok("show D-2")
    assert shown.data["links"] == {"supersedes": ["D-1"]}
    for title in ("SSO", "Dark mode", "Audit log"):
        chat.ok(f"item {title} reach:100 impact:1 confidence:80% effort:1", user="ana")
    chat.ok("score I-1 reach:300 impact:3", user="ben")
    chat.ok("score I-2 effort:4", user="ben")
    chat.ok("move I-1 now")
    roadmap = chat.ok("roadmap")
    assert [i["id"] for i in roadmap.data["lanes"]["now"]] == ["I-1"]
    priorities = chat.ok("priorities")
    assert [i["id"] for i in priorities.data["items"]] == ["I-1", "I-3", "I-2"]
    chat.ok("ask Which regions? owner:@ben due:fri")
    answered = chat.ok("answer Q-1 EU and UK decide", user="ben")
    assert answered.data["decision"] == "D-3"
    export = chat.ok("export decisions format:md")
    assert export.file is not None
    assert "# D-1: Use Postgres" in export.file.content
    assert "* Superseded by [D-2]" in export.file.content
    assert "* Answers Q-1" in export.file.content


def test_ranked_poll_change_vote_and_close_with_decide(chat: Chat) -> None:
    chat.ok('poll "Ship date or scope?" "Date" "Scope" "Both" mode:ranked')
    chat.ok("vote P-1 2 1", user="ana")
    chat.ok("vote P-1 1 2 3", user="ben")
    chat.ok("vote P-1 Scope Date", user="ben")
    chat.ok("vote P-1 3", user="cy")
    res = chat.ok("results P-1")
    assert res.data["winner"] == "Scope"
    assert res.data["ballots"] == 3
    chat.fails("close P-1", user="ana")
    closed = chat.ok("close P-1 decide")
    assert closed.data["decision"] == "D-1"
    late = chat.fails("vote P-1 1", user="dee")
    assert late.error is not None and late.error.startswith("P-1 closed on")
    decision = chat.ok("show D-1")
    assert decision.data["links"]["poll"] == "P-1"
    assert decision.data["tally"]["winner"] == "Scope"
