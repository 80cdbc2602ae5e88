"""Unit of work: one database transaction, with the inbox (dedupe) and the outbox (events out).

    async with uow.transaction() as tx:
        new = await tx.claim(consumer, events)      # inbox: only events not handled before
        ...                                          # state changes through tx.conn
        tx.publish(SomethingHappened(...))           # outbox: written at commit, same transaction

Either all of it commits, or none: an acknowledged Kafka message therefore has its effect exactly once,
and an event is published if and only if the state change that it announces was committed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from schemas import Event, topic_for

if TYPE_CHECKING:
    from schemas import Topic

E = TypeVar("E", bound=Event)
OUTBOX_CHANNEL = "outbox"
_OUTBOX_COLUMNS = ["event_id", "topic", "key", "event_type", "payload"]


class Transaction:
    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self._schema = schema
        self._outbox: list[tuple[uuid.UUID, str, str, str, str]] = []

    async def claim(self, consumer: str, events: Sequence[E]) -> list[E]:
        """Record `events` as handled by `consumer`; return those not handled before, in order."""
        if not events:
            return []
        rows = await self.conn.fetch(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            consumer,
            [e.event_id for e in events],
        )
        fresh = {r["event_id"] for r in rows}
        seen: set[uuid.UUID] = set()
        out = []
        for e in events:  # the same event twice in one batch counts once
            if e.event_id in fresh and e.event_id not in seen:
                seen.add(e.event_id)
                out.append(e)
        return out

    def publish(self, *events: Event) -> None:
        """Queue events for the outbox; they are written at commit, in the same transaction."""
        for event in events:
            self._outbox.append(
                (event.event_id, topic_for(event).name, event.key, event.event_type, event.model_dump_json())
            )

    def publish_raw(self, topic: Topic, key: str, event_type: str, payload_json: str) -> None:
        """Queue a message that is not a v1 event (e.g. a dead letter)."""
        self._outbox.append((uuid.uuid4(), topic.name, key, event_type, payload_json))

    async def _flush(self) -> None:
        if not self._outbox:
            return
        await self.conn.copy_records_to_table(
            "outbox", records=self._outbox, columns=_OUTBOX_COLUMNS, schema_name=self._schema
        )
        await self.conn.execute("SELECT pg_notify($1, '')", f"{self._schema}_{OUTBOX_CHANNEL}")
        self._outbox.clear()


class UnitOfWork:
    """Hands out transactions on the service's pool (set once the app has started)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self.pool is None:
            raise ConnectionError("database pool not ready")
        async with self.pool.acquire() as conn, conn.transaction():
            tx = Transaction(conn, self.schema)
            yield tx
            await tx._flush()
