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

Bulk handling (opt-in, per event type): register `many(use_case)` instead of a per-event use case,
where `use_case(tx, events)` takes a list, e.g. `{MatchAssigned: many(assigned_all)}`. Within one
batch, consecutive fresh events of that type (offset order, no other record between them: another
type, a redelivered event, a tombstone or an undecodable record ends the run) reach it in ONE call,
made before the next other record is handled and before the transaction commits; so order across
records is kept. What wraps the registered handler (e.g. notifications' webhook tap) still runs per
event, in order. The per-event log line and metrics are written after the call, per event. In the
one-by-one fallback (and outside a consumer, e.g. a test calling the handler) an event gets a list of
one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from prometheus_client import CollectorRegistry, Counter

from schemas import Event, decode_event
from schemas.topics import dead_letters_for
from schemas.topics import parse as parse_topic

if TYPE_CHECKING:
    from estafette.runtime.settings import ServiceSettings
    from estafette.runtime.uow import Transaction, UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[["Transaction[Any]", Any], Awaitable[None]]
#: One use case per event type: `dispatch({SignupSubmitted: service.participant_signed_up, ...})`.
EventHandler = Callable[["Transaction[Any]", Any], Awaitable[None]]
#: A use case for a list of events of one type, in offset order: register it with `many(...)`.
BatchHandler = Callable[["Transaction[Any]", list[Any]], Awaitable[None]]
#: Called for a tombstone (null value) on a compacted topic: `erase(tx, key)`, e.g. forget a person's
#: contact details. Idempotent by nature, so it needs no inbox entry.
TombstoneHandler = Callable[["Transaction[Any]", str], Awaitable[None]]


@dataclass
class _Run:
    """The events of one type held for one call of their batch handler, in one transaction."""

    tx: Any
    done: Callable[[Event], None]  #: the per-event log line and metric, after the call
    handler: BatchHandler | None = None
    event_type: type[Event] | None = None
    events: list[Event] = field(default_factory=list)

    def holds(self, event: Event) -> bool:
        return bool(self.events) and self.events[-1] is event

    def continued_by(self, item: Item, fresh: set[uuid.UUID]) -> bool:
        """Whether `item` may join the run (a fresh event of its type), else the run is handed over first."""
        return item.event is not None and item.event.event_id in fresh and type(item.event) is self.event_type

    async def flush(self) -> None:
        if not self.events:
            return
        assert self.handler is not None
        events, handler = self.events, self.handler
        self.events, self.handler, self.event_type = [], None, None
        with structlog.contextvars.bound_contextvars(batch_size=len(events)):
            await handler(self.tx, events)
        for event in events:
            self.done(event)


#: The run being collected by the consumer's `_apply` in this task (None outside a consumer).
_RUN: ContextVar[_Run | None] = ContextVar("estafette_consumer_run", default=None)


def many(handler: BatchHandler) -> EventHandler:
    """A per-event handler for a dispatch table that hands consecutive events of its type to
    `handler(tx, events)` in one call (see the module docstring); outside a consumer's batch, at once
    as a list of one."""

    async def one(tx: Transaction[Any], event: Event) -> None:
        run = _RUN.get()
        if run is None or run.tx is not tx:
            await handler(tx, [event])
            return
        if run.events and (run.handler is not handler or type(event) is not run.event_type):
            await run.flush()
        run.handler, run.event_type = handler, type(event)
        run.events.append(event)

    one.__doc__ = f"In bulk: {getattr(handler, '__qualname__', handler)}"
    return one


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


@dataclass(frozen=True)
class Item:
    """One record of a batch: an event, a tombstone (neither event nor error), or an undecodable record."""

    record: ConsumerRecord
    event: Event | None = None
    error: str | None = None


def _personal(topic: str) -> bool:
    try:
        return parse_topic(topic)[0].personal_data
    except ValueError:
        return False


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
        """Handle a batch in one transaction, in offset order (a tombstone and a later record of the
        same key keep their order); if that fails, record by record."""
        items: list[Item] = []
        for record in records:
            if record.value is None:  # a tombstone on a compacted topic
                if self.tombstone is not None and record.key:
                    items.append(Item(record))
                continue
            try:
                items.append(Item(record, event=decode_event(record.value)))
            except (ValidationError, ValueError, TypeError) as exc:
                items.append(Item(record, error=f"cannot decode: {exc}"))
        try:
            async with self.uow.transaction() as tx:
                await self._apply(tx, items)
        except INFRASTRUCTURE_ERRORS:
            await asyncio.sleep(1.0)  # let the database come back; the batch is redelivered
            raise
        except Exception:
            log.warning("batch failed, handling its records one by one", consumer=self.consumer, size=len(records))
            await self._handle_one_by_one(items)
        if self.settings.failpoint("crash_after_commit"):
            log.error("failpoint crash_after_commit: exiting before the offset commit", consumer=self.consumer)
            os._exit(CRASH_EXIT_CODE)

    async def _apply(self, tx: Transaction, items: list[Item]) -> None:
        events = [item.event for item in items if item.event is not None]
        fresh = {e.event_id for e in await tx.claim(self.consumer, events)}
        if len(fresh) < len(events):
            tx.after_commit(lambda n=len(events) - len(fresh): self.metrics.duplicates.labels(self.consumer).inc(n))
        run = _Run(tx, lambda event: self._handled(tx, event))
        token = _RUN.set(run)
        try:
            for item in items:
                if run.events and not run.continued_by(item, fresh):
                    await run.flush()  # a run of bulk-handled events ends before any other record
                if item.error is not None:
                    await self._dead_letter(tx, item.record, item.error)
                elif item.event is None:
                    assert self.tombstone is not None and item.record.key
                    await self.tombstone(tx, item.record.key.decode())
                    log.info("tombstone handled", consumer=self.consumer, topic=item.record.topic)
                elif item.event.event_id in fresh:
                    fresh.discard(item.event.event_id)  # the same event twice in one batch counts once
                    event = item.event
                    # Every log line written while this event is handled carries its ids.
                    with structlog.contextvars.bound_contextvars(
                        event_id=str(event.event_id), correlation_id=str(event.correlation_id)
                    ):
                        await self.handler(tx, event)
                    if not run.holds(event):  # held for a bulk call: logged after it
                        self._handled(tx, event)
            await run.flush()
        finally:
            _RUN.reset(token)

    def _handled(self, tx: Transaction, event: Event) -> None:
        with structlog.contextvars.bound_contextvars(
            event_id=str(event.event_id), correlation_id=str(event.correlation_id)
        ):
            log.info("event handled", consumer=self.consumer, event_type=event.event_type, edition=event.edition)
        tx.after_commit(self.metrics.handled.labels(self.consumer, event.event_type).inc)

    async def _handle_one_by_one(self, items: list[Item]) -> None:
        for item in items:
            error = item.error  # undecodable: straight to the dead letters
            attempt = 0
            while error is None and attempt < self.settings.handler_attempts:
                attempt += 1
                try:
                    async with self.uow.transaction() as tx:
                        await self._apply(tx, [item])
                    break
                except INFRASTRUCTURE_ERRORS:
                    await asyncio.sleep(1.0)
                    raise
                except Exception as exc:
                    log.warning("handler failed", consumer=self.consumer, topic=item.record.topic,
                                offset=item.record.offset, attempt=attempt, error=f"{type(exc).__name__}: {exc}")
                    if attempt == self.settings.handler_attempts:
                        error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.1 * attempt)
            if error is not None:
                async with self.uow.transaction() as tx:
                    await self._dead_letter(tx, item.record, error)

    async def _dead_letter(self, tx: Transaction, record: ConsumerRecord, error: str) -> None:
        # A record of a personal-data topic is not copied: its value (a name, an address) would live on
        # where no tombstone reaches it. Its topic, partition and offset say where to find it.
        value = None if _personal(record.topic) else record.value
        inserted = await tx.conn.fetchval(
            'INSERT INTO dead_letters (consumer, topic, partition, "offset", error, value)'
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            self.consumer, record.topic, record.partition, record.offset, error[:2000], value,
        )
        if inserted is None:
            return
        payload = {
            "consumer": self.consumer,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "error": error[:2000],
            "value_base64": base64.b64encode(value or b"").decode(),
            "value_withheld": value is None and record.value is not None,
        }
        tx.publish_raw(dead_letters_for(record.topic), record.topic, "DeadLetter", json.dumps(payload))
        tx.after_commit(self.metrics.dead.labels(self.consumer).inc)
        log.error("record dead-lettered", consumer=self.consumer, topic=record.topic, partition=record.partition, offset=record.offset)
