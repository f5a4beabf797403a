"""The object kinds of `grammar.KINDS`, resolved: their models and the modules that show and edit
them. Resolved lazily (on first use), because those modules import the parser, which reads the
grammar — the table itself can only name them."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Protocol

from bot.context import Actor, Deps
from bot.grammar import KIND_BY_NOUN, KIND_BY_PREFIX, Kind
from bot.parser import Command
from bot.views import Reply
from storage import models
from storage.db import UnitOfWork


class KindModule(Protocol):
    """What a kind's module offers `show` and `edit`."""

    def snapshot(self, obj: Any) -> dict[str, Any]: ...

    def view(
        self, deps: Deps, session: UnitOfWork, actor: Actor, obj: Any, *, full: bool
    ) -> Reply: ...

    def edit(
        self, deps: Deps, session: UnitOfWork, actor: Actor, obj: Any, cmd: Command
    ) -> dict[str, Any]: ...


def kind(prefix: str) -> Kind:
    return KIND_BY_PREFIX[prefix]


@cache
def model(prefix: str) -> Any:
    """The mapped class of a kind (`D` → `storage.models.Decision`)."""
    return getattr(models, KIND_BY_PREFIX[prefix].model)


@cache
def module(prefix: str) -> KindModule:
    found: Any = importlib.import_module(f"bot.{KIND_BY_PREFIX[prefix].module}")
    return found  # type: ignore[no-any-return]


def ref_of(noun: str, number: int) -> str:
    """`decision`, 12 → `D-12`."""
    return f"{KIND_BY_NOUN[noun].prefix}-{number}"


__all__ = ["KindModule", "kind", "model", "module", "ref_of"]
