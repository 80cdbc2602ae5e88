"""The scheduler's loop (runtime/scheduler.py) on an in-memory step store: due by the clock, one
transaction per step, retries with back-off, giving up, only its own kinds. The SQL (idempotent
scheduling, SKIP LOCKED, crashes) is tested on Postgres in tests/integration/test_scheduler.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from estafette.runtime.clock import Clock
from estafette.runtime.scheduler import Scheduler, Step, schedule

T0 = datetime(2027, 5, 31, 8, 0, tzinfo=UTC)


@dataclass
class Row:
    step: Step
    done_at: datetime | None = None
    retry_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None


class FakeSteps:
    """`StepStore` in memory. Changes are made on the transaction's copy and kept only at commit."""

    def __init__(self, *steps: Step) -> None:
        self.rows = {s.id: Row(s) for s in steps}

    async def take_due(self, conn: Any, kinds: Sequence[str], now: datetime) -> Step | None:
        due = [
            r for r in self.rows.values()
            if r.done_at is None and r.failed_at is None and r.step.kind in kinds and (r.retry_at or r.step.due_at) <= now
        ]
        due.sort(key=lambda r: ((r.retry_at or r.step.due_at), r.step.id))
        return due[0].step if due else None

    async def mark_done(self, conn: Any, step: Step, now: datetime) -> None:
        conn.changes.append(lambda: setattr(self.rows[step.id], "done_at", now))

    async def record_failure(self, conn: Any, step: Step, error: str, retry_at: datetime | None, failed_at: datetime | None) -> None:
        def apply() -> None:
            row = self.rows[step.id]
            row.step = replace(row.step, attempts=row.step.attempts + 1)
            row.last_error, row.retry_at, row.failed_at = error, retry_at, failed_at

        conn.changes.append(apply)


@dataclass
class FakeConn:
    changes: list[Any] = field(default_factory=list)


@dataclass
class FakeTx:
    conn: FakeConn


class FakeUow:
    """Transactions whose changes (the store's and the handlers' `tx.conn.changes`) apply at commit."""

    def __init__(self) -> None:
        self.commits = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        tx = FakeTx(FakeConn())
        yield tx  # an exception: nothing applied (rollback)
        for change in tx.conn.changes:
            change()
        self.commits += 1


def step(id: int, kind: str = "reminder", due: datetime = T0) -> Step:
    return Step(id=id, kind=kind, key=f"s-{id}", due_at=due, payload={"n": id})


def test_a_step_runs_once_when_the_clock_reaches_its_due_time():
    steps, effects = FakeSteps(step(1, due=T0 + timedelta(days=1))), []

    async def remind(tx, s: Step) -> None:
        tx.conn.changes.append(lambda: effects.append(s.payload["n"]))

    clock = Clock(fixed_now=T0)
    scheduler = Scheduler(FakeUow(), {"reminder": remind}, clock, store=steps)
    assert asyncio.run(scheduler.run_due()) == 0 and effects == []

    clock.advance(timedelta(days=1))
    assert asyncio.run(scheduler.run_due()) == 1
    assert asyncio.run(scheduler.run_due()) == 0
    assert effects == [1] and steps.rows[1].done_at == T0 + timedelta(days=1)


def test_a_failing_step_is_rolled_back_retried_after_a_back_off_and_then_done():
    steps, effects, failures = FakeSteps(step(1)), [], [RuntimeError("smtp down"), RuntimeError("still down")]

    async def remind(tx, s: Step) -> None:
        tx.conn.changes.append(lambda: effects.append(s.key))  # the effect, then the failure
        if failures:
            raise failures.pop(0)

    clock = Clock(fixed_now=T0)
    scheduler = Scheduler(FakeUow(), {"reminder": remind}, clock, backoff_seconds=10, store=steps)
    asyncio.run(scheduler.run_due())
    row = steps.rows[1]
    assert effects == [] and row.done_at is None  # rolled back, with its effect
    assert (row.step.attempts, row.last_error, row.retry_at) == (1, "RuntimeError: smtp down", T0 + timedelta(seconds=10))

    clock.advance(timedelta(seconds=9))
    assert asyncio.run(scheduler.run_due()) == 0  # not before the back-off
    clock.advance(timedelta(seconds=1))
    asyncio.run(scheduler.run_due())
    assert row.step.attempts == 2 and row.retry_at == clock.now() + timedelta(seconds=20)  # doubled

    clock.advance(timedelta(seconds=20))
    asyncio.run(scheduler.run_due())
    assert effects == ["s-1"] and row.done_at == clock.now() and row.failed_at is None


def test_after_its_last_attempt_a_step_gives_up_and_is_not_run_again():
    steps, calls = FakeSteps(step(1)), []

    async def broken(tx, s: Step) -> None:
        calls.append(s.attempts)
        raise ValueError("no such offer")

    clock = Clock(fixed_now=T0)
    scheduler = Scheduler(FakeUow(), {"reminder": broken}, clock, max_attempts=3, backoff_seconds=1, store=steps)
    for _ in range(5):
        asyncio.run(scheduler.run_due())
        clock.advance(timedelta(hours=1))
    row = steps.rows[1]
    assert calls == [0, 1, 2]
    assert row.failed_at == T0 + timedelta(hours=2) and row.retry_at is None and row.last_error == "ValueError: no such offer"


def test_a_loop_takes_only_the_kinds_it_has_handlers_for_in_due_order():
    steps, ran = FakeSteps(step(1, "feedback"), step(2, "reminder", T0 - timedelta(hours=1)), step(3, "reminder")), []

    async def remind(tx, s: Step) -> None:
        ran.append(s.id)

    asyncio.run(Scheduler(FakeUow(), {"reminder": remind}, Clock(fixed_now=T0), store=steps).run_due())
    assert ran == [2, 3] and steps.rows[1].done_at is None


def test_back_off_doubles_up_to_its_cap():
    scheduler = Scheduler(FakeUow(), {"x": None}, Clock(), backoff_seconds=5, max_backoff_seconds=30, store=FakeSteps())
    assert [scheduler.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


def test_the_loop_runs_until_stopped():
    steps, ran = FakeSteps(step(1)), []

    async def remind(tx, s: Step) -> None:
        ran.append(s.id)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.create_task(Scheduler(FakeUow(), {"reminder": remind}, Clock(fixed_now=T0), poll_seconds=0.01, store=steps).run(stopping))
        while not ran:
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(loop, 5)

    asyncio.run(main())
    assert ran == [1]


def test_a_step_needs_an_aware_due_time():
    with pytest.raises(ValueError, match="UTC offset"):
        asyncio.run(schedule(FakeTx(FakeConn()), "reminder", "s-1", datetime(2027, 5, 31, 8, 0)))
