"""The dashboard feed's loop and the live pages' wake-ups (an adapter: asyncio, no rules).

`refresh` publishes the changed DashboardRecords (service.refresh_dashboard_feed) at start and when a
consumer of this instance committed something (`wake`, called after each handler's commit): only a
commit changes a figure, and each instance refreshes after its own. Without a wake-up it refreshes only
every `refresh_seconds` (a safety net, default 5 minutes: a refresh recomputes every public figure, CPU
that grows with the data), or `retry_seconds` after a failed refresh (the database was away).
`watch` reads the feed's generation every `watch_seconds` (another instance may have published) and
wakes every open server-sent-events stream of this instance when it moved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import structlog

from estafette.runtime.clock import Clock
from estafette.runtime.loops import pause
from estafette.runtime.uow import Uow
from services.reporting import service
from services.reporting.repository import Repository

log = structlog.get_logger(__name__)

#: The rest between two refreshes, in multiples of the last refresh's duration (busy at most 1/(1+4)),
#: and its bounds: a change reaches the live pages within about REST_MAX + a refresh + a page fetch.
REST_FACTOR = 4
REST_MIN, REST_MAX = 0.25, 1.0


def rest_seconds(cpu: float, took: float) -> float:
    """The rest after a refresh that used `cpu` seconds here and `took` seconds of wall time."""
    return min(REST_MAX, max(REST_MIN, REST_FACTOR * max(cpu, took)))


class LiveDashboard:
    def __init__(
        self, uow: Uow[Repository], clock: Clock, timezone: str, threshold: int,
        refresh_seconds: float = 300.0, watch_seconds: float = 0.5, retry_seconds: float = 10.0,
    ) -> None:
        self.uow, self.clock, self.timezone, self.threshold = uow, clock, timezone, threshold
        self.refresh_seconds, self.watch_seconds, self.retry_seconds = refresh_seconds, watch_seconds, retry_seconds
        self.generation = -1
        self._woken = asyncio.Event()
        self._moved = asyncio.Condition()
        self._reading = asyncio.Lock()  # the refresh and the watch read the generation: one at a time

    def wake(self) -> None:
        """Something was committed: recompute the feed soon."""
        self._woken.set()

    async def refresh(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            wait, started, began = self.refresh_seconds, time.process_time(), time.monotonic()
            try:
                published = await service.refresh_dashboard_feed(self.uow, self.clock.now(), self.timezone, self.threshold)
                if published:
                    log.info("dashboard records published", records=published)
                await self._check_generation()  # this instance's pages hear it now, not at the next watch
            except Exception as exc:  # noqa: BLE001 - the database may be down: try again soon
                log.warning("dashboard feed refresh failed", error=repr(exc))
                wait = self.retry_seconds
            cpu, took = time.process_time() - started, time.monotonic() - began
            if cpu > 1.0:
                log.info("dashboard feed refresh was costly", cpu_seconds=round(cpu, 2))
            # A burst of commits becomes one refresh per rest, and a refresh (CPU here and in the database,
            # both growing with the figures: ~0.26 s of the database at 100,000 sign-ups) takes at most a
            # fifth of the time however often commits come: REST_FACTOR times its own duration, within
            # [REST_MIN, REST_MAX], counted from its end. A wake-up after a quiet spell refreshes at once.
            # Measured under load (issue 13): at 2x (a third of the time), ~0.15 of a core of the database
            # went to refreshes while sign-ups poured in.
            rested = time.monotonic() + rest_seconds(cpu, took)
            await pause(stopping, wait, self._woken)
            await asyncio.sleep(max(0.0, rested - time.monotonic()))

    async def _check_generation(self) -> None:
        async with self._reading:
            generation = await service.dashboard_generation(self.uow)
            if generation != self.generation:
                self.generation = generation
                async with self._moved:
                    self._moved.notify_all()

    async def watch(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._check_generation()
            except Exception as exc:  # noqa: BLE001 - as above
                log.warning("dashboard generation not read", error=repr(exc))
            await pause(stopping, self.watch_seconds)

    async def changes(self) -> AsyncIterator[int]:
        """The feed's generation now, then each time it moves (for one server-sent-events stream)."""
        yield self.generation
        while True:
            async with self._moved:
                await self._moved.wait()
            yield self.generation
