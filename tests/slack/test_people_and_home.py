"""People as Slack knows them (admins, time zones, channel rosters) and the personal App Home."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.errors import DeadlockDetected
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.clock import FakeClock
from bot.context import Actor
from storage import profiles
from storage.models import Profile
from tests.slack.conftest import CHANNEL, USER, SlackServer

TEAM_WS = "slack:T0TEST0001"


def _actor(user: str = USER, channel: str = CHANNEL) -> Actor:
    return Actor(workspace=TEAM_WS, channel=channel, user=user, platform="slack")


def test_profiles_are_looked_up_once_and_kept_with_their_time_zone(
    slack_server: SlackServer,
) -> None:
    slack_server.fake.users[USER] = {"tz": "America/New_York"}
    slack_server.post_command("decide One")
    slack_server.post_command("decide Two")
    slack_server.fake.wait_for_sync("chat.postMessage", count=2)
    slack_server.settle()
    assert len(slack_server.fake.calls_to("users.info")) == 1
    with slack_server.app.db.uow() as session:
        profile = session.execute(select(Profile)).scalar_one()
        assert (profile.workspace, profile.user) == (TEAM_WS, USER)
        assert profile.tz == "America/New_York" and profile.is_admin is False
    # Times typed by this person are read, and shown, in their zone.
    slack_server.post_command('poll "Lunch?" "Yes" "No" closes:"2026-11-27 12:00"')
    post = slack_server.fake.wait_for_sync("chat.postMessage", count=3)[-1]
    assert "closes Fri 2026-11-27 12:00 EST" in json.dumps(post.args["blocks"])
    poll = slack_server.app.engine.handle(_actor(), "show P-1")
    assert poll.ok


def test_a_workspace_admin_may_close_someone_elses_poll(slack_server: SlackServer) -> None:
    fake = slack_server.fake
    fake.users["U0ADMIN001"] = {"is_admin": True}
    slack_server.post_command('poll "Go?" "Yes" "No"', user=USER)
    fake.wait_for_sync("chat.postMessage")
    slack_server.post_command("close P-1", user="U0BEN00001")
    (refused,) = fake.wait_for_responses_sync()
    assert refused.body["response_type"] == "ephemeral"
    assert "Only <@U0ANA00001> or a workspace admin can close P-1" in refused.body["text"]
    slack_server.post_command("close P-1", user="U0ADMIN001")
    closed = fake.wait_for_sync("chat.postMessage", count=2)[-1]
    assert "Closed P-1" in closed.args["text"]


def test_participation_counts_the_channels_real_members(slack_server: SlackServer) -> None:
    fake = slack_server.fake
    fake.channel_members[CHANNEL] = [USER, "U0BEN00001", "U0CAI00001", fake.bot_user_id]
    slack_server.post_command('poll "Go?" "Yes" "No"')
    (post,) = fake.wait_for_sync("chat.postMessage")
    text = json.dumps(post.args["blocks"])
    assert "0 of 3 voted" in text  # three people, the bot not counted
    assert "<@U0BEN00001>" in text and "<@U0CAI00001>" in text


def test_a_stale_roster_is_listed_again_in_the_background_not_before_the_command(
    slack_server: SlackServer,
) -> None:
    fake, clock = slack_server.fake, slack_server.app.clock
    assert isinstance(clock, FakeClock)
    fake.channel_members[CHANNEL] = [USER, "U0BEN00001", fake.bot_user_id]
    slack_server.post_command('poll "Go?" "Yes" "No"')  # the channel's first list, waited for
    (first,) = fake.wait_for_sync("chat.postMessage")
    assert "0 of 2 voted" in json.dumps(first.args["blocks"])
    slack_server.settle()

    clock.advance(timedelta(hours=1))  # the roster is stale now
    fake.channel_members[CHANNEL] = [USER, "U0BEN00001", "U0CAI00001", fake.bot_user_id]
    fake.hold("conversations.members")
    slack_server.post_command('poll "Again?" "Yes" "No"')
    fake.wait_held_sync("conversations.members")
    # Answered while Slack is still listing the members: on the stored roster.
    second = fake.wait_for_sync("chat.postMessage", count=2)[-1]
    assert "0 of 2 voted" in json.dumps(second.args["blocks"])
    fake.release("conversations.members")
    slack_server.settle()
    assert slack_server.app.roster.members(f"slack:{slack_server.team}", CHANNEL) == [
        USER,
        "U0BEN00001",
        "U0CAI00001",
    ]


def test_app_home_lists_what_waits_for_the_person_within_slack_limits(
    slack_server: SlackServer,
) -> None:
    engine = slack_server.app.engine
    clock = slack_server.app.clock
    assert isinstance(clock, FakeClock)
    for n in range(15):
        engine.handle(_actor(channel=f"C0CHAN{n:04d}"), f'poll "Poll {n}?" "A" "B"')
        engine.handle(_actor(channel=f"C0CHAN{n:04d}"), f"item Now {n} lane:now")
    # A channel Ana never used: its poll must not show on her Home.
    engine.handle(_actor(user="U0BEN00001", channel="G0SECRET01"), 'poll "Secret?" "A" "B"')
    clock.advance(timedelta(hours=1))  # the product channel is where Ana was last
    engine.handle(_actor(), 'poll "Open in product?" "A" "B"')
    for n in range(25):
        engine.handle(_actor(), f"decide Decision {n}")
        engine.handle(_actor(), f"item Item {n} reach:{n + 1} impact:1 confidence:50% effort:1")
        engine.handle(_actor(), f"ask Question {n}? owner:<@{USER}>")

    event = {"type": "app_home_opened", "user": USER, "channel": "D0HOME0001", "tab": "home"}
    assert slack_server.post_event(event).status_code == 200
    (publish,) = slack_server.fake.wait_for_sync("views.publish")
    assert publish.args["user_id"] == USER
    view = publish.args["view"]
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    text = json.dumps(view["blocks"])
    assert "Polls you can vote in" in text and "Open in product?" in text
    assert "Secret?" not in text
    assert "Your open questions" in text and "Question 24?" in text
    assert "Recent decisions" in text and "Decision 24" in text
    assert "Now in <#C0CHAN" in text
    # Her ten most recent channels' open polls: the product one and nine others.
    assert text.count("not voted yet") == 10


def test_a_home_for_someone_new_says_how_to_start(slack_server: SlackServer) -> None:
    event = {"type": "app_home_opened", "user": "U0NEW00001", "channel": "D0NEW", "tab": "home"}
    slack_server.post_event(event)
    (publish,) = slack_server.fake.wait_for_sync("views.publish")
    assert "/align help" in json.dumps(publish.args["view"]["blocks"])


def test_profiles_expire_after_an_hour(slack_server: SlackServer) -> None:
    slack_server.post_command("decide One")
    slack_server.fake.wait_for_sync("chat.postMessage")
    clock = slack_server.app.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(minutes=61))
    slack_server.fake.users[USER] = {"is_owner": True}
    slack_server.post_command("decide Two")
    slack_server.fake.wait_for_sync("chat.postMessage", count=2)
    slack_server.settle()
    assert len(slack_server.fake.calls_to("users.info")) == 2
    with slack_server.app.db.uow() as session:
        profile = session.execute(select(Profile)).scalar_one()
        assert profile.is_admin is True
        assert profile.fetched_at > datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_a_profile_write_that_meets_a_deadlock_is_tried_again_not_the_command_failed(
    slack_server_any_db: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes (a web process running reads, its worker the writes) each store the
    profiles of the people they serve, a group of them per transaction, in the order they came:
    on PostgreSQL two groups with the same people in another order deadlock, and the one picked
    fails. Its writes are tried again, alone — the person's command is answered, not told
    "Something went wrong" (bench_slack's split shape: hundreds of `decisions` so)."""
    server = slack_server_any_db
    real, met = profiles.save_person, []

    def deadlocked_once(*args: Any, **kw: Any) -> None:
        if not met:
            met.append(1)
            raise OperationalError("INSERT INTO profiles …", {}, DeadlockDetected("deadlock"))
        real(*args, **kw)

    monkeypatch.setattr(profiles, "save_person", deadlocked_once)
    server.fake.users[USER] = {"tz": "America/New_York"}
    server.post_command("decide Taken all the same")
    server.settle()
    assert met
    (post,) = server.fake.calls_to("chat.postMessage")
    assert "Taken all the same" in json.dumps(post.args["blocks"])
    with server.app.db.uow() as session:
        assert session.execute(select(Profile.tz)).scalar_one() == "America/New_York"
