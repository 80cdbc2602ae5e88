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

Cost per transaction (issue 13: a sign-up is one of these): BEGIN, the use case's statements, one
statement for the outbox rows, COMMIT. After a commit that wrote outbox rows the relay of this process
is woken in-process (no round trip); relays of other instances of the service are woken by a NOTIFY
on `<schema>_outbox`, at most one per `notify_interval` seconds (the first commit of an interval
sends it at once, later ones are covered by one more NOTIFY at the interval's end), instead of one per
commit: each NOTIFY is a round trip and takes Postgres' notify-queue lock, and every listening session
is signalled. A lost NOTIFY only delays: relays poll. A transaction's connection must hold nothing
beyond its transaction (no session settings, session advisory locks, LISTEN, cursors: use
`SET LOCAL`, `pg_advisory_xact_lock`): it goes back to the pool without the reset round trip
(runtime/db.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import structlog

from estafette.runtime.db import transaction_only
from estafette.runtime.loops import wake_local
from schemas import Event, topic_name

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=Event)
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
OUTBOX_CHANNEL = "outbox"
#: The queued rows, one array per column, in one statement (a prepared statement Postgres plans once;
#: COPY costs more per command for the one to three rows of a use case).
_OUTBOX_INSERT = (
    'INSERT INTO "{schema}".outbox (event_id, topic, key, event_type, payload, correlation_id)'
    " SELECT event_id, topic, key, event_type, payload::jsonb, correlation_id"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[])"
    " WITH ORDINALITY AS r(event_id, topic, key, event_type, payload, correlation_id, n) ORDER BY n"
)
#: Other instances' relays are woken at most once per this many seconds (see the module's docstring).
NOTIFY_INTERVAL_SECONDS = 0.05


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
        """Write the queued messages to the outbox (one statement, in queue order: `id` keeps it); True
        if there were any."""
        if not self._outbox:
            return False
        columns = (list(column) for column in zip(*self._outbox, strict=True))
        await self.conn.execute(_OUTBOX_INSERT.format(schema=self._schema), *columns)
        self._outbox.clear()
        return True


def _no_repository(conn: asyncpg.Connection) -> Any:
    return None


class UnitOfWork(Generic[R]):
    """Hands out transactions on the service's pool (set once the app has started); each carries
    `repository(conn)`, the service's repository on that transaction's connection."""

    def __init__(
        self, schema: str, repository: Callable[[asyncpg.Connection], R] = _no_repository, *,
        notify_interval: float = NOTIFY_INTERVAL_SECONDS,
    ) -> None:
        self.schema = schema
        self.repository = repository
        self.pool: asyncpg.Pool | None = None
        self.channel = f"{schema}_{OUTBOX_CHANNEL}"
        self.notify_interval = notify_interval
        self._notified_at = float("-inf")  # when the last NOTIFY was sent (monotonic)
        self._trailing: asyncio.Task[None] | None = None  # the NOTIFY owed at the interval's end

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction[R]]:
        if self.pool is None:
            raise ConnectionError("database pool not ready")
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                tx = Transaction(conn, self.schema, self.repository(conn))
                yield tx
                wrote = await tx._flush()
            transaction_only(conn)  # nothing outlives the transaction: no reset on release
            for action in tx._after_commit:
                action()
            if wrote:
                await self._announce(conn)

    async def _announce(self, conn: asyncpg.Connection) -> None:
        """Wake the relays after a commit that wrote outbox rows: this process's at once, the other
        instances' by a NOTIFY, at most one per `notify_interval` (sent after the commit: inside the
        transaction it would hold Postgres' database-wide notify lock until the commit is on disk)."""
        wake_local(self.channel)
        now = time.monotonic()
        if now - self._notified_at >= self.notify_interval:
            self._notified_at = now
            await self._notify(conn)
        elif self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._notify_later(self._notified_at + self.notify_interval - now))

    async def _notify(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        try:
            await conn.execute("SELECT pg_notify($1, '')", self.channel)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Lost (a connection gone just now, the pool closing): the relays' polls still find the rows.
            log.warning("outbox wake-up not sent; the relay polls", error=type(exc).__name__)

    async def _notify_later(self, delay: float) -> None:
        """The NOTIFY for the commits of an interval that had sent its NOTIFY already."""
        await asyncio.sleep(max(0.0, delay))
        self._notified_at = time.monotonic()
        if self.pool is not None:
            await self._notify(self.pool)
