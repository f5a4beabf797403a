"""`/align export …` in Slack: the whole file, shared in the channel it was typed in.

The fake Slack records the bytes slack_sdk's files_upload_v2 POSTs to the upload_url it handed
out, so these tests read the file exactly as Slack would store it. Where Slack refuses the upload,
the asker gets the private code block instead, with the reason.
"""

from __future__ import annotations

import csv
import io
import re

from bot.context import Actor
from tests.fakes import Upload
from tests.slack.conftest import CHANNEL, USER, SlackServer

MADR_FIELDS = ("* Status: ", "* Date: ", "* Decision-makers: ")
MADR_SECTIONS = ("## Context and Problem Statement", "## Decision Outcome")


def actor(channel: str = CHANNEL) -> Actor:
    return Actor(workspace="slack:T0TEST0001", channel=channel, user=USER, platform="slack")


def decide(server: SlackServer, count: int, channel: str = CHANNEL) -> list[str]:
    """`count` decisions straight through the engine (no HTTP round trip each); their titles."""
    titles = [f"Decision {n:03d} on the onboarding flow and its long tail" for n in range(count)]
    for n, title in enumerate(titles):
        reply = server.app.engine.handle(actor(channel), f"decide {title} | because of {n}")
        assert reply.ok, reply.error
    return titles


def exported(server: SlackServer, text: str) -> Upload:
    """Type `/align <text>`, wait for the file to be shared, and return it."""
    server.post_command(text)
    server.fake.wait_for_sync("files.completeUploadExternal", timeout=15)
    server.settle()
    (upload,) = server.fake.uploads.values()
    return upload


def madr_records(markdown: str) -> dict[str, str]:
    """Title -> record body, one per `# D-n: title` heading."""
    parts = re.split(r"^# D-\d+: (.+)$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_export_decisions_shares_the_whole_markdown_file_in_the_channel(
    slack_server_any_db: SlackServer,
) -> None:
    slack_server = slack_server_any_db
    titles = decide(slack_server, 3)
    upload = exported(slack_server, "export decisions")

    assert upload.channel_id == CHANNEL
    assert upload.filename == upload.title == f"decisions-{CHANNEL}.md"
    assert upload.initial_comment == f"Export of this channel's decisions for <@{USER}> (md)"
    records = madr_records(upload.text)
    assert list(records) == titles
    for title, body in records.items():
        assert all(field in body for field in MADR_FIELDS), body
        assert all(section in body for section in MADR_SECTIONS), body
        assert f"Chosen: {title}" in body
    assert f"* Decision-makers: @{USER}" in records[titles[0]]
    assert slack_server.fake.responses == []  # nothing private: the file is the answer


def test_a_large_export_arrives_whole(slack_server: SlackServer) -> None:
    titles = decide(slack_server, 300)
    upload = exported(slack_server, "export decisions format:md")

    assert len(upload.content) > 50_000  # far beyond what one message could hold
    (asked,) = slack_server.fake.calls_to("files.getUploadURLExternal")
    assert int(asked.args["length"]) == len(upload.content)
    records = madr_records(upload.text)
    assert list(records) == titles
    last = records[titles[-1]]  # the tail is there, record for record
    assert all(section in last for section in MADR_SECTIONS) and f"Chosen: {titles[-1]}" in last
    assert "…" not in upload.text  # not clipped anywhere


def test_items_export_as_csv_names_its_kind_and_format(slack_server: SlackServer) -> None:
    for title in ("Faster search", "Dark mode"):
        assert slack_server.app.engine.handle(actor(), f"item {title}").ok
    upload = exported(slack_server, "export items format:csv")

    assert upload.filename == f"items-{CHANNEL}.csv"
    assert upload.initial_comment == f"Export of this channel's items for <@{USER}> (csv)"
    rows = list(csv.DictReader(io.StringIO(upload.text)))
    assert sorted(row["title"] for row in rows) == ["Dark mode", "Faster search"]


def test_where_the_bot_is_not_in_the_channel_the_asker_gets_the_code_block_and_why(
    slack_server: SlackServer,
) -> None:
    titles = decide(slack_server, 60)
    slack_server.fake.fail_next("files.getUploadURLExternal", status=200, error="not_in_channel")
    slack_server.post_command("export decisions")

    (answer,) = slack_server.fake.wait_for_responses_sync(timeout=15)
    assert answer.body["response_type"] == "ephemeral"
    blocks = answer.body["blocks"]
    assert blocks[0]["text"]["text"] == f"*decisions-{CHANNEL}.md*"
    code = blocks[1]["text"]["text"]
    assert code.startswith("```") and code.endswith("```") and len(code) <= 3000
    assert f"# D-1: {titles[0]}" in code
    note = blocks[-1]["elements"][0]["text"]
    assert "could not be attached" in note
    assert "not a member of this channel" in note and "/invite @Align" in note
    assert "Showing 2,800 of" in note  # 60 decisions do not fit one message
    (failed,) = slack_server.fake.failed_calls
    assert failed.method == "files.getUploadURLExternal"
    assert slack_server.fake.calls_to("files.completeUploadExternal") == []
    assert slack_server.fake.uploads == {}


def test_a_failed_byte_upload_also_falls_back_with_the_reason(slack_server: SlackServer) -> None:
    decide(slack_server, 1)
    slack_server.fake.fail_next("upload", status=400)  # a 4xx is final; a 5xx would be retried
    slack_server.post_command("export decisions format:json")

    (answer,) = slack_server.fake.wait_for_responses_sync(timeout=15)
    blocks = answer.body["blocks"]
    assert blocks[0]["text"]["text"] == f"*decisions-{CHANNEL}.json*"
    assert '"title": "Decision 000' in blocks[1]["text"]["text"]
    note = blocks[-1]["elements"][0]["text"]
    assert "could not be attached" in note and "did not go through" in note
    assert "Showing" not in note  # small enough to show whole
    assert [(c.method, c.status) for c in slack_server.fake.failed_calls] == [("upload", 400)]
    assert slack_server.fake.uploads == {}


def test_without_the_files_write_scope_the_reason_says_so(slack_server: SlackServer) -> None:
    decide(slack_server, 1)
    slack_server.fake.fail_next("files.getUploadURLExternal", status=200, error="missing_scope")
    slack_server.post_command("export decisions")

    (answer,) = slack_server.fake.wait_for_responses_sync(timeout=15)
    note = answer.body["blocks"][-1]["elements"][0]["text"]
    assert "files:write" in note and "reinstall" in note
