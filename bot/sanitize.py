"""Text no database can store, refused where it enters the engine — from every surface.

PostgreSQL refuses NUL in text, and a lone surrogate (half of a UTF-16 pair, which JSON's
`\\ud800` escapes produce) cannot be encoded as UTF-8 for either database. Both used to surface as
"Something went wrong" from deep inside a command; here they get a short answer before anything
runs, and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.context import Actor
from bot.errors import UsageError

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_unstorable(texts: Iterable[str | None]) -> None:
    """Raise UsageError when any of the texts holds a NUL or a lone surrogate."""
    for text in texts:
        if not text:
            continue
        if "\x00" in text:
            raise UsageError("Text can't contain NUL characters (\\0); remove them and try again.")
        if _LONE_SURROGATE.search(text):
            raise UsageError(
                "Text contains a broken character (a lone UTF-16 surrogate); "
                "retype it and try again."
            )


def refuse_unstorable_input(actor: Actor, *texts: str | None) -> None:
    """The engine's entry check: what was typed or clicked, and who and where (platform ids
    arrive in JSON too)."""
    mentions = (part for pair in actor.mentions for part in pair)
    refuse_unstorable((*texts, actor.workspace, actor.channel, actor.user, actor.tz, *mentions))


__all__ = ["refuse_unstorable", "refuse_unstorable_input"]
