"""At-least-once Kafka consumption with exactly-once effects.

Records arrive in batches (one poll). A batch is decoded, deduplicated through the inbox and handed to
the service's handler, one event at a time, inside ONE database transaction; the offsets are committed
only after that transaction has committed (AckPolicy.NACK_ON_ERROR, never ACK_FIRST). A crash in between
redelivers the batch, and the inbox turns the redelivery into a no-op.

Failures:
- infrastructure (database unreachable): the batch is not acknowledged; the consumer seeks back and
  retries after a pause, so nothing is lost;
- a record that cannot be decoded, or whose handling fails on every attempt (a bug, bad data): it is
  isolated, stored in `dead_letters` and published to the dead-letter topic, and the rest go on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from prometheus_client import CollectorRegistry, Counter

from schemas import Event, decode_event
from schemas.topics import dead_letters_for

if TYPE_CHECKING:
    from estafette.runtime.settings import ServiceSettings
    from estafette.runtime.uow import Transaction, UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[["Transaction[Any]", Any], Awaitable[None]]
#: Called for a tombstone (null value) on a compacted topic: `erase(tx, key)`, e.g. forget a person's
#: contact details. Idempotent by nature, so it needs no inbox entry.
TombstoneHandler = Callable[["Transaction[Any]", str], Awaitable[None]]
#: One use case per event type: `dispatch({SignupSubmitted: service.participant_signed_up, ...})`.
EventHandler = Callable[["Transaction[Any]", Any], Awaitable[None]]
#: Called for a tombstone (null value) on a compacted topic: `erase(tx, key)`, e.g. forget a person's
#: contact details. Idempotent by nature, so it needs no inbox entry.
TombstoneHandler = Callable[["Transaction[Any]", str], Awaitable[None]]


def dispatch(table: Mapping[type[Event], EventHandler]) -> Handler:
    """A consumer handler that calls the use case registered for the event's type, and ignores the
    other event types of the topic (they are for other consumers)."""

    async def handle(tx: Transaction[Any], event: Event) -> None:
        use_case = table.get(type(event))
        if use_case is not None:
            await use_case(tx, event)

    handle.__doc__ = "Handles: " + ", ".join(sorted(cls.__name__ for cls in table))
    return handle
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
CRASH_EXIT_CODE = 86


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter("events_handled", "Events handled (first time)", ["consumer", "event_type"], registry=registry)
        self.duplicates = Counter("events_duplicate", "Redelivered events skipped by the inbox", ["consumer"], registry=registry)
        self.dead = Counter("dead_letters", "Records moved to the dead-letter topic", ["consumer"], registry=registry)


class BatchConsumer:
    """Handles the records of one subscription for one service function."""

    def __init__(
        self,
        consumer: str,
        handler: Handler,
        uow: UnitOfWork,
        settings: ServiceSettings,
        metrics: ConsumerMetrics,
        tombstone: TombstoneHandler | None = None,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.tombstone = tombstone
        self.uow = uow
        self.settings = settings
        self.metrics = metrics

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        decoded: list[tuple[ConsumerRecord, Event]] = []
        undecodable: list[tuple[ConsumerRecord, str]] = []
        tombstones: list[str] = []
        for record in records:
            if record.value is None:  # a tombstone on a compacted topic
                if self.tombstone is not None and record.key:
                    tombstones.append(record.key.decode())
                continue
            try:
                decoded.append((record, decode_event(record.value)))
            except (ValidationError, ValueError, TypeError) as exc:
                undecodable.append((record, f"cannot decode: {exc}"))
        try:
            async with self.uow.transaction() as tx:
                await self._apply(tx, [event for _, event in decoded])
                for key in tombstones:
                    assert self.tombstone is not None
                    await self.tombstone(tx, key)
                for record, error in undecodable:
                    await self._dead_letter(tx, record, error)
        except INFRASTRUCTURE_ERRORS:
            await asyncio.sleep(1.0)  # let the database come back; the batch is redelivered
            raise
        except Exception:
            log.warning("batch failed, handling its records one by one", consumer=self.consumer, size=len(records))
            await self._handle_one_by_one(decoded, undecodable, tombstones)
        if self.settings.failpoint("crash_after_commit"):
            log.error("failpoint crash_after_commit: exiting before the offset commit", consumer=self.consumer)
            os._exit(CRASH_EXIT_CODE)

    async def _apply(self, tx: Transaction, events: list[Event]) -> None:
        fresh = await tx.claim(self.consumer, events)
        if len(fresh) < len(events):
            self.metrics.duplicates.labels(self.consumer).inc(len(events) - len(fresh))
        for event in fresh:
            # Every log line written while this event is handled carries its ids.
            with structlog.contextvars.bound_contextvars(
                event_id=str(event.event_id), correlation_id=str(event.correlation_id)
            ):
                await self.handler(tx, event)
                log.info("event handled", consumer=self.consumer, event_type=event.event_type, edition=event.edition)
            self.metrics.handled.labels(self.consumer, event.event_type).inc()

    async def _handle_one_by_one(
        self, decoded: list[tuple[ConsumerRecord, Event]], undecodable: list[tuple[ConsumerRecord, str]],
        tombstones: list[str],
    ) -> None:
        for record, event in decoded:
            error = ""
            for attempt in range(1, self.settings.handler_attempts + 1):
                try:
                    async with self.uow.transaction() as tx:
                        await self._apply(tx, [event])
                    error = ""
                    break
                except INFRASTRUCTURE_ERRORS:
                    await asyncio.sleep(1.0)
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning("handler failed", consumer=self.consumer, event_id=str(event.event_id), attempt=attempt, error=error)
                    await asyncio.sleep(0.1 * attempt)
            if error:
                undecodable.append((record, error))
        if undecodable or tombstones:
            async with self.uow.transaction() as tx:
                for key in tombstones:
                    assert self.tombstone is not None
                    await self.tombstone(tx, key)
                for record, error in undecodable:
                    await self._dead_letter(tx, record, error)

    async def _dead_letter(self, tx: Transaction, record: ConsumerRecord, error: str) -> None:
        inserted = await tx.conn.fetchval(
            'INSERT INTO dead_letters (consumer, topic, partition, "offset", error, value)'
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            self.consumer, record.topic, record.partition, record.offset, error[:2000], record.value,
        )
        if inserted is None:
            return
        payload = {
            "consumer": self.consumer,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "error": error[:2000],
            "value_base64": base64.b64encode(record.value or b"").decode(),
        }
        tx.publish_raw(dead_letters_for(record.topic), record.topic, "DeadLetter", json.dumps(payload))
        self.metrics.dead.labels(self.consumer).inc()
        log.error("record dead-lettered", consumer=self.consumer, topic=record.topic, partition=record.partition, offset=record.offset)
