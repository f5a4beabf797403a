"""Long lists in pages (`decisions`, `questions`, `priorities` take `page:N`).

A list used to be cut by each surface at its own length with no way to see the rest. Now the
engine hands out one page and says how many remain and how to get them ("… 23 more: page:2"),
the same on every surface and in `--json`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, bindparam, func, select

from bot.errors import UsageError
from bot.parser import Command
from bot.views import Context
from storage.db import Prepared, UnitOfWork

T = TypeVar("T")

# Slack shows at most 40 lines of one list in a message (adapters/slack/blocks.LIST_LINES) and
# the console 50; a page that fits both is never cut again on the way out.
PAGE_SIZE = 40


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    number: int
    total: int
    size: int = PAGE_SIZE

    @property
    def first(self) -> int:
        """How many rows come before this page."""
        return (self.number - 1) * self.size

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.first - len(self.rows))

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def more(self) -> Context | None:
        """The line under the list that says how to go on, when there is more."""
        if not self.remaining:
            return None
        return Context(f"… {self.remaining} more: page:{self.number + 1}")

    def to_json(self) -> dict[str, Any]:
        return {
            "page": self.number,
            "pages": self.pages,
            "total": self.total,
            "remaining": self.remaining,
        }


def page_number(cmd: Command) -> int:
    """The `page:N` asked for (1 when none)."""
    text = cmd.option("page")
    if text is None:
        return 1
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"page: is a page number like page:2, not `{text[:20]}`.", verb=cmd.verb)
    return int(text)


def _checked(number: int, total: int, size: int, verb: str) -> None:
    pages = max(1, -(-total // size))
    if number > pages:
        there = "There is 1 page" if pages == 1 else f"There are {pages} pages"
        raise UsageError(f"{there} ({total} in all); page:{number} is past the end.", verb=verb)


def page_of(rows: Sequence[T], cmd: Command, *, size: int = PAGE_SIZE) -> Page[T]:
    """One page of rows already in hand (a ranking computed in Python)."""
    number = page_number(cmd)
    _checked(number, len(rows), size, cmd.verb)
    start = (number - 1) * size
    return Page(list(rows[start : start + size]), number, len(rows), size)


@lru_cache(maxsize=128)
def _paged(stmt: Select[Any], size: int, number: int) -> Select[Any]:
    """`stmt` counted and cut to one page. Remembered for a statement built once (a list's
    base query): the same object is executed again, and SQLAlchemy reuses its cache key instead
    of walking a new statement for it — a sixth of an empty `decisions`. A statement built per
    call (with filters) only passes through."""
    counted = stmt.add_columns(func.count().over().label("page_total"))
    return counted.limit(size).offset((number - 1) * size)


def page_query(
    session: UnitOfWork,
    stmt: Select[Any],
    params: dict[str, Any],
    cmd: Command,
    *,
    size: int = PAGE_SIZE,
    entities: bool = True,
) -> Page[Any]:
    """One page of a query's rows, counted and cut in SQL, so a long history is not read
    whole to show forty lines of it. One statement: the count rides along with the page's
    rows (`count(*) OVER ()`); only a page with no rows (none at all, or past the end, which
    is refused with the number of pages) counts again on its own. The page holds each row's
    first column (the entity selected), or with `entities=False` the rows themselves (a
    select of plain columns; they carry `page_total` too)."""
    number = page_number(cmd)
    found: Sequence[Any] = session.execute(_paged(stmt, size, number), params).all()
    return _page(session, stmt, params, cmd, number, size, found, entities=entities)


class Listing:
    """A list's base query — a select of plain columns, with no per-call filter — paged on the
    raw cursor (`Prepared`: compiled once per database, its columns converted as
    `session.execute` converts them): the statement `page_query` sends, at a fraction of
    SQLAlchemy's cost per execution (an empty `decisions` page: 60 us of a read command's 130 in
    the database went to `session.execute`). Its rows are named tuples: `row.title`, as a
    Row gives them."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.statement = stmt
        counted = stmt.add_columns(func.count().over().label("page_total"))
        paged = counted.limit(bindparam("page_limit")).offset(bindparam("page_offset"))
        self._prepared = Prepared(lambda _dialect: paged)
        self._row = namedtuple("Listed", [c.key for c in paged.selected_columns])  # type: ignore[misc]

    def page(
        self,
        session: UnitOfWork,
        params: dict[str, Any],
        cmd: Command,
        *,
        size: int = PAGE_SIZE,
    ) -> Page[Any]:
        """`page_query(session, self.statement, params, cmd, size=size, entities=False)`."""
        number = page_number(cmd)
        values = {**params, "page_limit": size, "page_offset": (number - 1) * size}
        row = self._row
        found = [row(*fetched) for fetched in self._prepared.rows(session, values)]
        return _page(session, self.statement, params, cmd, number, size, found, entities=False)


def _page(
    session: UnitOfWork,
    stmt: Select[Any],
    params: dict[str, Any],
    cmd: Command,
    number: int,
    size: int,
    found: Sequence[Any],
    *,
    entities: bool,
) -> Page[Any]:
    if found:
        total = int(found[0][-1])
    elif number == 1:
        total = 0
    else:
        total = session.execute(
            select(func.count()).select_from(stmt.order_by(None).subquery()), params
        ).scalar_one()
    _checked(number, total, size, cmd.verb)
    return Page([row[0] for row in found] if entities else list(found), number, total, size)
