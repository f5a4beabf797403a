"""A list's `data` is built when first read (`views.Later`): once, with what was in hand, and it
reads, changes and travels (the outbox's JSON) as the dict it stands for."""

from __future__ import annotations

import json
from typing import Any

from bot.views import Later, Reply, reply_from_payload, reply_to_payload


def test_it_is_built_once_and_only_when_read() -> None:
    built: list[int] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"items": [1, 2], "page": {"page": 1}}

    data = Later(build)
    reply = Reply(ok=True, kind="list", text="2 items", data=data)
    assert built == []
    assert reply.data["items"] == [1, 2]
    reply.data["linked"] = "D-1"
    assert dict(reply.data) == {"items": [1, 2], "page": {"page": 1}, "linked": "D-1"}
    assert built == [1]


def test_it_goes_out_as_json_and_comes_back_as_a_dict() -> None:
    reply = Reply(ok=True, kind="list", text="1 item", data=Later(lambda: {"items": [3]}))
    assert reply.to_json() == {"ok": True, "kind": "list", "items": [3], "text": "1 item"}
    payload = json.loads(json.dumps(reply_to_payload(reply)))
    assert reply_from_payload(payload).data == {"items": [3]}
