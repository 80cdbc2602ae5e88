"""After start-up a service keeps its start-up objects out of the cyclic collector's walks
(runtime/heap.py): without it a full collection stalled every request in flight for up to 218 ms."""

from __future__ import annotations

import gc

import pytest

from estafette.runtime import heap


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    gc.unfreeze()  # an earlier test may have started a service in this process
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_freezes_what_start_up_made_and_raises_the_young_threshold(collector):
    loaded = [_Node() for _ in range(1_000)]  # what start-up leaves behind, e.g. schemas and templates
    assert gc.get_freeze_count() == 0
    heap.settle()
    assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert not any(gc.is_tracked(node) and node in gc.get_objects(generation=2) for node in loaded[:3])


def test_cycles_made_after_settling_are_still_collected(collector):
    heap.settle()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
