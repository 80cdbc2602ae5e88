"""Group commit: concurrent calls handled together, in one transaction, without waiting for company.

    desk = Coalescer(handle_all)          # handle_all(items) -> one result or exception per item
    result = await desk.submit(item)      # the item's own result, or its own exception raised

An idle coalescer hands a call's item over at once (a batch of one: no added latency). While a batch
is in flight, the calls that arrive wait and go together in the next one (up to `max_size`): under
load a batch of N costs the database one BEGIN/COMMIT, one WAL flush and a few statements instead of N
of each (issue 13: sign-ups at 64 concurrent clients). At most `concurrency` batches are in flight.

If `handle_all` raises for a batch of more than one item (a bug, bad data, the database gone), each
item is handled again alone, so one item cannot fail the others; the exception of a batch of one goes
to its caller. A caller that is cancelled (its client went away) does not stop the batch: like a
request whose client leaves during the commit, its item may still be committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Handles a batch: one result, or one exception (raised to that item's caller), per item, in order.
BatchHandler = Callable[[list[T]], Awaitable[list[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(self, handle_all: BatchHandler[T, R], *, max_size: int = 64, concurrency: int = 2) -> None:
        if max_size < 1 or concurrency < 1:
            raise ValueError("max_size and concurrency must be at least 1")
        self._handle_all = handle_all
        self._max_size = max_size
        self._concurrency = concurrency
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        #: Sizes of the batches handled (for tests and the benchmark's figures), the last 1,000.
        self.sizes: list[int] = []

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        return await future  # cancelled with its caller; the batch goes on (`_settle` skips it)

    def _start(self) -> None:
        while self._waiting and self._in_flight < self._concurrency:
            batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size:]
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            self.sizes = [*self.sizes[-999:], len(batch)]
            await self._handle(batch)
        finally:
            self._in_flight -= 1
            self._start()

    async def _handle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._handle_all([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for one in batch:  # one item must not fail the others: each alone
                await self._handle([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():  # cancelled by its caller
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
