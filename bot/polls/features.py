"""What a poll promises besides its mode, read from `poll`'s options and checked together: who
sees whom (`anonymous`, `public`), when the tally shows (`results:hidden`), a cap on choices
(`max:N`), who may add options (`options:open`) and whether it recurs (`every:`). Each refusal
says why the combination makes no sense, so nothing half-meant is opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.errors import UsageError
from bot.parser import Command

EVERY = ("week", "2w", "month")
RESULTS = ("live", "hidden")
OPTIONS = ("closed", "open")
SHORTEST_PERIOD = {"week": timedelta(days=7), "2w": timedelta(days=14), "month": timedelta(days=28)}
"""How long a period is at least (a month: February): each period's poll closes within it."""


@dataclass(frozen=True)
class Features:
    anonymous: bool = False
    public: bool = False
    hidden: bool = False
    max_choices: int | None = None
    options_open: bool = False
    every: str | None = None


def read_features(
    cmd: Command, *, mode: str, options: int, anonymous: bool, public: bool, closes: bool
) -> Features:
    """The features `poll` was given, refused where they contradict each other or the mode."""
    verb = "poll"
    if anonymous and public:
        raise UsageError(
            "A poll is anonymous (nobody sees who chose what) or public (everyone does), not both.",
            verb=verb,
        )
    results = (cmd.option("results") or "live").lower()
    if results not in RESULTS:
        raise UsageError(
            "results: is hidden (nobody sees the tally until the poll closes) or live.", verb=verb
        )
    opened = (cmd.option("options") or "closed").lower()
    if opened not in OPTIONS:
        raise UsageError(
            'options: is open (anyone here may add one with `edit P-n add:"…"`) or closed.',
            verb=verb,
        )
    cap = _max_choices(cmd.option("max"), mode=mode, options=options)
    every = cmd.option("every")
    if every is not None:
        every = every.lower()
        if every not in EVERY:
            raise UsageError("every: is week, 2w or month.", verb=verb)
        if not closes:
            raise UsageError(
                "A recurring poll needs closes: — how long each period's poll stays open "
                f"(like closes:3d every:{every}).",
                verb=verb,
            )
    return Features(
        anonymous=anonymous,
        public=public,
        hidden=results == "hidden",
        max_choices=cap,
        options_open=opened == "open",
        every=every,
    )


def _max_choices(raw: str | None, *, mode: str, options: int) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError("max: is a number of choices, 1 or more, like max:2.", verb="poll")
    cap = int(raw)
    if mode != "multi":
        what = {
            "single": "a single-choice ballot has one choice already",
            "ranked": "a ranked ballot orders the options instead of picking some",
            "dots": "a dots ballot is capped by its points (mode:dots:N)",
        }[mode]
        raise UsageError(f"max: caps the choices of a mode:multi poll; {what}.", verb="poll")
    if cap > options:
        raise UsageError(f"max:{cap} is more than the {options} options of this poll.", verb="poll")
    return cap


def check_period(every: str, open_for: timedelta) -> None:
    """Each period's poll closes before the next opens."""
    longest = SHORTEST_PERIOD[every]
    if open_for > longest:
        days = longest.days
        raise UsageError(
            f"A poll every {every} closes within its period: closes: at most {days} days after "
            f"it opens (like closes:{min(days, 3)}d), so one period's poll closes before the "
            "next opens.",
            verb="poll",
        )


__all__ = ["EVERY", "Features", "check_period", "read_features"]
