"""The replies of `pending`, `questions` and `decisions`, pinned whole (text, blocks, data,
privacy) on one channel holding every case they tell apart: sign-offs owed with and without a
due time, answered or another's; polls open, closing later, closed by time, closed by hand or
voted in; questions overdue, due later, without a due time, answered or another's; decisions
with tags, an owner and a review date; a channel's zone and a person's own; empty channels and
pages past the end. Written before these reads moved to statements built once and the raw
cursor, so that they answer exactly as before, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.common import channel_settings
from bot.context import Actor
from bot.views import Reply
from tests.conftest import Chat

CALLS = (
    # (user, channel or None for #general, the person's own zone or None, line)
    ("ana", None, None, "pending"),
    ("ana", None, "America/New_York", "pending"),
    ("ben", None, None, "pending"),
    ("cho", None, None, "pending"),
    ("ana", "random", None, "pending"),
    ("ana", "empty", None, "pending"),
    ("pm", None, None, "questions"),
    ("pm", None, None, "questions overdue"),
    ("ana", None, None, "questions mine"),
    ("pm", None, None, "questions all"),
    ("pm", None, "Asia/Tokyo", "questions all"),
    ("pm", None, None, "questions all page:2"),
    ("pm", "empty", None, "questions"),
    ("pm", "empty", None, "questions page:2"),
    ("pm", None, None, "questions later"),
    ("pm", None, None, "decisions"),
    ("pm", None, "Asia/Tokyo", "decisions"),
    ("pm", None, None, "decisions page:2"),
    ("pm", "empty", None, "decisions"),
    ("pm", "empty", None, "decisions page:2"),
    ("pm", "random", None, "decisions"),
    ("pm", None, None, "decisions plain tag:alpha"),
    ("pm", None, None, "decisions status:proposed"),
)


def fill(chat: Chat, clock: FakeClock) -> None:
    with chat.app.db.uow() as session:
        channel_settings(session, chat.actor()).tz = "Europe/Berlin"
    ok = chat.ok
    ok("propose No due first approvers:@ana rule:majority")
    ok("propose Due friday approvers:@ana,@ben due:fri")
    ok("propose Due tomorrow approvers:@ana due:1d")
    ok("propose Already agreed approvers:@ana due:2d")
    ok("agree D-4", user="ana")
    ok("propose Not hers approvers:@ben due:3d")
    ok("propose Elsewhere approvers:@ana due:1d", channel="random")
    ok("decide Plain one | why not owner:@cho tag:zeta tag:alpha tag:mid review:2027-03-01")
    ok("decide Second plain")
    ok('poll "Open forever?" "A" "B"')
    ok('poll "Closes later?" "A" "B" closes:fri')
    ok('poll "Closes soon?" "A" "B" closes:2h')
    ok('poll "Closed by hand?" "A" "B"')
    ok("close P-4")
    ok('poll "Voted?" "A" "B"')
    ok("vote P-5 1", user="ana")
    ok("ask Overdue soon? owner:@ana due:1h")
    ok("ask Later? owner:@ana due:fri")
    ok("ask Whenever? owner:@ana")
    ok("ask Answered? owner:@ana due:1d")
    ok("answer Q-4 yes")
    ok("ask Bens? owner:@ben due:1h")
    ok("ask Nobodys?")
    clock.advance(timedelta(hours=3))


def shown(reply: Reply) -> dict[str, Any]:
    return {
        "json": reply.to_json(),
        "blocks": [repr(block) for block in reply.blocks],
        "ephemeral": reply.ephemeral,
    }


def replies(chat: Chat, clock: FakeClock) -> dict[str, dict[str, Any]]:
    fill(chat, clock)
    out: dict[str, dict[str, Any]] = {}
    for user, channel, tz, line in CALLS:
        actor = Actor(chat.workspace, channel or chat.channel, user, tz=tz)
        out[f"{user} #{channel or chat.channel} {tz or '-'}: {line}"] = shown(
            chat.app.engine.handle(actor, line)
        )
    return out


def test_list_replies_are_as_pinned(chat: Chat, clock: FakeClock) -> None:
    got = replies(chat, clock)
    assert list(got) == list(EXPECTED)
    for key, expected in EXPECTED.items():
        assert got[key] == expected, key


EXPECTED: dict[str, dict[str, Any]] = {
    "ana #general -: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": ["D-3", "D-2", "D-1"],
            "polls": ["P-1", "P-2"],
            "questions": ["Q-1", "Q-2", "Q-3"],
            "text": "8 things waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "ListBlock(lines=(Line(ref='D-3', text='Due tomorrow', "
            "meta='due Thu 2026-11-26 10:00 CET'), Line(ref='D-2', "
            "text='Due friday', meta='due Fri 2026-11-27 17:00 CET'), "
            "Line(ref='D-1', text='No due first', meta='')), "
            "title='Sign-offs you owe', empty='None.', more_hint='', "
            "type='list')",
            "ListBlock(lines=(Line(ref='P-1', text='Open forever?', "
            "meta=''), Line(ref='P-2', text='Closes later?', "
            "meta='closes Fri 2026-11-27 17:00 CET')), title='Polls "
            "you have not voted in', empty='None.', more_hint='', "
            "type='list')",
            "ListBlock(lines=(Line(ref='Q-1', text='Overdue soon?', "
            "meta='OVERDUE since Wed 2026-11-25 11:00 CET'), "
            "Line(ref='Q-2', text='Later?', meta='due Fri 2026-11-27 "
            "17:00 CET'), Line(ref='Q-3', text='Whenever?', meta='')), "
            "title='Questions you own', empty='None.', more_hint='', "
            "type='list')",
        ],
        "ephemeral": True,
    },
    "ana #general America/New_York: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": ["D-3", "D-2", "D-1"],
            "polls": ["P-1", "P-2"],
            "questions": ["Q-1", "Q-2", "Q-3"],
            "text": "8 things waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "ListBlock(lines=(Line(ref='D-3', text='Due "
            "tomorrow', meta='due Thu 2026-11-26 04:00 "
            "EST'), Line(ref='D-2', text='Due friday', "
            "meta='due Fri 2026-11-27 11:00 EST'), "
            "Line(ref='D-1', text='No due first', "
            "meta='')), title='Sign-offs you owe', "
            "empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(Line(ref='P-1', "
            "text='Open forever?', meta=''), "
            "Line(ref='P-2', text='Closes later?', "
            "meta='closes Fri 2026-11-27 11:00 EST')), "
            "title='Polls you have not voted in', "
            "empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(Line(ref='Q-1', "
            "text='Overdue soon?', meta='OVERDUE since "
            "Wed 2026-11-25 05:00 EST'), "
            "Line(ref='Q-2', text='Later?', meta='due "
            "Fri 2026-11-27 11:00 EST'), "
            "Line(ref='Q-3', text='Whenever?', "
            "meta='')), title='Questions you own', "
            "empty='None.', more_hint='', type='list')",
        ],
        "ephemeral": True,
    },
    "ben #general -: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": ["D-2", "D-5"],
            "polls": ["P-1", "P-2", "P-5"],
            "questions": ["Q-5"],
            "text": "6 things waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "ListBlock(lines=(Line(ref='D-2', text='Due friday', "
            "meta='due Fri 2026-11-27 17:00 CET'), Line(ref='D-5', "
            "text='Not hers', meta='due Sat 2026-11-28 10:00 CET')), "
            "title='Sign-offs you owe', empty='None.', more_hint='', "
            "type='list')",
            "ListBlock(lines=(Line(ref='P-1', text='Open forever?', "
            "meta=''), Line(ref='P-2', text='Closes later?', "
            "meta='closes Fri 2026-11-27 17:00 CET'), Line(ref='P-5', "
            "text='Voted?', meta='')), title='Polls you have not voted "
            "in', empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(Line(ref='Q-5', text='Bens?', "
            "meta='OVERDUE since Wed 2026-11-25 11:00 CET'),), "
            "title='Questions you own', empty='None.', more_hint='', "
            "type='list')",
        ],
        "ephemeral": True,
    },
    "cho #general -: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": [],
            "polls": ["P-1", "P-2", "P-5"],
            "questions": [],
            "text": "3 things waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "ListBlock(lines=(), title='Sign-offs you owe', "
            "empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(Line(ref='P-1', text='Open forever?', "
            "meta=''), Line(ref='P-2', text='Closes later?', "
            "meta='closes Fri 2026-11-27 17:00 CET'), Line(ref='P-5', "
            "text='Voted?', meta='')), title='Polls you have not voted "
            "in', empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(), title='Questions you own', "
            "empty='None.', more_hint='', type='list')",
        ],
        "ephemeral": True,
    },
    "ana #random -: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": ["D-6"],
            "polls": [],
            "questions": [],
            "text": "1 thing waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "ListBlock(lines=(Line(ref='D-6', text='Elsewhere', "
            "meta='due Thu 2026-11-26 09:00 UTC'),), title='Sign-offs "
            "you owe', empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(), title='Polls you have not voted in', "
            "empty='None.', more_hint='', type='list')",
            "ListBlock(lines=(), title='Questions you own', "
            "empty='None.', more_hint='', type='list')",
        ],
        "ephemeral": True,
    },
    "ana #empty -: pending": {
        "json": {
            "ok": True,
            "kind": "pending",
            "signoffs": [],
            "polls": [],
            "questions": [],
            "text": "0 things waiting for you here",
        },
        "blocks": [
            "Heading(text='Waiting for you here', type='heading')",
            "Section(text='Nothing waits for you in this channel. 🎉', fields=(), type='section')",
        ],
        "ephemeral": True,
    },
    "pm #general -: questions": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "open",
            "questions": [
                {
                    "id": "Q-6",
                    "text": "Nobodys?",
                    "owner": None,
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-5",
                    "text": "Bens?",
                    "owner": "ben",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
                {
                    "id": "Q-3",
                    "text": "Whenever?",
                    "owner": "ana",
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-2",
                    "text": "Later?",
                    "owner": "ana",
                    "due": "2026-11-27T16:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-1",
                    "text": "Overdue soon?",
                    "owner": "ana",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 5, "remaining": 0},
            "text": "5 questions (open)",
        },
        "blocks": [
            "Heading(text='Questions · open', type='heading')",
            "ListBlock(lines=(Line(ref='Q-6', text='Nobodys?', "
            "meta='open'), Line(ref='Q-5', text='Bens?', meta='open · "
            "<@ben> · OVERDUE since Wed 2026-11-25 11:00 CET'), "
            "Line(ref='Q-3', text='Whenever?', meta='open · <@ana>'), "
            "Line(ref='Q-2', text='Later?', meta='open · <@ana> · due "
            "Fri 2026-11-27 17:00 CET'), Line(ref='Q-1', "
            "text='Overdue soon?', meta='open · <@ana> · OVERDUE "
            "since Wed 2026-11-25 11:00 CET')), title='', empty='No "
            "open questions.', more_hint='', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: questions overdue": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "overdue",
            "questions": [
                {
                    "id": "Q-5",
                    "text": "Bens?",
                    "owner": "ben",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
                {
                    "id": "Q-1",
                    "text": "Overdue soon?",
                    "owner": "ana",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 2, "remaining": 0},
            "text": "2 questions (overdue)",
        },
        "blocks": [
            "Heading(text='Questions · overdue', type='heading')",
            "ListBlock(lines=(Line(ref='Q-5', text='Bens?', "
            "meta='open · <@ben> · OVERDUE since Wed "
            "2026-11-25 11:00 CET'), Line(ref='Q-1', "
            "text='Overdue soon?', meta='open · <@ana> · "
            "OVERDUE since Wed 2026-11-25 11:00 CET')), "
            "title='', empty='No overdue questions.', "
            "more_hint='', type='list')",
        ],
        "ephemeral": False,
    },
    "ana #general -: questions mine": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "mine",
            "questions": [
                {
                    "id": "Q-3",
                    "text": "Whenever?",
                    "owner": "ana",
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-2",
                    "text": "Later?",
                    "owner": "ana",
                    "due": "2026-11-27T16:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-1",
                    "text": "Overdue soon?",
                    "owner": "ana",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 3, "remaining": 0},
            "text": "3 questions (mine)",
        },
        "blocks": [
            "Heading(text='Questions · mine', type='heading')",
            "ListBlock(lines=(Line(ref='Q-3', text='Whenever?', "
            "meta='open · <@ana>'), Line(ref='Q-2', "
            "text='Later?', meta='open · <@ana> · due Fri "
            "2026-11-27 17:00 CET'), Line(ref='Q-1', "
            "text='Overdue soon?', meta='open · <@ana> · "
            "OVERDUE since Wed 2026-11-25 11:00 CET')), "
            "title='', empty='No mine questions.', "
            "more_hint='', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: questions all": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "all",
            "questions": [
                {
                    "id": "Q-6",
                    "text": "Nobodys?",
                    "owner": None,
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-5",
                    "text": "Bens?",
                    "owner": "ben",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
                {
                    "id": "Q-4",
                    "text": "Answered?",
                    "owner": "ana",
                    "due": "2026-11-26T09:00:00+00:00",
                    "status": "answered",
                    "answer": "yes",
                    "overdue": False,
                },
                {
                    "id": "Q-3",
                    "text": "Whenever?",
                    "owner": "ana",
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-2",
                    "text": "Later?",
                    "owner": "ana",
                    "due": "2026-11-27T16:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-1",
                    "text": "Overdue soon?",
                    "owner": "ana",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 6, "remaining": 0},
            "text": "6 questions (all)",
        },
        "blocks": [
            "Heading(text='Questions · all', type='heading')",
            "ListBlock(lines=(Line(ref='Q-6', text='Nobodys?', "
            "meta='open'), Line(ref='Q-5', text='Bens?', "
            "meta='open · <@ben> · OVERDUE since Wed 2026-11-25 "
            "11:00 CET'), Line(ref='Q-4', text='Answered?', "
            "meta='answered · <@ana> · due Thu 2026-11-26 10:00 "
            "CET'), Line(ref='Q-3', text='Whenever?', meta='open "
            "· <@ana>'), Line(ref='Q-2', text='Later?', "
            "meta='open · <@ana> · due Fri 2026-11-27 17:00 "
            "CET'), Line(ref='Q-1', text='Overdue soon?', "
            "meta='open · <@ana> · OVERDUE since Wed 2026-11-25 "
            "11:00 CET')), title='', empty='No all questions.', "
            "more_hint='', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general Asia/Tokyo: questions all": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "all",
            "questions": [
                {
                    "id": "Q-6",
                    "text": "Nobodys?",
                    "owner": None,
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-5",
                    "text": "Bens?",
                    "owner": "ben",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
                {
                    "id": "Q-4",
                    "text": "Answered?",
                    "owner": "ana",
                    "due": "2026-11-26T09:00:00+00:00",
                    "status": "answered",
                    "answer": "yes",
                    "overdue": False,
                },
                {
                    "id": "Q-3",
                    "text": "Whenever?",
                    "owner": "ana",
                    "due": None,
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-2",
                    "text": "Later?",
                    "owner": "ana",
                    "due": "2026-11-27T16:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": False,
                },
                {
                    "id": "Q-1",
                    "text": "Overdue soon?",
                    "owner": "ana",
                    "due": "2026-11-25T10:00:00+00:00",
                    "status": "open",
                    "answer": None,
                    "overdue": True,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 6, "remaining": 0},
            "text": "6 questions (all)",
        },
        "blocks": [
            "Heading(text='Questions · all', type='heading')",
            "ListBlock(lines=(Line(ref='Q-6', "
            "text='Nobodys?', meta='open'), "
            "Line(ref='Q-5', text='Bens?', meta='open · "
            "<@ben> · OVERDUE since Wed 2026-11-25 19:00 "
            "JST'), Line(ref='Q-4', text='Answered?', "
            "meta='answered · <@ana> · due Thu "
            "2026-11-26 18:00 JST'), Line(ref='Q-3', "
            "text='Whenever?', meta='open · <@ana>'), "
            "Line(ref='Q-2', text='Later?', meta='open · "
            "<@ana> · due Sat 2026-11-28 01:00 JST'), "
            "Line(ref='Q-1', text='Overdue soon?', "
            "meta='open · <@ana> · OVERDUE since Wed "
            "2026-11-25 19:00 JST')), title='', "
            "empty='No all questions.', more_hint='', "
            "type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: questions all page:2": {
        "json": {
            "ok": False,
            "kind": "error",
            "error": "There is 1 page (6 in all); page:2 is past the end.",
            "usage": "Usage: questions [open|overdue|mine|all] [page:N]",
            "code": "usage",
            "text": "There is 1 page (6 in all); page:2 is past the end.",
        },
        "blocks": [
            "Section(text='There is 1 page (6 in all); "
            "page:2 is past the end.', fields=(), "
            "type='section')",
            "Context(text='Usage: questions [open|overdue|mine|all] [page:N]', type='context')",
        ],
        "ephemeral": True,
    },
    "pm #empty -: questions": {
        "json": {
            "ok": True,
            "kind": "list",
            "filter": "open",
            "questions": [],
            "page": {"page": 1, "pages": 1, "total": 0, "remaining": 0},
            "text": "0 questions (open)",
        },
        "blocks": [
            "Heading(text='Questions · open', type='heading')",
            "ListBlock(lines=(), title='', empty='No open questions.', more_hint='', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #empty -: questions page:2": {
        "json": {
            "ok": False,
            "kind": "error",
            "error": "There is 1 page (0 in all); page:2 is past the end.",
            "usage": "Usage: questions [open|overdue|mine|all] [page:N]",
            "code": "usage",
            "text": "There is 1 page (0 in all); page:2 is past the end.",
        },
        "blocks": [
            "Section(text='There is 1 page (0 in all); page:2 is "
            "past the end.', fields=(), type='section')",
            "Context(text='Usage: questions [open|overdue|mine|all] [page:N]', type='context')",
        ],
        "ephemeral": True,
    },
    "pm #general -: questions later": {
        "json": {
            "ok": False,
            "kind": "error",
            "error": "Choose open, overdue, mine or all.",
            "usage": "Usage: questions [open|overdue|mine|all] [page:N]",
            "code": "usage",
            "text": "Choose open, overdue, mine or all.",
        },
        "blocks": [
            "Section(text='Choose open, overdue, mine or all.', fields=(), type='section')",
            "Context(text='Usage: questions [open|overdue|mine|all] [page:N]', type='context')",
        ],
        "ephemeral": True,
    },
    "pm #general -: decisions": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [
                {
                    "id": "D-8",
                    "title": "Second plain",
                    "rationale": None,
                    "status": "accepted",
                    "owner": None,
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-7",
                    "title": "Plain one",
                    "rationale": "why not",
                    "status": "accepted",
                    "owner": "cho",
                    "tags": ["alpha", "mid", "zeta"],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": "2027-03-01T16:00:00+00:00",
                },
                {
                    "id": "D-5",
                    "title": "Not hers",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-4",
                    "title": "Already agreed",
                    "rationale": None,
                    "status": "accepted",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-3",
                    "title": "Due tomorrow",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-2",
                    "title": "Due friday",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-1",
                    "title": "No due first",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 7, "remaining": 0},
            "text": "7 decisions",
        },
        "blocks": [
            "Heading(text='Decisions', type='heading')",
            "ListBlock(lines=(Line(ref='D-8', text='Second plain', "
            "meta='accepted · 2026-11-25'), Line(ref='D-7', "
            "text='Plain one', meta='accepted · 2026-11-25 · "
            "<@cho>'), Line(ref='D-5', text='Not hers', "
            "meta='proposed · 2026-11-25 · <@pm>'), Line(ref='D-4', "
            "text='Already agreed', meta='accepted · 2026-11-25 · "
            "<@pm>'), Line(ref='D-3', text='Due tomorrow', "
            "meta='proposed · 2026-11-25 · <@pm>'), Line(ref='D-2', "
            "text='Due friday', meta='proposed · 2026-11-25 · "
            "<@pm>'), Line(ref='D-1', text='No due first', "
            "meta='proposed · 2026-11-25 · <@pm>')), title='', "
            "empty='No decisions match.', more_hint='Narrow it with "
            "words, tag: or since:.', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general Asia/Tokyo: decisions": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [
                {
                    "id": "D-8",
                    "title": "Second plain",
                    "rationale": None,
                    "status": "accepted",
                    "owner": None,
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-7",
                    "title": "Plain one",
                    "rationale": "why not",
                    "status": "accepted",
                    "owner": "cho",
                    "tags": ["alpha", "mid", "zeta"],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": "2027-03-01T16:00:00+00:00",
                },
                {
                    "id": "D-5",
                    "title": "Not hers",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-4",
                    "title": "Already agreed",
                    "rationale": None,
                    "status": "accepted",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-3",
                    "title": "Due tomorrow",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-2",
                    "title": "Due friday",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-1",
                    "title": "No due first",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 7, "remaining": 0},
            "text": "7 decisions",
        },
        "blocks": [
            "Heading(text='Decisions', type='heading')",
            "ListBlock(lines=(Line(ref='D-8', text='Second "
            "plain', meta='accepted · 2026-11-25'), "
            "Line(ref='D-7', text='Plain one', "
            "meta='accepted · 2026-11-25 · <@cho>'), "
            "Line(ref='D-5', text='Not hers', meta='proposed "
            "· 2026-11-25 · <@pm>'), Line(ref='D-4', "
            "text='Already agreed', meta='accepted · "
            "2026-11-25 · <@pm>'), Line(ref='D-3', text='Due "
            "tomorrow', meta='proposed · 2026-11-25 · "
            "<@pm>'), Line(ref='D-2', text='Due friday', "
            "meta='proposed · 2026-11-25 · <@pm>'), "
            "Line(ref='D-1', text='No due first', "
            "meta='proposed · 2026-11-25 · <@pm>')), "
            "title='', empty='No decisions match.', "
            "more_hint='Narrow it with words, tag: or "
            "since:.', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: decisions page:2": {
        "json": {
            "ok": False,
            "kind": "error",
            "error": "There is 1 page (7 in all); page:2 is past the end.",
            "usage": "Usage: decisions [words] [tag:x] [status:x] [since:date] [page:N]",
            "code": "usage",
            "text": "There is 1 page (7 in all); page:2 is past the end.",
        },
        "blocks": [
            "Section(text='There is 1 page (7 in all); page:2 "
            "is past the end.', fields=(), type='section')",
            "Context(text='Usage: decisions [words] [tag:x] "
            "[status:x] [since:date] [page:N]', "
            "type='context')",
        ],
        "ephemeral": True,
    },
    "pm #empty -: decisions": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [],
            "page": {"page": 1, "pages": 1, "total": 0, "remaining": 0},
            "text": "0 decisions",
        },
        "blocks": [
            "Heading(text='Decisions', type='heading')",
            "ListBlock(lines=(), title='', empty='No decisions match.', "
            "more_hint='Narrow it with words, tag: or since:.', "
            "type='list')",
        ],
        "ephemeral": False,
    },
    "pm #empty -: decisions page:2": {
        "json": {
            "ok": False,
            "kind": "error",
            "error": "There is 1 page (0 in all); page:2 is past the end.",
            "usage": "Usage: decisions [words] [tag:x] [status:x] [since:date] [page:N]",
            "code": "usage",
            "text": "There is 1 page (0 in all); page:2 is past the end.",
        },
        "blocks": [
            "Section(text='There is 1 page (0 in all); page:2 is "
            "past the end.', fields=(), type='section')",
            "Context(text='Usage: decisions [words] [tag:x] "
            "[status:x] [since:date] [page:N]', type='context')",
        ],
        "ephemeral": True,
    },
    "pm #random -: decisions": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [
                {
                    "id": "D-6",
                    "title": "Elsewhere",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                }
            ],
            "page": {"page": 1, "pages": 1, "total": 1, "remaining": 0},
            "text": "1 decision",
        },
        "blocks": [
            "Heading(text='Decisions', type='heading')",
            "ListBlock(lines=(Line(ref='D-6', text='Elsewhere', "
            "meta='proposed · 2026-11-25 · <@pm>'),), title='', "
            "empty='No decisions match.', more_hint='Narrow it with "
            "words, tag: or since:.', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: decisions plain tag:alpha": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [
                {
                    "id": "D-7",
                    "title": "Plain one",
                    "rationale": "why not",
                    "status": "accepted",
                    "owner": "cho",
                    "tags": ["alpha", "mid", "zeta"],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": "2027-03-01T16:00:00+00:00",
                }
            ],
            "page": {"page": 1, "pages": 1, "total": 1, "remaining": 0},
            "text": "1 decision",
        },
        "blocks": [
            "Heading(text='Decisions matching “plain”', type='heading')",
            "ListBlock(lines=(Line(ref='D-7', "
            "text='Plain one', meta='accepted · "
            "2026-11-25 · <@cho>'),), title='', "
            "empty='No decisions match.', "
            "more_hint='Narrow it with words, tag: or "
            "since:.', type='list')",
        ],
        "ephemeral": False,
    },
    "pm #general -: decisions status:proposed": {
        "json": {
            "ok": True,
            "kind": "list",
            "decisions": [
                {
                    "id": "D-5",
                    "title": "Not hers",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-3",
                    "title": "Due tomorrow",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-2",
                    "title": "Due friday",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
                {
                    "id": "D-1",
                    "title": "No due first",
                    "rationale": None,
                    "status": "proposed",
                    "owner": "pm",
                    "tags": [],
                    "created_by": "pm",
                    "created_at": "2026-11-25T09:00:00+00:00",
                    "review": None,
                },
            ],
            "page": {"page": 1, "pages": 1, "total": 4, "remaining": 0},
            "text": "4 decisions",
        },
        "blocks": [
            "Heading(text='Decisions', type='heading')",
            "ListBlock(lines=(Line(ref='D-5', "
            "text='Not hers', meta='proposed · "
            "2026-11-25 · <@pm>'), Line(ref='D-3', "
            "text='Due tomorrow', meta='proposed · "
            "2026-11-25 · <@pm>'), Line(ref='D-2', "
            "text='Due friday', meta='proposed · "
            "2026-11-25 · <@pm>'), Line(ref='D-1', "
            "text='No due first', meta='proposed · "
            "2026-11-25 · <@pm>')), title='', "
            "empty='No decisions match.', "
            "more_hint='Narrow it with words, tag: or "
            "since:.', type='list')",
        ],
        "ephemeral": False,
    },
}
