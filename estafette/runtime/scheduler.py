"""Durable scheduler: time-based steps (a reminder the day before a visit, a feedback request after it,
a seat offer's expiry, a match run at an edition's sign-up deadline), kept in the database of the
service that owns them (table `scheduled_steps`, runtime migration 003, in every service's schema).

    # in a use case, in its transaction: the step exists if and only if the change commits
    await schedule(tx, "reminder", signup_id, due_at=visit_start - timedelta(days=1), payload={"offer": offer_id})
    await cancel(tx, "reminder", signup_id)           # e.g. the sign-up was withdrawn

    # in the app: run each due step's handler
    rt.background(Scheduler(rt.uow, {"reminder": send_reminder}, rt.clock).run)

    async def send_reminder(tx, step: Step) -> None:   # same transaction as marking the step done
        ...

Rules:
- **One row per (kind, key).** `schedule` inserts the step or moves its due time (and payload); it
  never adds a second row. Scheduling a step that has run again with the *same* due time changes
  nothing (a redelivered event does not repeat it); with a *new* due time it is a new occurrence: it
  is pending again and runs once more at that time. `cancel` removes a step that has not run.
- **Exactly-once effects.** The loop takes one due step with `FOR UPDATE SKIP LOCKED` (so several
  instances of a service share the work and never run one step at the same time), runs its handler
  and marks it done in ONE transaction. A crash before the commit leaves it pending (it runs again);
  after the commit it never runs again. Effects must therefore be in that transaction: state through
  `tx.repo` / `tx.conn`, events through `tx.publish` (the outbox).
- **Retries.** A handler that raises rolls its transaction back; the step's `attempts` and
  `last_error` are recorded and it is tried again after a back-off (`backoff_seconds`, doubling up to
  `max_backoff_seconds`); after `max_attempts` failed attempts it gives up (`failed_at`, logged as an
  error) until it is scheduled at a new time. A process that dies while running a step does not count as an
  attempt.
- **The clock.** "Due" means `due_at <= clock.now()` on the service's clock (runtime/clock.py): moving
  a test clock makes steps due (at the next poll, `poll_seconds`).
- A loop takes only the kinds it has handlers for; other kinds stay for another loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from estafette.runtime.clock import Now
from estafette.runtime.loops import pause

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Step:
    """A due step, as its handler sees it."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    #: Failed attempts before this one.
    attempts: int = 0


#: `handler(tx, step)`: the step's effects, inside the transaction that marks it done.
StepHandler = Callable[[Any, Step], Awaitable[None]]


def _check_due(due_at: datetime) -> datetime:
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        raise ValueError(f"a step's due time must be aware (name its UTC offset), got {due_at.isoformat()}")
    return due_at


_SCHEDULE = """
    INSERT INTO scheduled_steps AS s (kind, key, due_at, payload) VALUES ($1, $2, $3, $4::jsonb)
    ON CONFLICT (kind, key) DO UPDATE SET
        payload    = CASE WHEN s.done_at IS NULL OR s.due_at <> EXCLUDED.due_at THEN EXCLUDED.payload ELSE s.payload END,
        done_at    = CASE WHEN s.due_at = EXCLUDED.due_at THEN s.done_at END,
        failed_at  = CASE WHEN s.due_at = EXCLUDED.due_at THEN s.failed_at END,
        attempts   = CASE WHEN s.due_at = EXCLUDED.due_at THEN s.attempts ELSE 0 END,
        last_error = CASE WHEN s.due_at = EXCLUDED.due_at THEN s.last_error END,
        retry_at   = CASE WHEN s.due_at = EXCLUDED.due_at THEN s.retry_at END,
        due_at     = EXCLUDED.due_at
"""


async def schedule(tx: Any, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any] | None = None) -> None:
    """Schedule step (kind, key) at `due_at` in `tx`'s transaction, or move it there (see module doc)."""
    await schedule_many(tx, [(kind, key, due_at, payload)])


async def schedule_many(
    tx: Any, steps: Sequence[tuple[str, str, datetime, Mapping[str, Any] | None]],
) -> None:
    """`schedule` for each (kind, key, due_at, payload) of `steps`, in one round trip to the database."""
    for _, _, due_at, _ in steps:
        _check_due(due_at)
    rows = [(kind, key, due_at, json.dumps(dict(payload or {}))) for kind, key, due_at, payload in steps]
    if len(rows) == 1:
        await tx.conn.execute(_SCHEDULE, *rows[0])
    elif rows:
        await tx.conn.executemany(_SCHEDULE, rows)


async def cancel(tx: Any, kind: str, key: str) -> bool:
    """Remove step (kind, key) if it has not run; True if there was one. A step being run right now is
    waited for: if it completes, it stays (done) and this returns False."""
    status = await tx.conn.execute(
        "DELETE FROM scheduled_steps WHERE kind = $1 AND key = $2 AND done_at IS NULL", kind, key
    )
    return status != "DELETE 0"


async def cancel_many(tx: Any, steps: Sequence[tuple[str, str]]) -> None:
    """`cancel` for each (kind, key) of `steps`, in one statement."""
    if steps:
        await tx.conn.execute(
            "DELETE FROM scheduled_steps s USING unnest($1::text[], $2::text[]) AS c(kind, key)"
            " WHERE s.kind = c.kind AND s.key = c.key AND s.done_at IS NULL",
            [kind for kind, _ in steps], [key for _, key in steps],
        )


class StepStore(Protocol):
    """The scheduler's queries on a transaction's connection (a fake in unit tests)."""

    async def take_due(self, conn: Any, kinds: Sequence[str], now: datetime) -> Step | None: ...

    async def mark_done(self, conn: Any, step: Step, now: datetime) -> None: ...

    async def record_failure(
        self, conn: Any, step: Step, error: str, retry_at: datetime | None, failed_at: datetime | None
    ) -> None: ...


class PostgresSteps:
    """`StepStore` on the `scheduled_steps` table."""

    async def take_due(self, conn: Any, kinds: Sequence[str], now: datetime) -> Step | None:
        row = await conn.fetchrow(
            "SELECT id, kind, key, due_at, payload, attempts FROM scheduled_steps"
            " WHERE done_at IS NULL AND failed_at IS NULL AND coalesce(retry_at, due_at) <= $1"
            "   AND kind = ANY($2::text[])"
            " ORDER BY coalesce(retry_at, due_at), id LIMIT 1 FOR UPDATE SKIP LOCKED",
            now,
            list(kinds),
        )
        if row is None:
            return None
        return Step(row["id"], row["kind"], row["key"], row["due_at"], json.loads(row["payload"]), row["attempts"])

    async def mark_done(self, conn: Any, step: Step, now: datetime) -> None:
        await conn.execute("UPDATE scheduled_steps SET done_at = $2, retry_at = NULL WHERE id = $1", step.id, now)

    async def record_failure(
        self, conn: Any, step: Step, error: str, retry_at: datetime | None, failed_at: datetime | None
    ) -> None:
        # Only the occurrence that failed: not if it has been moved (a new occurrence) or done meanwhile.
        await conn.execute(
            "UPDATE scheduled_steps SET attempts = attempts + 1, last_error = $3, retry_at = $4, failed_at = $5"
            " WHERE id = $1 AND due_at = $2 AND done_at IS NULL",
            step.id,
            step.due_at,
            error,
            retry_at,
            failed_at,
        )


class Scheduler:
    """Runs due steps: `handlers[kind](tx, step)`, each in one transaction with marking the step done."""

    def __init__(
        self,
        uow: Any,
        handlers: Mapping[str, StepHandler],
        clock: Now,
        poll_seconds: float = 1.0,
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 900.0,
        store: StepStore | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a scheduler needs at least one handler")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.uow = uow
        self.handlers = dict(handlers)
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.store: StepStore = store or PostgresSteps()

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1, 2, ...): doubling, capped."""
        return timedelta(seconds=min(self.backoff_seconds * 2 ** (attempts - 1), self.max_backoff_seconds))

    async def run(self, stopping: asyncio.Event) -> None:
        """Background loop (`rt.background(scheduler.run)`): run due steps until `stopping` is set."""
        while not stopping.is_set():
            try:
                await self.run_due(stopping)
            except Exception as exc:  # noqa: BLE001 - e.g. the database is away: try again later
                log.warning("scheduler poll failed", error=f"{type(exc).__name__}: {exc}")
            await pause(stopping, self.poll_seconds)

    async def run_due(self, stopping: asyncio.Event | None = None) -> int:
        """Run steps until none is due (or `stopping` is set); return how many were taken."""
        taken = 0
        while not (stopping and stopping.is_set()):
            if await self.run_one() is None:
                break
            taken += 1
        return taken

    async def run_one(self) -> Step | None:
        """Take one due step and run it (or record its failure); the step, or None if none is due."""
        kinds = list(self.handlers)
        step: Step | None = None
        try:
            async with self.uow.transaction() as tx:
                now = self.clock.now()
                step = await self.store.take_due(tx.conn, kinds, now)
                if step is None:
                    return None
                await self.handlers[step.kind](tx, step)
                await self.store.mark_done(tx.conn, step, now)
        except Exception as exc:  # noqa: BLE001 - recorded on the step, retried after a back-off
            if step is None:
                raise
            await self._failed(step, exc)
            return step
        log.info("scheduled step done", kind=step.kind, key=step.key, attempts=step.attempts + 1)
        return step

    async def _failed(self, step: Step, exc: Exception) -> None:
        attempts = step.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:2000]
        now = self.clock.now()
        gave_up = attempts >= self.max_attempts
        async with self.uow.transaction() as tx:
            await self.store.record_failure(
                tx.conn, step, error, None if gave_up else now + self.backoff(attempts), now if gave_up else None
            )
        if gave_up:
            log.error("scheduled step failed; giving up", kind=step.kind, key=step.key, attempts=attempts, error=error)
        else:
            log.warning("scheduled step failed; will retry", kind=step.kind, key=step.key, attempts=attempts, error=error)
