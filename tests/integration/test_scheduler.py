"""The durable scheduler (runtime/scheduler.py) on real Postgres, in a schema of its own with the
runtime migrations applied (as a service's): idempotent scheduling, due by the clock (a clock file,
as services read it), two loops never run one step twice, a crash before the commit re-runs a step
with its effect exactly once, and a step scheduled with a change that rolls back does not exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from estafette.runtime.clock import Clock, move_clock_file
from estafette.runtime.db import create_pool, migrate
from estafette.runtime.scheduler import Scheduler, Step, cancel, schedule
from estafette.runtime.uow import UnitOfWork
from tests.support import DB, Infra

pytestmark = pytest.mark.integration
SCHEMA = "schedtest"
T0 = datetime(2027, 5, 31, 8, 0, tzinfo=UTC)


async def _ensure_schema() -> None:
    conn = await asyncpg.connect(Infra.admin_dsn())
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", SCHEMA):
            await conn.execute(f"CREATE ROLE {SCHEMA} LOGIN PASSWORD '{SCHEMA}'")
        await conn.execute(f"GRANT CONNECT ON DATABASE {DB} TO {SCHEMA}")
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA} AUTHORIZATION {SCHEMA}")
    finally:
        await conn.close()


@pytest.fixture
async def uow(infra: Infra, tmp_path: Path) -> AsyncIterator[UnitOfWork]:
    """A unit of work on a fresh schema with the runtime's tables and an effect log."""
    await _ensure_schema()
    pool = await create_pool(Infra.dsn(SCHEMA), SCHEMA)
    try:
        applied = await migrate(pool, SCHEMA, tmp_path)  # no service migrations: the runtime's only
        assert "runtime/003_scheduled_steps.sql" in applied
        await pool.execute("CREATE TABLE effects (seq bigserial PRIMARY KEY, key text NOT NULL)")
        unit = UnitOfWork(SCHEMA)
        unit.pool = pool
        yield unit
    finally:
        await pool.close()


async def _steps(uow: UnitOfWork) -> list[asyncpg.Record]:
    assert uow.pool is not None
    return await uow.pool.fetch("SELECT * FROM scheduled_steps ORDER BY id")


async def _effects(uow: UnitOfWork) -> list[str]:
    assert uow.pool is not None
    return [r["key"] for r in await uow.pool.fetch("SELECT key FROM effects ORDER BY seq")]


async def _effect(tx, step: Step) -> None:  # noqa: ANN001
    await tx.conn.execute("INSERT INTO effects (key) VALUES ($1)", step.key)


async def test_scheduling_again_moves_the_step_and_never_adds_a_second_row(uow: UnitOfWork) -> None:
    async with uow.transaction() as tx:
        await schedule(tx, "reminder", "s-1", T0, {"offer": "o-1"})
    async with uow.transaction() as tx:
        await schedule(tx, "reminder", "s-1", T0 + timedelta(hours=1), {"offer": "o-2"})
        await schedule(tx, "feedback", "s-1", T0)  # another kind, same key: another step
    rows = await _steps(uow)
    assert [(r["kind"], r["key"], r["due_at"]) for r in rows] == [
        ("reminder", "s-1", T0 + timedelta(hours=1)), ("feedback", "s-1", T0)
    ]
    assert rows[0]["payload"] == '{"offer": "o-2"}'

    clock = Clock(fixed_now=T0 + timedelta(hours=1))
    assert await Scheduler(uow, {"reminder": _effect}, clock).run_due() == 1
    async with uow.transaction() as tx:  # the same due time again (e.g. a redelivered event): nothing
        await schedule(tx, "reminder", "s-1", T0 + timedelta(hours=1), {"offer": "o-2"})
    assert await Scheduler(uow, {"reminder": _effect}, clock).run_due() == 0
    async with uow.transaction() as tx:  # a new due time: a new occurrence, run once more
        await schedule(tx, "reminder", "s-1", T0 + timedelta(hours=1, minutes=30), {"offer": "o-3"})
    clock.advance(timedelta(minutes=30))
    assert await Scheduler(uow, {"reminder": _effect}, clock).run_due() == 1
    assert await _effects(uow) == ["s-1", "s-1"]
    assert len(await _steps(uow)) == 2


async def test_a_step_is_due_when_the_clock_file_says_so(uow: UnitOfWork, tmp_path: Path) -> None:
    clock_file = tmp_path / "clock.json"
    move_clock_file(clock_file, fixed_now=T0)
    clock = Clock(file=clock_file)  # as every service reads ESTAFETTE_CLOCK_FILE
    async with uow.transaction() as tx:
        await schedule(tx, "reminder", "s-1", T0 + timedelta(days=1))
        await schedule(tx, "reminder", "s-2", T0 + timedelta(days=2))
    scheduler = Scheduler(uow, {"reminder": _effect}, clock)
    assert await scheduler.run_due() == 0

    move_clock_file(clock_file, fixed_now=T0, offset_seconds=86400)
    assert await scheduler.run_due() == 1
    assert await _effects(uow) == ["s-1"]
    (done, pending) = await _steps(uow)
    assert done["done_at"] == T0 + timedelta(days=1) and pending["done_at"] is None


async def test_two_loops_never_run_one_step_twice(uow: UnitOfWork) -> None:
    clock = Clock(fixed_now=T0)
    async with uow.transaction() as tx:
        for i in range(40):
            await schedule(tx, "reminder", f"s-{i}", T0 - timedelta(minutes=i))

    # One loop holds a step (its handler has not finished): the other skips it and runs the rest.
    holding, release = asyncio.Event(), asyncio.Event()

    async def slow(tx, step: Step) -> None:  # noqa: ANN001
        await _effect(tx, step)
        holding.set()
        await release.wait()

    first = asyncio.create_task(Scheduler(uow, {"reminder": slow}, clock).run_one())
    try:
        await asyncio.wait_for(holding.wait(), 30)
        others = await asyncio.wait_for(Scheduler(uow, {"reminder": _effect}, clock).run_due(), 30)
    finally:
        release.set()
        held = await first
    assert others == 39
    assert held is not None and held.key == "s-39"  # the first due

    # And two loops at once on fresh steps: each step exactly once.
    async with uow.transaction() as tx:
        for i in range(40, 100):
            await schedule(tx, "reminder", f"s-{i}", T0)

    async def yielding(tx, step: Step) -> None:  # noqa: ANN001
        await _effect(tx, step)
        await asyncio.sleep(0)

    taken = await asyncio.gather(*(Scheduler(uow, {"reminder": yielding}, clock).run_due() for _ in range(2)))
    assert sum(taken) == 60
    effects = await _effects(uow)
    assert sorted(effects) == sorted(f"s-{i}" for i in range(100))


async def test_a_crash_before_the_commit_reruns_the_step_with_its_effect_exactly_once(uow: UnitOfWork) -> None:
    clock = Clock(fixed_now=T0)
    async with uow.transaction() as tx:
        await schedule(tx, "reminder", "s-1", T0)
        await schedule(tx, "reminder", "s-2", T0)
    crashes = {"s-1": "exception", "s-2": "connection"}

    async def crashing(tx, step: Step) -> None:  # noqa: ANN001
        await _effect(tx, step)  # the effect is written ...
        how = crashes.pop(step.key, None)
        if how == "exception":  # ... then the handler fails
            raise RuntimeError("crash after the effect")
        if how == "connection":  # ... or the connection dies before the commit (a killed process)
            assert uow.pool is not None
            await uow.pool.execute("SELECT pg_terminate_backend($1)", tx.conn.get_server_pid())

    scheduler = Scheduler(uow, {"reminder": crashing}, clock, backoff_seconds=60)
    assert await scheduler.run_due() == 2
    assert await _effects(uow) == []  # both rolled back, with their effects
    rows = {r["key"]: r for r in await _steps(uow)}
    assert rows["s-1"]["attempts"] == 1 and rows["s-1"]["last_error"] == "RuntimeError: crash after the effect"
    assert rows["s-1"]["retry_at"] == T0 + timedelta(seconds=60) and rows["s-1"]["done_at"] is None

    clock.advance(timedelta(minutes=1))
    restarted = Scheduler(uow, {"reminder": crashing}, clock)  # e.g. after a restart
    assert await restarted.run_due() == 2
    assert sorted(await _effects(uow)) == ["s-1", "s-2"]
    clock.advance(timedelta(days=1))
    assert await Scheduler(uow, {"reminder": crashing}, clock).run_due() == 0  # after the commit: never again
    assert sorted(await _effects(uow)) == ["s-1", "s-2"]


async def test_a_step_scheduled_with_a_change_that_rolls_back_does_not_exist(uow: UnitOfWork) -> None:
    with pytest.raises(RuntimeError):
        async with uow.transaction() as tx:
            await tx.conn.execute("INSERT INTO effects (key) VALUES ('the change')")
            await schedule(tx, "reminder", "s-1", T0)
            raise RuntimeError("the use case fails")
    assert await _steps(uow) == [] and await _effects(uow) == []


async def test_cancel_removes_a_step_that_has_not_run(uow: UnitOfWork) -> None:
    async with uow.transaction() as tx:
        await schedule(tx, "reminder", "s-1", T0)
        await schedule(tx, "reminder", "s-2", T0 + timedelta(days=1))
    await Scheduler(uow, {"reminder": _effect}, Clock(fixed_now=T0)).run_due()
    async with uow.transaction() as tx:
        assert await cancel(tx, "reminder", "s-2") is True
        assert await cancel(tx, "reminder", "s-1") is False  # done: it stays done
        assert await cancel(tx, "reminder", "nobody") is False
    assert [(r["key"], r["done_at"] is not None) for r in await _steps(uow)] == [("s-1", True)]
    assert await Scheduler(uow, {"reminder": _effect}, Clock(fixed_now=T0 + timedelta(days=2))).run_due() == 0
