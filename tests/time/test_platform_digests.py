"""Issue 6 end to end on Slack and Teams: what the scheduler queues reaches the channel on time,
once, through the real server (signed slash commands, `/api/messages`), the mounted runtime and
the platform's fake — also when Slack fails for a while, or for good.

Time is the FakeClock. With it the runtime starts no interval jobs, so the tests wake it as those
jobs would: `web_app[runtime.RUNTIME_KEY].tick_and_dispatch()` on the server's own loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import runtime
from bot.clock import FakeClock
from tests.fakes.slack_api import Call
from tests.slack.conftest import CHANNEL, USER, SlackServer, running_slack_server
from tests.teams.harness import BEN as TEAMS_BEN
from tests.teams.harness import CHANNEL as TEAMS_CHANNEL
from tests.teams.harness import card_of, texts_of
from tests.time.helpers import teams_server_with_runtime

ANA, BEN, CAI = USER, "U0BEN00001", "U0CAI00001"
DECISION = "Keep the outbox in PostgreSQL"
# The fixtures' clock starts on Wednesday 25 November 2026, 09:00 UTC. Thursday 10:00 in Berlin
# (CET, UTC+1) is 09:00 UTC the next day.
SCHEDULE = "digest weekly thu 10:00 tz:Europe/Berlin"
DUE = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


# -- Slack ----------------------------------------------------------------------------------------


def wake(server: SlackServer) -> int:
    """One wake-up of `align serve`'s runtime: tick, then deliver; how many messages went out."""
    mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
    return server.loop.run(mounted.tick_and_dispatch())


def command(server: SlackServer, text: str, *, user: str = ANA) -> None:
    """`/align <text>` typed in the channel; returns once its replies are out."""
    response = server.post_command(text, user=user)
    assert response.status_code == 200, response.text
    server.settle()


def answer(server: SlackServer, text: str, *, user: str = ANA) -> list[str]:
    """`/align <text>` typed in the channel: the texts of what came back (a channel post, or a
    private answer through response_url)."""
    posts, responses = len(channel_posts(server)), len(server.fake.responses)
    command(server, text, user=user)
    bodies = [c.args for c in channel_posts(server)[posts:]]
    bodies += [r.body for r in server.fake.responses[responses:]]
    assert len(bodies) == 1, server.fake.calls_summary()
    return [bodies[0]["text"], *texts_in(bodies[0].get("blocks", []))]


def channel_posts(server: SlackServer) -> list[Call]:
    return [c for c in server.fake.calls_to("chat.postMessage") if c.args["channel"] == CHANNEL]


def texts_in(value: Any) -> list[str]:
    """Every text in some Block Kit (headers, sections, fields, context)."""
    if isinstance(value, list):
        return [t for v in value for t in texts_in(v)]
    if isinstance(value, dict):
        own = [value["text"]] if isinstance(value.get("text"), str) else []
        return own + [t for v in value.values() for t in texts_in(v)]
    return []


def schedule_with_activity(server: SlackServer) -> int:
    """The weekly digest and a week's activity; how many channel posts that made."""
    command(server, SCHEDULE)
    command(server, f"decide {DECISION} | one transaction with its cause")
    command(server, "item Single sign-on")
    command(server, "move I-1 now")
    return len(channel_posts(server))


def test_slack_digest_goes_out_at_its_local_time_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        before = schedule_with_activity(server)

        clock.set(DUE - timedelta(minutes=1))
        assert wake(server) == 0
        assert len(channel_posts(server)) == before

        clock.set(DUE)
        assert wake(server) == 1
        (post,) = channel_posts(server)[before:]
        assert post.token == "xoxb-test"
        blocks = post.args["blocks"]
        assert blocks[0]["text"]["text"].startswith("Roadmap digest")
        texts = texts_in(blocks)
        assert any(f"*D-1*  {DECISION}" in t for t in texts), texts
        assert any("*I-1*  Single sign-on" in t for t in texts), texts  # added, and in Now

        clock.set(DUE + timedelta(minutes=1))
        assert wake(server) == 0
        clock.set(DUE + timedelta(days=1))
        assert wake(server) == 0
        assert len(channel_posts(server)) == before + 1


def test_slack_poll_reminds_non_voters_then_closes_on_time_and_posts_its_result_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        server.fake.channel_members[CHANNEL] = [ANA, BEN, CAI, server.fake.bot_user_id]
        command(server, 'poll "Ship date or scope?" "Date" "Scope" closes:3d')
        command(server, "vote P-1 1", user=ANA)
        closes = clock.now() + timedelta(days=3)
        before = len(channel_posts(server))

        clock.set(closes - timedelta(hours=24, minutes=1))
        assert wake(server) == 0
        clock.set(closes - timedelta(hours=24))
        assert wake(server) == 1
        (reminder,) = channel_posts(server)[before:]
        text = reminder.args["text"]
        assert text.startswith("Reminder:") and "P-1" in text, text
        assert f"<@{BEN}>" in text and f"<@{CAI}>" in text
        assert f"<@{ANA}>" not in text  # she voted
        clock.set(closes - timedelta(hours=23))
        assert wake(server) == 0

        clock.set(closes - timedelta(minutes=1))
        assert wake(server) == 0
        clock.set(closes)
        assert wake(server) == 1
        (_, result) = channel_posts(server)[before:]
        assert result.args["text"] == "P-1 closed: Date"
        assert any("closed on time" in t for t in texts_in(result.args["blocks"]))
        clock.set(closes + timedelta(minutes=5))
        assert wake(server) == 0
        server.settle()
        assert len(channel_posts(server)) == before + 2
        assert any("closed" in t for t in answer(server, "vote P-1 2", user=BEN))


def test_slack_poll_closed_on_time_updates_its_own_message_in_place(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        command(server, 'poll "Ship date or scope?" "Date" "Scope" closes:1d')
        (posted,) = channel_posts(server)
        assert any(b["type"] == "actions" for b in posted.args["blocks"])
        command(server, "vote P-1 2", user=BEN)
        updates_before = len(server.fake.calls_to("chat.update"))

        clock.advance(timedelta(days=1))
        assert wake(server) == 1  # the result, posted by the scheduler
        server.settle()
        update = server.fake.calls_to("chat.update")[-1]
        assert len(server.fake.calls_to("chat.update")) > updates_before
        assert (update.args["channel"], update.args["ts"]) == (CHANNEL, posted.result["ts"])
        texts = texts_in(update.args["blocks"])
        assert any("Winner: Scope" in t for t in texts), texts
        assert any(t.startswith("one choice · closed") for t in texts), texts
        assert not any(b["type"] == "actions" for b in update.args["blocks"])  # no more buttons


def test_slack_outage_the_digest_is_retried_on_later_wake_ups_and_delivered_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        before = schedule_with_activity(server)
        fake = server.fake
        fake.fail_next("chat.postMessage", status=500, retry_after=None, times=2)
        fake.fail_next("chat.postMessage", status=429, retry_after=30)

        clock.set(DUE)
        assert wake(server) == 0
        assert [c.status for c in fake.failed_calls] == [500]
        clock.advance(timedelta(minutes=5))  # past any backoff after one or two failures
        assert wake(server) == 0
        clock.advance(timedelta(minutes=5))
        assert wake(server) == 0
        assert [c.status for c in fake.failed_calls] == [500, 500, 429]
        assert len(channel_posts(server)) == before

        clock.advance(timedelta(seconds=29))  # Slack said: retry after 30 seconds
        assert wake(server) == 0
        assert len(fake.failed_calls) == 3 and len(channel_posts(server)) == before
        clock.advance(timedelta(seconds=1))
        assert wake(server) == 1
        (post,) = channel_posts(server)[before:]
        assert any(DECISION in t for t in texts_in(post.args["blocks"]))

        clock.advance(timedelta(hours=1))
        assert wake(server) == 0
        assert len(channel_posts(server)) == before + 1
        status = answer(server, "digest status")
        assert not any("Failed deliveries" in t for t in status), status
        assert any("0 message(s) to deliver" in t for t in status), status


def test_slack_permanent_failure_is_not_retried_and_shows_in_digest_status(
    migrated_db_url: str, clock: FakeClock
) -> None:
    with running_slack_server(migrated_db_url, clock) as server:
        schedule_with_activity(server)
        assert not any("Failed deliveries" in t for t in answer(server, "digest status"))
        before = len(channel_posts(server))
        server.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")

        clock.set(DUE)
        assert wake(server) == 0
        clock.advance(timedelta(hours=1))
        assert wake(server) == 0
        assert len(server.fake.failed_calls) == 1  # given up at once: no retry can fix it
        assert len(channel_posts(server)) == before

        status = answer(server, "digest status")
        assert any("Failed deliveries" in t for t in status), status
        assert any("channel_not_found" in t for t in status), status


# -- Teams ----------------------------------------------------------------------------------------


def test_teams_digest_is_sent_proactively_at_its_local_time_once(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server_with_runtime(migrated_db_url, clock) as server:
            mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
            await server.say(SCHEDULE)  # also stores the channel's conversation reference
            await server.say(f"decide {DECISION} | one transaction with its cause")
            sent = server.connector.sent_of

            clock.set(DUE - timedelta(minutes=1))
            assert await mounted.tick_and_dispatch() == 0
            assert sent("send") == []

            clock.set(DUE)
            assert await mounted.tick_and_dispatch() == 1
            (post,) = sent("send")
            assert post.conversation_id == TEAMS_CHANNEL and post.activity_id is None
            texts = texts_of(card_of(post.activity))
            assert texts[0].startswith("Roadmap digest"), texts
            assert any(DECISION in t for t in texts), texts

            clock.set(DUE + timedelta(minutes=1))
            assert await mounted.tick_and_dispatch() == 0
            clock.set(DUE + timedelta(days=1))
            assert await mounted.tick_and_dispatch() == 0
            assert len(sent("send")) == 1

    asyncio.run(main())


def test_teams_poll_closed_on_time_updates_its_card_in_place(
    migrated_db_url: str, clock: FakeClock
) -> None:
    async def main() -> None:
        async with teams_server_with_runtime(migrated_db_url, clock) as server:
            mounted: runtime.Runtime = server.web_app[runtime.RUNTIME_KEY]
            await server.say("poll “Ship date or scope?” “Date” “Scope” closes:1d")
            [posted] = server.connector.sent_of("reply")
            card = card_of(posted.activity)
            assert any(e["type"] == "ActionSet" for e in card["body"])
            vote = next(e for e in card["body"] if e["type"] == "ActionSet")["actions"][1]
            await server.click(vote["data"], card_id=posted.result_id, by=TEAMS_BEN)
            updates_before = len(server.connector.sent_of("update"))

            clock.advance(timedelta(days=1))
            assert await mounted.tick_and_dispatch() == 1  # the result, sent proactively
            await server.app.postings.idle()
            updates = server.connector.sent_of("update")[updates_before:]
            assert [(u.conversation_id, u.activity_id) for u in updates] == [
                (posted.conversation_id, posted.result_id)
            ]
            final = card_of(updates[-1].activity)
            texts = texts_of(final)
            assert any("Winner: Scope" in t for t in texts), texts
            assert any("closed" in t for t in texts), texts
            assert not any(e["type"] == "ActionSet" for e in final["body"])  # buttons gone

    asyncio.run(main())
