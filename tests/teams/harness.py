"""Talk to the real `align serve` web app as Teams does.

The server is `adapters.server.create_web_app(app)` with the Teams mount, on 127.0.0.1; the
activities are the recorded Teams payloads in `data/` with `serviceUrl` pointed at a
FakeBotConnector, which records what the bot sends back (replies, card updates, proactive posts,
roster reads). Only the Teams mount is used: the runtime mount would start the interval
scheduler, and the tests drive the outbox dispatcher themselves.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.bootstrap import App, build
from adapters.server import create_web_app
from adapters.teams import http as teams_http
from adapters.web_keys import Serving
from bot.clock import FakeClock
from bot.context import Actor
from tests.conftest import make_settings, paced_by_the_clock
from tests.fakes import FakeBotConnector

DATA = Path(__file__).parent / "data"
MESSAGE = json.loads((DATA / "message_in_channel.json").read_text())
SUBMIT = json.loads((DATA / "card_submit.json").read_text())

TENANT = MESSAGE["channelData"]["tenant"]["id"]
WORKSPACE = f"teams:{TENANT}"
CHANNEL = MESSAGE["channelData"]["channel"]["id"]
THREAD = MESSAGE["conversation"]["id"]
BOT = MESSAGE["recipient"]


@dataclass(frozen=True)
class Person:
    teams_id: str
    name: str
    aad: str

    def account(self) -> dict[str, Any]:
        return {"id": self.teams_id, "name": self.name, "aadObjectId": self.aad}

    def roster_entry(self) -> dict[str, Any]:
        return {**self.account(), "userPrincipalName": f"{self.name.lower()}@example.com"}


ANA = Person("29:17bUana", "Ana", "b15a9416-0000-4000-8000-000000000001")
BEN = Person("29:17bUben", "Ben", "b15a9416-0000-4000-8000-000000000002")
CAI = Person("29:17bUcai", "Cai", "b15a9416-0000-4000-8000-000000000003")
DEE = Person("29:17bUdee", "Dee", "b15a9416-0000-4000-8000-000000000004")
TEAM = (ANA, BEN, CAI, DEE)

_ids = itertools.count(1759944800000)


def message(
    text: str,
    *,
    by: Person = ANA,
    service_url: str,
    mention_bot: bool = True,
    mentions: tuple[Person, ...] = (),
) -> dict[str, Any]:
    """A channel message as Teams posts it (the recorded sample, re-addressed)."""
    activity = copy.deepcopy(MESSAGE)
    activity["id"] = str(next(_ids))
    activity["serviceUrl"] = service_url
    activity["from"] = by.account()
    entities = [e for e in activity["entities"] if e["type"] != "mention"]
    if mention_bot:
        text = "<at>Align</at> " + text
        entities.insert(0, {"mentioned": BOT, "text": "<at>Align</at>", "type": "mention"})
    for person in mentions:
        entities.append(
            {
                "mentioned": {"id": person.teams_id, "name": person.name},
                "text": f"<at>{person.name}</at>",
                "type": "mention",
            }
        )
    activity["text"] = text
    activity["entities"] = entities
    return activity


def submit(value: dict[str, Any], *, reply_to: str, by: Person, service_url: str) -> dict[str, Any]:
    """An Adaptive Card Action.Submit as Teams delivers it: a message with `value`."""
    activity = copy.deepcopy(SUBMIT)
    activity["id"] = str(next(_ids))
    activity["serviceUrl"] = service_url
    activity["from"] = by.account()
    activity["value"] = value
    activity["replyToId"] = reply_to
    return activity


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    """The Adaptive Card an outgoing activity carries (asserting there is exactly one)."""
    attachments = activity.get("attachments") or []
    assert len(attachments) == 1, activity
    assert attachments[0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachments[0]["content"]


def texts_of(card: dict[str, Any]) -> list[str]:
    """Every TextBlock text and fact in the card, in order (columns included)."""
    found: list[str] = []

    def walk(elements: list[dict[str, Any]]) -> None:
        for element in elements:
            if element.get("type") == "TextBlock":
                found.append(element["text"])
            elif element.get("type") == "FactSet":
                found.extend(f"{f['title']}: {f['value']}" for f in element["facts"])
            elif element.get("type") == "ColumnSet":
                for column in element["columns"]:
                    walk(column["items"])

    walk(card["body"])
    return found


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for e in card["body"] if e.get("type") == "ActionSet" for a in e["actions"]]


@dataclass
class TeamsServer:
    app: App
    web_app: web.Application
    connector: FakeBotConnector
    url: str
    slept: list[float] = field(default_factory=list)

    @property
    def service_url(self) -> str:
        return self.connector.url

    def paced_by_the_clock(self) -> None:
        """tests.conftest.paced_by_the_clock: card updates and proactive posts keep their pace
        on the FakeClock, without real waits."""
        paced_by_the_clock(self.app, self.web_app)

    async def post(self, activity: dict[str, Any], *, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, json=activity, headers=headers) as response,
        ):
            status = response.status
        # Live cards are refreshed after the turn, like Slack's after the ack, and rosters are
        # listed in the background: let them finish.
        await self.app.postings.idle()
        await self.app.roster.idle()
        return status

    async def say(self, text: str, *, by: Person = ANA, **kw: Any) -> dict[str, Any]:
        activity = message(text, by=by, service_url=self.service_url, **kw)
        status = await self.post(activity)
        assert status in (200, 201), status
        return activity

    async def click(self, value: dict[str, Any], *, card_id: str, by: Person) -> dict[str, Any]:
        activity = submit(value, reply_to=card_id, by=by, service_url=self.service_url)
        status = await self.post(activity)
        assert status in (200, 201), status
        return activity

    def actor(self, person: Person = ANA) -> Actor:
        return Actor(workspace=WORKSPACE, channel=CHANNEL, user=person.aad, platform="teams")


@asynccontextmanager
async def teams_server(
    db_url: str,
    clock: FakeClock,
    *,
    roster: tuple[Person, ...] = TEAM,
    role: str = "all",
    **settings: str,
) -> AsyncIterator[TeamsServer]:
    async with FakeBotConnector() as connector:
        connector.members[CHANNEL] = [p.roster_entry() for p in roster]
        app = build(make_settings(db_url, **settings), clock=clock)
        # Without an app id, the endpoint exists only as `align serve --teams-emulator` has it.
        emulator = Serving(role=role, teams_emulator=not settings.get("MICROSOFT_APP_ID"))
        web_app = await create_web_app(app, mounts=[teams_http.mount], serving=emulator)
        server = TeamsServer(app, web_app, connector, url="")

        async def no_wait(seconds: float) -> None:
            server.slept.append(seconds)

        web_app[teams_http.TEAMS].retry.sleep = no_wait
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        try:
            yield server
        finally:
            await runner.cleanup()
            app.db.dispose()
