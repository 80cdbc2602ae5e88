"""Unit of work: one database transaction, with the inbox (dedupe), the outbox (events out) and the
service's repository on the same connection.

    async with uow.transaction() as tx:
        new = await tx.claim(consumer, events)      # inbox: only events not handled before
        edition = await tx.repo.edition(...)         # state through the service's repository
        tx.publish(SomethingHappened(...))           # outbox: written at commit, same transaction

Either all of it commits, or none: an acknowledged Kafka message therefore has its effect exactly once,
and an event is published if and only if the state change that it announces was committed.

Services type their use cases against `Tx[Repo]` / `Uow[Repo]` (the protocols below), so unit tests
pass a fake unit of work with an in-memory repository (tests/unit/fakes.py) and no database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import structlog

from schemas import Event, topic_name

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=Event)
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
OUTBOX_CHANNEL = "outbox"
_OUTBOX_COLUMNS = ["event_id", "topic", "key", "event_type", "payload", "correlation_id"]


class Tx(Protocol[R_co]):
    """What a use case sees of a transaction: its repository and the outbox."""

    @property
    def repo(self) -> R_co: ...

    def publish(self, *events: Event) -> None: ...

    def publish_raw(self, topic: str, key: str, event_type: str, payload_json: str | None) -> None: ...


class Uow(Protocol[R_co]):
    """What a use case sees of the unit of work: a way to open a transaction."""

    def transaction(self) -> AbstractAsyncContextManager[Tx[R_co]]: ...


class Transaction(Generic[R]):
    def __init__(self, conn: asyncpg.Connection, schema: str, repo: R) -> None:
        self.conn = conn
        self.repo = repo
        self._schema = schema
        self._outbox: list[tuple[uuid.UUID, str, str, str, str | None, uuid.UUID | None]] = []
        self._after_commit: list[Callable[[], object]] = []

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run `action` once the transaction has committed (e.g. count a metric); never on a rollback."""
        self._after_commit.append(action)

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
                (
                    event.event_id,
                    topic_name(event),
                    event.key,
                    event.event_type,
                    event.model_dump_json(),
                    event.correlation_id,
                )
            )

    def publish_raw(self, topic: str, key: str, event_type: str, payload_json: str | None) -> None:
        """Queue a message that is not an event: a dead letter, or a tombstone (`payload_json` None)
        that erases `key` from a compacted topic."""
        self._outbox.append((uuid.uuid4(), topic, key, event_type, payload_json, None))

    async def _flush(self) -> bool:
        """Write the queued messages to the outbox; True if there were any."""
        if not self._outbox:
            return False
        await self.conn.copy_records_to_table(
            "outbox", records=self._outbox, columns=_OUTBOX_COLUMNS, schema_name=self._schema
        )
        self._outbox.clear()
        return True


def _no_repository(conn: asyncpg.Connection) -> Any:
    return None


class UnitOfWork(Generic[R]):
    """Hands out transactions on the service's pool (set once the app has started); each carries
    `repository(conn)`, the service's repository on that transaction's connection."""

    def __init__(self, schema: str, repository: Callable[[asyncpg.Connection], R] = _no_repository) -> None:
        self.schema = schema
        self.repository = repository
        self.pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction[R]]:
        if self.pool is None:
            raise ConnectionError("database pool not ready")
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                tx = Transaction(conn, self.schema, self.repository(conn))
                yield tx
                wrote = await tx._flush()
            for action in tx._after_commit:
                action()
            if wrote:
                # The relay's wake-up, after the commit: a NOTIFY inside the transaction would hold
                # Postgres' database-wide notify lock until the commit is flushed to disk, one commit
                # at a time. Lost (a connection gone just now), the relay's poll still finds the rows.
                try:
                    await conn.execute("SELECT pg_notify($1, '')", f"{self.schema}_{OUTBOX_CHANNEL}")
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox wake-up not sent; the relay polls", error=type(exc).__name__)
