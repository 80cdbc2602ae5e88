"""The outbox relay: publishes committed outbox rows to Kafka, oldest first, then marks them published.

One relay per service is active at a time (a transaction-scoped advisory lock), which keeps the order
of events per key. It wakes on the NOTIFY sent at commit, or polls. If Kafka is down the batch is rolled
back and retried with back-off: rows stay in the outbox until Kafka has acknowledged them (acks=all).
A crash between Kafka's ack and the commit republishes those rows: consumers dedupe on event_id.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import structlog
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Gauge

from estafette.runtime.loops import listen, pause
from estafette.runtime.uow import OUTBOX_CHANNEL

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        schema: str,
        registry: CollectorRegistry,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._schema = schema
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self.published = Counter("outbox_published", "Events published from the outbox", registry=registry)
        self.lag = Gauge("outbox_oldest_unpublished_seconds", "Age of the oldest unpublished event", registry=registry)

    async def start(self) -> None:
        self._listener = await listen(self._pool, f"{self._schema}_{OUTBOX_CHANNEL}", self._wake)
        self._task = asyncio.create_task(self._run(), name=f"{self._schema}-outbox-relay")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in flight, then stop (cancel it after `timeout`: its rows stay unpublished)."""
        self._stopping.set()
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("outbox relay did not stop in time; unpublished rows are sent at the next start")
        if self._listener is not None:
            await self._pool.release(self._listener)

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                sent = await self.publish_batch()
                backoff = 0.2
            except Exception as exc:  # Kafka or Postgres unavailable: keep the rows, retry later
                log.warning("outbox relay batch failed, will retry", error=repr(exc), retry_in=backoff)
                await pause(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self._batch_size:
                await pause(self._stopping, self._poll_seconds, self._wake)

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"{self._schema}.outbox"):
                return 0
            rows = await conn.fetch(
                "SELECT id, event_id, topic, key, event_type, payload::text AS payload, created_at, correlation_id"
                " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                self.lag.set(0)
                return 0
            self.lag.set(max(0.0, time.time() - rows[0]["created_at"].timestamp()))
            futures = [
                await self._broker.publish(
                    row["payload"].encode(),
                    row["topic"],
                    key=row["key"].encode(),
                    headers={"event_type": row["event_type"], "content-type": "application/json"},
                    correlation_id=str(row["correlation_id"] or row["event_id"]),
                    no_confirm=True,
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self.published.inc(len(rows))
        return len(rows)
