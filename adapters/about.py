"""The public pages a Teams app package must link to, served by `align serve` itself:
`/` (what this is), `/privacy` (what Align stores) and `/terms` (who answers for it).

Teams shows a developer website, a privacy statement and terms of use to everyone who installs
an app, and refuses a package without them. `align teams-package --host HOST` points the three
at these pages, so a self-hosted Align needs no web site of its own; an organisation with its
own statements passes `--website`, `--privacy-url` and `--terms-url` instead.

The text says only what is true of every Align deployment: what the code stores and sends.
"""

from __future__ import annotations

import html

from aiohttp import web

from adapters.bootstrap import App
from adapters.web_keys import SERVING, Serving

_STYLE = "body{font:16px/1.5 system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em}"

PAGES: dict[str, tuple[str, list[str]]] = {
    "/": (
        "Align",
        [
            "Align keeps a product team's decisions, a RICE-scored roadmap, open questions and "
            "polls inside the chat it already uses (Slack, Microsoft Teams).",
            "This is a self-hosted deployment of Align, open-source software under the MIT "
            "licence. It is run by your organisation's administrators, not by the authors of "
            "Align.",
            '<a href="/privacy">Privacy</a> · <a href="/terms">Terms of use</a>',
        ],
    ),
    "/privacy": (
        "Align — privacy",
        [
            "Align stores what is typed to it: decisions, backlog items and their scores, "
            "questions and answers, polls and votes, with the chat ids of the people who made "
            "them, their display names, and the ids of the workspaces and channels involved. "
            "Anonymous poll ballots are stored under a keyed hash, never linked to a person.",
            "It all lives in this deployment's own database. Align sends it nowhere else, "
            "except to the chat platform it answers in and to the outgoing webhooks that "
            "members of a channel set up for that channel.",
            "On Slack, Align may read a channel's recent messages, only to find one of its own "
            "it may already have posted before a restart (so it does not post it twice); it "
            "keeps none of what it reads.",
            "To see, export or delete records, ask a channel member (<code>export</code>) or the "
            "administrators who run this deployment.",
        ],
    ),
    "/terms": (
        "Align — terms of use",
        [
            "This deployment of Align is provided by your organisation's administrators, who "
            "decide who may use it and how long its records are kept; questions about it go to "
            "them.",
            "The software is provided under the MIT licence, as is, without warranty of any kind.",
        ],
    ),
}


def page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>{body}</html>"
    )


def mount(web_app: web.Application, app: App) -> None:
    """The pages, on a process that serves the platforms (not on a worker)."""
    if not (web_app.get(SERVING) or Serving()).inbound:
        return
    for path, (title, paragraphs) in PAGES.items():
        text = page(title, paragraphs)

        async def serve(_: web.Request, text: str = text) -> web.Response:
            return web.Response(text=text, content_type="text/html")

        web_app.router.add_get(path, serve)
