"""Hostile requests to /slack/events are cheap: the signature is checked on the raw body before
anything is parsed (401), a signed but malformed body is a 400, a signed request without a team,
user or channel is a 400 — nothing runs, nothing is stored, never a 500."""

from __future__ import annotations

import json
import random
import sqlite3
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from storage.db import normalize_url
from storage.models import AuditEntry, Channel, Decision, InboxEntry, Member
from tests.fakes import sign_slack_request
from tests.slack.conftest import CHANNEL, USER, SlackServer

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def stored(server: SlackServer) -> dict[str, int]:
    with server.app.db.uow() as session:
        return {
            model.__tablename__: int(
                session.execute(select(func.count()).select_from(model)).scalar_one()
            )
            for model in (Decision, AuditEntry, Member, Channel, InboxEntry)
        }


NOTHING = {"decisions": 0, "audit": 0, "members": 0, "channels": 0, "inbox": 0}


def raw_post(server: SlackServer, body: bytes, content_type: str, headers: dict[str, str]) -> int:
    response = server.http.post(
        server.url + "/slack/events",
        content=body,
        headers={"Content-Type": content_type, **headers},
    )
    return response.status_code


def signed_post(server: SlackServer, body: bytes, content_type: str) -> int:
    return raw_post(server, body, content_type, sign_slack_request(server.signing_secret, body))


MALFORMED_BODIES: list[tuple[bytes, str]] = [
    (b"payload=not-json", FORM),
    (b"payload=%7B%22type%22%3A", FORM),  # payload={"type":  (cut short)
    (b"payload=%5B1%2C2%5D", FORM),  # payload=[1,2]
    (b"payload=%22text%22", FORM),  # payload="text"
    (b"payload=null", FORM),
    (b"[1, 2, 3]", JSON),
    (b'"just a string"', JSON),
    (b"42", JSON),
    (b"null", JSON),
    (b"{not json", JSON),
    (b'{"type": "event_callback"', JSON),
    (b"\xff\xfe\x00garbage", FORM),
    (b"\xc3\x28", JSON),  # invalid UTF-8
    (b"{" + b'"a":' * 10 + b"1}", JSON),
]


def test_unsigned_junk_is_refused_before_parsing(slack_server: SlackServer) -> None:
    now = str(int(time.time()))
    bad_headers: list[dict[str, str | bytes]] = [
        {},
        {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "-5", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "١٢٣".encode(), "X-Slack-Signature": "v0=00"},  # Arabic
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=zz"},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": ("é" * 64).encode()},
        {"X-Slack-Request-Timestamp": now},
    ]
    statuses = [
        raw_post(slack_server, body, content_type, headers)
        for headers in bad_headers
        for body, content_type in [
            *MALFORMED_BODIES,
            (slack_server.command_body("decide Unsigned").encode(), FORM),
        ]
    ]
    assert set(statuses) == {401}
    assert len(statuses) == len(bad_headers) * (len(MALFORMED_BODIES) + 1)
    slack_server.settle()
    assert stored(slack_server) == NOTHING
    assert slack_server.fake.calls == []


def test_signed_but_malformed_bodies_get_400(slack_server: SlackServer) -> None:
    statuses = [signed_post(slack_server, body, ct) for body, ct in MALFORMED_BODIES]
    assert statuses == [400] * len(MALFORMED_BODIES)
    slack_server.settle()
    assert stored(slack_server) == NOTHING
    assert slack_server.fake.calls == []


def _without(fields: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k != key}


@pytest.mark.parametrize("field", ["team_id", "user_id", "channel_id"])
def test_a_signed_command_without_team_user_or_channel_gets_400(
    slack_server: SlackServer, field: str
) -> None:
    fields = dict(
        (k, v)
        for k, v in (
            pair.split("=", 1) for pair in slack_server.command_body("decide Nobody's").split("&")
        )
    )
    for body in (_without(fields, field), {**fields, field: ""}):
        assert (
            signed_post(slack_server, "&".join(f"{k}={v}" for k, v in body.items()).encode(), FORM)
            == 400
        )
    slack_server.settle()
    assert stored(slack_server) == NOTHING
    assert slack_server.fake.calls == []


def test_signed_clicks_and_events_without_their_ids_get_400(slack_server: SlackServer) -> None:
    click = slack_server.action_payload(action_id="align_cmd_0", value="vote P-1 1")
    broken_clicks = [
        {**click, "team": None, "user": {"id": USER}},
        {**click, "team": "T0STRING", "user": {"id": USER}},
        {**click, "user": {"team_id": slack_server.team}},
        {**click, "user": "U0STRING"},
        {**click, "channel": None},
        {**click, "channel": {"id": 5}},
        {**click, "actions": []},
        {**click, "actions": ["x"]},
        {**click, "actions": [{"value": "vote P-1 1"}]},
        {**click, "actions": "vote"},
    ]
    for payload in broken_clicks:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        assert signed_post(slack_server, body, FORM) == 400, payload
    event = json.loads(slack_server.event_body({"type": "app_home_opened", "user": USER}))
    broken_events = [
        {**event, "team_id": None, "authorizations": []},
        {**event, "event": None},
        {**event, "event": "app_home_opened"},
        {**event, "event": {"user": USER}},
        {**event, "event": {"type": "app_home_opened"}},
        {**event, "event": {"type": "app_home_opened", "user": ["U1"]}},
    ]
    for body in broken_events:
        assert signed_post(slack_server, json.dumps(body).encode(), JSON) == 400, body
    slack_server.settle()
    assert stored(slack_server) == NOTHING
    assert slack_server.fake.calls == []


def test_a_command_mentioning_payload_is_read_as_typed(slack_server: SlackServer) -> None:
    """Bolt's own parser took any form body containing "payload" for interactivity."""
    assert slack_server.post_command("decide Version the payload schema").status_code == 200
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    with slack_server.app.db.uow() as session:
        assert session.execute(select(Decision.title)).scalars().all() == [
            "Version the payload schema"
        ]


def _junk(rng: random.Random) -> bytes:
    """A random body near what Slack sends: forms, payload forms, JSON of any shape, bytes."""
    atoms: list[object] = [
        None, True, 0, -1, 1e308, "", "x", "T0", [], {}, [None], {"id": None}, {"id": 7},
    ]  # fmt: skip
    keys = ["type", "team", "team_id", "user", "user_id", "channel", "channel_id", "command",
            "text", "event", "actions", "view", "payload", "container", "enterprise"]  # fmt: skip
    shapes = ["block_actions", "view_submission", "event_callback", "url_verification", "x"]

    def value(depth: int) -> object:
        if depth and rng.random() < 0.4:
            return {rng.choice(keys): value(depth - 1) for _ in range(rng.randint(0, 4))}
        if rng.random() < 0.3:
            return rng.choice(shapes)
        return rng.choice(atoms)

    kind = rng.randrange(4)
    obj = {rng.choice(keys): value(3) for _ in range(rng.randint(0, 6))}
    if rng.random() < 0.5:
        obj["type"] = rng.choice(shapes)
    if kind == 0:
        return json.dumps(obj).encode()
    if kind == 1:
        return urlencode({"payload": json.dumps(obj)}).encode()
    if kind == 2:
        return urlencode({k: str(v) for k, v in obj.items()}).encode()
    return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 80))).encode()


def test_three_hundred_random_signed_and_unsigned_requests_never_get_a_500(
    slack_server: SlackServer,
) -> None:
    rng = random.Random(10)
    statuses: list[int] = []
    bodies: list[bytes] = []
    for n in range(300):
        body = _junk(rng)
        bodies.append(body)
        content_type = rng.choice([FORM, JSON, "text/plain", ""])
        if n % 2:
            statuses.append(signed_post(slack_server, body, content_type))
        else:
            headers = {"X-Slack-Request-Timestamp": rng.choice(["abc", "", "1", "0x10"])}
            statuses.append(raw_post(slack_server, body, content_type, headers))
    slack_server.settle()
    assert [b for b, s in zip(bodies, statuses, strict=True) if s >= 500] == []
    assert {s for i, s in enumerate(statuses) if i % 2 == 0} == {401}
    assert stored(slack_server)["decisions"] == 0


ATOMS: list[object] = [None, True, 0, 1.5, "", "x", "T0", [], {}, [None], [{}], {"id": None}]


def _mutated(rng: random.Random, valid: dict[str, object]) -> dict[str, object]:
    """A real payload with one or two fields (at any depth) replaced by a value of a wrong type
    or removed."""
    body = json.loads(json.dumps(valid))
    for _ in range(rng.randint(1, 2)):
        target = body
        while True:
            keys = list(target)
            if not keys:
                break
            key = rng.choice(keys)
            if isinstance(target[key], dict) and target[key] and rng.random() < 0.5:
                target = target[key]
                continue
            if rng.random() < 0.2:
                del target[key]
            else:
                target[key] = rng.choice(ATOMS)
            break
    return body


def test_three_hundred_mutated_real_payloads_never_get_a_500(
    slack_server: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(12)
    click = slack_server.action_payload(action_id="align_cmd_0", value="help")
    view = slack_server.view_submission({"callback_id": "align_ballot"}, {})
    event = json.loads(slack_server.event_body({"type": "app_home_opened", "user": USER}))
    statuses = []
    for n in range(300):
        choice = n % 3
        if choice == 0:
            body = urlencode({"payload": json.dumps(_mutated(rng, rng.choice([click, view])))})
            statuses.append(signed_post(slack_server, body.encode(), FORM))
        elif choice == 1:
            mutated = _mutated(rng, event)
            mutated["event_id"] = f"Ev{n}"
            statuses.append(signed_post(slack_server, json.dumps(mutated).encode(), JSON))
        else:
            fields = dict(
                pair.split("=", 1) for pair in slack_server.command_body("help").split("&")
            )
            if rng.random() < 0.5:
                del fields[rng.choice(list(fields))]
            else:
                fields[rng.choice(list(fields))] = ""
            body = "&".join(f"{k}={v}" for k, v in fields.items())
            statuses.append(signed_post(slack_server, body.encode(), FORM))
    slack_server.settle()
    assert max(statuses) < 500, sorted(set(statuses))
    assert 400 in statuses and 200 in statuses  # both sides of the line were exercised
    crashes = [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert crashes == []


@contextmanager
def write_locked(migrated_db_url: str) -> Iterator[None]:
    """Another process holding the database's write lock (SQLite) / the inbox table (PG)."""
    url = make_url(normalize_url(migrated_db_url))
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_a_request_the_database_cannot_take_in_time_is_not_acknowledged(
    slack_server_any_db: SlackServer,
) -> None:
    """Recording a request may hold its ack ALIGN_INBOX_ACK_BUDGET (1.5 s) at most. With the
    database locked for as long as the test likes, Slack gets a 503 within that budget — not a
    200 for something not stored, so it retries. The insert that was waiting lands once the
    lock goes and the event runs from its row; Slack's retry is then answered, not run again."""
    server = slack_server_any_db
    event = {"type": "app_home_opened", "user": USER, "channel": "D0HOME0001", "tab": "home"}
    with write_locked(str(server.app.db.url)):
        began = time.monotonic()
        response = server.post_event(event, event_id="Ev0HUNG0001")
        took = time.monotonic() - began
        assert response.status_code == 503
        assert took < 3.0, f"held the ack {took:.1f} s"
        assert server.fake.calls_to("views.publish") == []  # nothing could run yet
    server.fake.wait_for_sync("views.publish", timeout=30)
    assert server.post_event(event, event_id="Ev0HUNG0001", retry_num=1).status_code == 200
    server.settle()
    assert len(server.fake.calls_to("views.publish")) == 1
    with server.app.db.uow() as session:
        rows = session.execute(select(InboxEntry.dedupe_key, InboxEntry.status)).all()
    assert [tuple(row) for row in rows] == [("slack:Ev0HUNG0001", "done")]


def test_the_signed_happy_paths_still_work(slack_server: SlackServer) -> None:
    assert slack_server.post_command("decide Use Postgres", channel=CHANNEL).status_code == 200
    slack_server.fake.wait_for_sync("chat.postMessage")
    slack_server.settle()
    assert stored(slack_server)["decisions"] == 1
