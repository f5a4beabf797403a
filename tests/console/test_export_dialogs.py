"""`export`: decisions as MADR Markdown, and every kind as CSV and JSON that parse back."""

from __future__ import annotations

import csv
import io
import json

from tests.console.conftest import Dialog


def file_body(answer: str, filename: str) -> str:
    """The exported file as the console prints it, after its `── name ──` line."""
    marker = f"── {filename} ──\n"
    assert marker in answer, answer
    return answer.split(marker, 1)[1] + "\n"


def seed(dialog: Dialog) -> None:
    for line in (
        "decide Use MySQL",
        "decide Use Postgres | mature, and boring owner:@ana tag:infra tag:db",
        "status D-1 superseded by:D-2",
        "ask Which regions? owner:@ben due:fri",
        "answer Q-1 EU and UK decide",
        "item SSO login reach:800 impact:2 confidence:80% effort:4 lane:next tag:auth",
        ":as ben",
        "score I-1 reach:200 impact:3 confidence:40% effort:2",
        "item Dark mode",
        ":as pm",
    ):
        assert "✗" not in dialog.say(line), line


def test_decisions_export_follows_madr(dialog: Dialog) -> None:
    seed(dialog)
    answer = dialog.say("export decisions")
    assert answer.splitlines()[0] == "Exported 3 decisions as `decisions-general.md`."
    body = file_body(answer, "decisions-general.md")
    records = body.split("\n---\n\n")
    assert len(records) == 3
    assert records[1].splitlines() == [
        "# D-2: Use Postgres",
        "",
        "* Status: accepted",
        "* Date: 2026-11-25",
        "* Decision-makers: @ana, @pm",
        "* Tags: db, infra",
        "",
        "## Context and Problem Statement",
        "",
        "mature, and boring",
        "",
        "## Decision Outcome",
        "",
        "Chosen: Use Postgres",
        "",
        "## Links",
        "",
        "* Supersedes [D-1](#d-1)",
    ]
    assert "* Status: superseded" in records[0]
    assert "* Superseded by [D-2](#d-2)" in records[0]
    assert "* Answers Q-1" in records[2]
    assert "Answer to Q-1: Which regions?" in records[2]


def test_decisions_as_csv_and_json_parse_back(dialog: Dialog) -> None:
    seed(dialog)
    rows = list(
        csv.DictReader(
            io.StringIO(
                file_body(dialog.say("export decisions format:csv"), "decisions-general.csv")
            )
        )
    )
    assert [r["id"] for r in rows] == ["D-1", "D-2", "D-3"]
    assert rows[1]["rationale"] == "mature, and boring"  # the comma survives quoting
    assert rows[1]["tags"] == "db,infra"
    assert rows[1]["owner"] == "ana"
    assert (rows[0]["superseded_by"], rows[1]["supersedes"]) == ("D-2", "D-1")
    assert rows[2]["question"] == "Q-1"
    records = json.loads(
        file_body(dialog.say("export decisions format:json"), "decisions-general.json")
    )
    assert [r["id"] for r in records] == ["D-1", "D-2", "D-3"]
    assert records[0]["status"] == "superseded"
    assert records[1]["created_at"] == "2026-11-25T09:00:00+00:00"


def test_items_and_questions_as_csv_and_json(dialog: Dialog) -> None:
    seed(dialog)
    items = list(
        csv.DictReader(io.StringIO(file_body(dialog.say("export items"), "items-general.csv")))
    )
    assert [(i["id"], i["title"], i["lane"]) for i in items] == [
        ("I-1", "SSO login", "next"),
        ("I-2", "Dark mode", "later"),
    ]
    assert (items[0]["rice"], items[0]["reach"], items[0]["scorers"]) == ("250.0", "500.0", "2")
    assert items[1]["rice"] == ""
    as_json = json.loads(file_body(dialog.say("export items format:json"), "items-general.json"))
    assert as_json[0]["rice"] == 250.0 and as_json[0]["impact"] == 2.5
    questions = json.loads(
        file_body(dialog.say("export questions format:json"), "questions-general.json")
    )
    assert questions == [
        {
            "text": "Which regions?",
            "owner": "ben",
            "due": "2026-11-27T17:00:00+00:00",
            "status": "answered",
            "answer": "EU and UK",
            "id": "Q-1",
            "created_at": "2026-11-25T09:00:00+00:00",
        }
    ]


def test_export_of_nothing_and_bad_formats(dialog: Dialog) -> None:
    assert "No decisions recorded yet." in dialog.say("export decisions")
    assert dialog.say("export polls format:pdf") == (
        "✗ format is md, csv or json.\n"
        "  Usage: export decisions|items|questions|polls [format:md|csv|json]"
    )
    assert dialog.say("export everything").startswith(
        "✗ Export decisions, items, questions or polls."
    )
