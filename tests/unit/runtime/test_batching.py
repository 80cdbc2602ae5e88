"""The coalescer (group commit, runtime/batching.py): no wait when idle, calls that arrive while a
batch is in flight go together in the next, each caller gets its own result or exception, and a
failing batch is handled again item by item."""

from __future__ import annotations

import asyncio

import pytest

from estafette.runtime.batching import Coalescer


class Recorder:
    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.release = asyncio.Event()
        self.release.set()

    async def handle(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_on & set(items):
            raise RuntimeError(f"cannot handle {sorted(self.fail_on & set(items))}")
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_an_idle_coalescer_hands_the_item_over_at_once_as_a_batch_of_one():
    rec = Recorder()
    desk = Coalescer(rec.handle)
    assert await desk.submit(2) == 20
    assert rec.batches == [[2]]


async def test_calls_arriving_while_a_batch_is_in_flight_go_together_and_each_gets_its_own_answer():
    rec = Recorder()
    rec.release.clear()
    desk = Coalescer(rec.handle, concurrency=1, max_size=4)
    calls = [asyncio.create_task(desk.submit(i)) for i in range(9)]
    await asyncio.sleep(0)  # every call is queued; the first batch (one item) is in flight
    rec.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert rec.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7", 80,
    ]


async def test_a_failing_batch_is_handled_again_item_by_item_so_one_item_fails_alone():
    rec = Recorder(fail_on={4})
    rec.release.clear()
    desk = Coalescer(rec.handle, concurrency=1)
    calls = [asyncio.create_task(desk.submit(i)) for i in (0, 2, 4, 6)]
    await asyncio.sleep(0)
    rec.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert rec.batches == [[0], [2, 4, 6], [2], [4], [6]]
    assert results[0] == 0 and results[1] == 20 and results[3] == 60
    assert isinstance(results[2], RuntimeError) and "cannot handle [4]" in str(results[2])


async def test_a_cancelled_caller_does_not_stop_the_batch_or_the_others():
    rec = Recorder()
    rec.release.clear()
    desk = Coalescer(rec.handle, concurrency=1)
    first, second, third = (asyncio.create_task(desk.submit(i)) for i in (0, 2, 4))
    await asyncio.sleep(0)
    second.cancel()
    rec.release.set()
    assert await first == 0 and await third == 40
    with pytest.raises(asyncio.CancelledError):
        await second
    assert rec.batches == [[0], [2, 4]]


async def test_at_most_concurrency_batches_are_in_flight():
    in_flight, most = 0, 0

    async def handle(items: list[int]) -> list[int | BaseException]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return list(items)

    desk = Coalescer(handle, concurrency=2, max_size=3)
    assert await asyncio.gather(*(desk.submit(i) for i in range(30))) == list(range(30))
    assert most == 2
