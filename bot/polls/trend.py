"""A recurring poll's trend: each period's outcome up to this one, and where the series stands
(the previous and next poll, when the next opens, or that it was stopped).

Each period is read as `results` reads it — its frozen result once closed, else the live tally —
and a `results:hidden` period that is still open shows only its participation. The bar of a
period is the winner's share: of the votes (single, multi), of the points (dots); a ranked poll
has no share to show, so its bar is the turnout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.common import day, when
from bot.context import Deps
from bot.polls.recurrence import EVERY_WORDS, bounds
from bot.polls.results import visible
from bot.polls.rules import closed_on
from bot.views import BarRow, Bars, Block, Context
from storage.db import UnitOfWork
from storage.models import Poll

PERIODS_SHOWN = 12


def series_view(
    deps: Deps, session: UnitOfWork, poll: Poll, tz: str
) -> tuple[list[Block], dict[str, Any]]:
    """The trend bars and the series line; nothing for a poll that does not recur."""
    series = poll.series if poll.series_id is not None else None
    if series is None or poll.series_index is None:
        return [], {}
    now = deps.clock.now()
    index = poll.series_index
    earlier = list(
        session.execute(
            select(Poll)
            .where(Poll.series_id == series.id, Poll.series_index <= index)
            .order_by(Poll.series_index.desc())
            .limit(PERIODS_SHOWN)
        ).scalars()
    )[::-1]
    later = session.execute(
        select(Poll.number)
        .where(Poll.series_id == series.id, Poll.series_index > index)
        .order_by(Poll.series_index)
        .limit(1)
    ).scalar_one_or_none()
    periods = [_period(deps, session, p, now) for p in earlier]
    info: dict[str, Any] = {
        "every": series.every,
        "stopped": series.stopped_at is not None,
        "period": index + 1,
        "previous": periods[-2]["id"] if len(periods) > 1 else None,
        "next": f"P-{later}" if later is not None else None,
        "next_opens": None,
    }
    line = f"Every {EVERY_WORDS[series.every]} · period {index + 1}"
    if info["previous"]:
        line += f" · previous {info['previous']}"
    if later is not None:
        line += f" · next P-{later}"
    elif series.stopped_at is not None:
        line += f" · stopped {when(series.stopped_at, tz)}"
    else:
        opens = _next_opening(series, index, now)
        info["next_opens"] = opens.isoformat()
        line += f" · next opens {when(opens, tz)}"
    blocks: list[Block] = [Context(line)]
    if len(periods) > 1:
        blocks.append(Bars(tuple(_row(p, tz) for p in periods)))
        blocks.append(Context(_legend(poll.mode)))
    return blocks, {"series": info, "trend": periods}


def _next_opening(series: Any, index: int, now: datetime) -> datetime:
    k = index + 1
    opens = bounds(series, k)[0]
    while opens <= now:  # its period is due and the scheduler has not opened it yet
        k += 1
        opens = bounds(series, k)[0]
    return opens


def _period(deps: Deps, session: UnitOfWork, poll: Poll, now: datetime) -> dict[str, Any]:
    closed = closed_on(poll, now) is not None
    res = visible(deps, session, poll)
    entry: dict[str, Any] = {
        "id": f"P-{poll.number}",
        "opened": poll.created_at.isoformat(),
        "closed": closed,
        "voted": res["participation"]["voted"],
        "eligible": res["participation"]["eligible"],
    }
    if res.get("hidden"):
        entry["hidden"] = True
        return entry
    entry |= {
        "method": res["method"],
        "winner": res["winner"],
        "tied": res["tied"],
        "ballots": res["ballots"],
    }
    for key in ("counts", "scores"):
        if key in res:
            entry[key] = res[key]
    return entry


def _row(period: dict[str, Any], tz: str) -> BarRow:
    label = f"{period['id']} · {day(datetime.fromisoformat(period['opened']), tz)}"
    if period.get("hidden"):
        return BarRow(label, "hidden until it closes", 0.0)
    if not period["ballots"]:
        return BarRow(label, "no votes", 0.0)
    winner, tied = period["winner"], " / ".join(period["tied"])
    if "counts" in period or period["method"] == "points":
        values: dict[str, float] = period.get("counts") or period.get("scores") or {}
        total = period["ballots"] if "counts" in period else sum(values.values())
        if winner is None:
            return BarRow(label, f"tie: {tied}", max(values.values(), default=0) / max(total, 1))
        shown = f"{winner} {_num(values[winner])} of {_num(total)}"
        return BarRow(label, shown, values[winner] / max(total, 1))
    turnout = period["voted"] / max(period["eligible"], 1)
    if winner is None:
        return BarRow(label, f"tie: {tied}", turnout)
    return BarRow(label, f"{winner} · {period['voted']} of {period['eligible']} voted", turnout)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _legend(mode: str) -> str:
    if mode == "ranked":
        return "Trend: each period's winner; the bar is the turnout."
    what = "points" if mode == "dots" else "votes"
    return f"Trend: each period's winner and its share of the {what}."


__all__ = ["PERIODS_SHOWN", "series_view"]
