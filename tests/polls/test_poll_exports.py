"""`export polls`: a row per poll, then a row per voter of a public poll (voter, choice, reason)
and a row per reason given in other polls — with no voter in anonymous ones."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import Chat


def test_csv_has_voter_rows_for_public_polls_and_reason_rows_elsewhere(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi" mode:multi public')  # P-1
    chat.ok("vote P-1 1 2 | both, please", user="ana")
    chat.ok("vote P-1 2", user="ben")
    chat.ok('poll "Named?" "Yes" "No"')  # P-2
    chat.ok("vote P-2 1 | it is simpler", user="ana")
    chat.ok("vote P-2 2", user="ben")
    chat.ok('poll "Secret?" "Yes" "No" anonymous')  # P-3
    chat.ok("vote P-3 1 | nobody needs to know", user="ana")
    # Five anonymous ballots: counted together (one alone would wait, reason and all).
    for voter, choice in (("ben", 2), ("cy", 1), ("dee", 2), ("eve", 2)):
        chat.ok(f"vote P-3 {choice}", user=voter)

    export = chat.ok("export polls format:csv")
    assert export.text == "Exported 3 polls as csv"
    assert export.file is not None
    rows = list(csv.DictReader(io.StringIO(export.file.content)))
    assert [(r["row"], r["id"], r["voter"], r["choice"], r["reason"]) for r in rows] == [
        ("poll", "P-1", "", "", ""),
        ("ballot", "P-1", "ana", "Pizza, Sushi", "both, please"),
        ("ballot", "P-1", "ben", "Sushi", ""),
        ("poll", "P-2", "", "", ""),
        ("reason", "P-2", "ana", "", "it is simpler"),
        ("poll", "P-3", "", "", ""),
        ("reason", "P-3", "", "", "nobody needs to know"),
    ]
    polls = [r for r in rows if r["row"] == "poll"]
    assert [(r["public"], r["anonymous"], r["winner"]) for r in polls] == [
        ("True", "False", "Sushi"),
        ("False", "False", ""),
        ("False", "True", "No"),
    ]
    assert all(r["question"] == "" for r in rows if r["row"] != "poll")

    (public, named, secret) = json.loads(chat.ok("export polls format:json").file.content)  # type: ignore[union-attr]
    assert public["ballots"] == [
        {"voter": "ana", "choice": "Pizza, Sushi", "reason": "both, please"},
        {"voter": "ben", "choice": "Sushi"},
    ]
    assert public["reasons"] == []  # a public poll's reasons are in its ballots
    assert named["ballots"] == [] and named["reasons"] == [
        {"voter": "ana", "reason": "it is simpler"}
    ]
    assert secret["reasons"] == [{"reason": "nobody needs to know"}]
    markdown = chat.ok("export polls format:md").file.content  # type: ignore[union-attr]
    assert "| ballot | P-1 |" in markdown and "| reason | P-3 |" in markdown
    assert "ana" not in markdown.split("| reason | P-3 |")[1]
