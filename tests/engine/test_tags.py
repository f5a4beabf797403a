"""Tags read the same way when an object is created and when it is edited."""

from __future__ import annotations

from tests.conftest import Chat


def test_comma_separated_tags_are_separate_tags_on_create_and_on_edit(chat: Chat) -> None:
    assert chat.ok("decide Ship EU tag:launch,EU tag:#gdpr").data["tags"] == [
        "eu",
        "gdpr",
        "launch",
    ]
    assert chat.ok("item SSO tag:auth,enterprise").data["tags"] == ["auth", "enterprise"]
    assert chat.ok("edit I-1 tags:auth,,Security").data["tags"] == ["auth", "security"]
    assert [d["id"] for d in chat.ok("decisions tag:eu").data["decisions"]] == ["D-1"]
