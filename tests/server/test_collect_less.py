"""A started `align serve` keeps what start-up built out of the garbage collector's passes, and
collects its youngest objects less often (`server.collect_less`): CPU a busy server spent
walking objects that live as long as it does."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from adapters import server


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, after the test."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_what_start_up_built_is_out_of_every_pass_and_young_objects_wait_longer() -> None:
    _, middle, oldest = gc.get_threshold()
    built_at_start_up = {"lives": ["as long as the process"]}

    server.collect_less()

    assert gc.get_freeze_count() > 0
    assert not any(o is built_at_start_up for o in gc.get_objects())  # no pass walks it
    assert gc.get_threshold() == (server.YOUNG_COLLECTED_AFTER, middle, oldest)
    assert server.YOUNG_COLLECTED_AFTER > 700  # Python's default


class _Node:
    other: _Node | None = None


@pytest.mark.usefixtures("collector")
def test_start_ups_garbage_is_collected_not_frozen() -> None:
    first, second = _Node(), _Node()
    first.other, second.other = second, first  # a cycle: only the collector frees it
    gone: list[str] = []
    weakref.finalize(first, gone.append, "collected")
    del first, second

    server.collect_less()

    assert gone == ["collected"]
