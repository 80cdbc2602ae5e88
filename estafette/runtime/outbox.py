"""The outbox relay: publishes committed outbox rows to Kafka, oldest first, then marks them published.

The relay has its own aiokafka producer (acks=all) on the service's Kafka principal: a row without a
payload is sent as a tombstone (a null value), which FastStream's publisher cannot send.

One relay per service is active at a time (a transaction-scoped advisory lock), which keeps the order
of events per key. It wakes when a transaction of its own process has written outbox rows (in-process,
runtime/uow.py), on the NOTIFY other instances send after such commits (at most one per 50 ms each),
or polls. A round takes every unpublished row up to the batch size: under load the rows committed
while one round waited for Kafka's acks go out together in the next. If Kafka is down the batch is rolled
back and retried with back-off: rows stay in the outbox until Kafka has acknowledged them (acks=all).
A crash between Kafka's ack and the commit republishes those rows: consumers dedupe on event_id.

Stopping: the runtime stops the relay before it closes the pool (runtime/app.py); the batch in flight
may finish within the stop's timeout, else it is cancelled (rolled back: its rows are published at the
next start). A relay that finds its pool closing stops on its own instead of retrying for ever.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge

from estafette.runtime.kafka import KafkaAccess
from estafette.runtime.db import transaction_only
from estafette.runtime.loops import listen, pause, unlisten
from estafette.runtime.uow import OUTBOX_CHANNEL

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        kafka: KafkaAccess,
        schema: str,
        registry: CollectorRegistry,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        # acks=all: an event counts as published once every in-sync replica has it. Idempotence stays
        # off: aiokafka's implementation fails batches with OutOfOrderSequenceNumber under concurrent
        # sends, and a duplicate is harmless: every consumer dedupes on event_id.
        self._producer = AIOKafkaProducer(
            **kafka.client_kwargs(), acks="all", enable_idempotence=False, client_id=f"{schema}-outbox",
            linger_ms=5,
        )
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
        """Start publishing; a relay stopped while it was starting (a SIGTERM during the service's
        start-up) does not start its loop, and holds no connection of the pool."""
        await self._producer.start()
        if self._stopping.is_set():
            return
        listener = await listen(self._pool, f"{self._schema}_{OUTBOX_CHANNEL}", self._wake)
        if self._stopping.is_set():
            await self._pool.release(listener)
            return
        self._listener = listener
        self._task = asyncio.create_task(self._run(), name=f"{self._schema}-outbox-relay")

    @property
    def running(self) -> bool:
        """Started, and neither stopped nor stopping."""
        return self._task is not None and not self._task.done() and not self._stopping.is_set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in flight, then stop (cancel it after `timeout`: its rows stay unpublished)."""
        self._stopping.set()
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("outbox relay did not stop in time; unpublished rows are sent at the next start")
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                log.warning("outbox relay stopped with an error", error=repr(exc))
        unlisten(f"{self._schema}_{OUTBOX_CHANNEL}", self._wake)
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(self._pool.release(listener), 1.0)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                listener.terminate()
        try:
            await asyncio.wait_for(self._producer.stop(), 1.0)
        except TimeoutError:
            log.warning("outbox producer did not stop in time")

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                sent = await self.publish_batch()
                backoff = 0.2
            except Exception as exc:  # Kafka or Postgres unavailable: keep the rows, retry later
                if self._pool.is_closing():  # the service is stopping: nothing to retry with
                    log.warning("outbox relay stopped: its database pool is closing", error=repr(exc))
                    return
                log.warning("outbox relay batch failed, will retry", error=repr(exc), retry_in=backoff)
                await pause(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self._batch_size:
                await pause(self._stopping, self._poll_seconds, self._wake)

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            transaction_only(conn)  # a transaction-scoped lock only: no reset on release
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
                await self._producer.send(
                    row["topic"],
                    None if row["payload"] is None else row["payload"].encode(),
                    key=row["key"].encode(),
                    headers=[
                        ("event_type", row["event_type"].encode()),
                        *([] if row["payload"] is None else [("content-type", b"application/json")]),
                        ("correlation_id", str(row["correlation_id"] or row["event_id"]).encode()),
                    ],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self.published.inc(len(rows))
        return len(rows)
