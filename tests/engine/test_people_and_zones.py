"""Mentions from every surface end up as the platform's user id, and times typed in a channel are
read in that channel's time zone."""

from __future__ import annotations

from adapters.bootstrap import App
from bot.common import channel_settings
from bot.context import Actor


def test_owner_from_slack_teams_and_console_mentions(app: App) -> None:
    slack = Actor("slack:T1", "C1", "U9", platform="slack")
    teams = Actor(
        "teams:t1", "19:abc", "aad-me", platform="teams", mentions=(("Ana Smith", "aad-ana"),)
    )
    cases = [
        (slack, "decide A owner:<@U0123ABC>", "U0123ABC"),
        (slack, "decide B owner:<@U0123ABC|ana>", "U0123ABC"),
        (teams, "decide C owner:<at>Ana Smith</at>", "aad-ana"),
        (Actor("local", "general", "pm"), "decide D owner:@ana", "ana"),
    ]
    for actor, line, owner in cases:
        reply = app.engine.handle(actor, line)
        assert reply.ok, reply.error
        assert reply.data["owner"] == owner, line
    unknown = app.engine.handle(teams, "decide E owner:<at>Bob</at>")
    assert unknown.error == "I can't tell who <at>Bob</at> is."


def test_times_are_read_in_the_channels_zone(app: App) -> None:
    here = Actor("local", "berlin", "pm")
    with app.db.uow() as session:
        channel_settings(session, here).tz = "Europe/Berlin"
    asked = app.engine.handle(here, "ask Ready? due:fri")
    assert asked.data["due"] == "2026-11-27T16:00:00+00:00"  # 17:00 in Berlin
    shown = app.engine.handle(here, "show Q-1")
    assert ("Due", "Fri 2026-11-27 17:00 CET") in shown.blocks[1].fields  # type: ignore[union-attr]
    utc = app.engine.handle(Actor("local", "general", "pm"), "ask Ready? due:fri")
    assert utc.data["due"] == "2026-11-27T17:00:00+00:00"
    personal = app.engine.handle(
        Actor("local", "general", "ny", tz="America/New_York"), "ask X due:fri"
    )
    assert personal.data["due"] == "2026-11-27T22:00:00+00:00"  # a person's own zone wins
