"""The runtime's cheap paths for a sign-up's transaction (issue 13, ingress) on real Postgres and
Kafka, in a schema of its own with the runtime's tables: the outbox rows of a transaction are written
in one statement and keep their order (a tombstone too); a commit wakes the relay of its own process
without a NOTIFY and without waiting for a poll; a pool connection released after a unit of work's
transaction skips the reset, but any other use of a pool connection is still reset."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from estafette.runtime.db import create_pool, migrate
from estafette.runtime.outbox import OutboxRelay
from estafette.runtime.uow import UnitOfWork
from tests.support import DB, Infra

pytestmark = pytest.mark.integration
SCHEMA = "ingresstest"


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
async def pool(infra: Infra, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    await _ensure_schema()
    pool = await create_pool(Infra.dsn(SCHEMA), SCHEMA, max_size=1)  # one connection: every user shares it
    try:
        await migrate(pool, SCHEMA, tmp_path)  # the runtime's tables only
        yield pool
    finally:
        await pool.close()


async def _until(check, timeout: float = 20.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        if value := await check():
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s"
        await asyncio.sleep(0.05)


async def test_the_outbox_rows_of_a_transaction_keep_their_order_and_a_tombstone_has_no_payload(pool) -> None:
    uow = UnitOfWork(SCHEMA)
    uow.pool = pool
    async with uow.transaction() as tx:
        tx.publish_raw("t.one", "k1", "First", json.dumps({"n": 1, "name": "Zoë 'quoted'"}))
        tx.publish_raw("t.two", "k1", "Erased", None)
        tx.publish_raw("t.one", "k2", "Third", json.dumps({"n": 3}))
    rows = await pool.fetch("SELECT topic, key, event_type, payload::text AS payload FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], r["event_type"]) for r in rows] == [
        ("t.one", "k1", "First"), ("t.two", "k1", "Erased"), ("t.one", "k2", "Third")]
    assert json.loads(rows[0]["payload"]) == {"n": 1, "name": "Zoë 'quoted'"}
    assert rows[1]["payload"] is None


async def test_a_transaction_that_fails_writes_no_outbox_row(pool) -> None:
    uow = UnitOfWork(SCHEMA)
    uow.pool = pool
    with pytest.raises(RuntimeError):
        async with uow.transaction() as tx:
            tx.publish_raw("t.one", "k1", "First", "{}")
            raise RuntimeError("the use case refuses")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_commit_wakes_the_relay_of_its_own_process_without_notify_or_poll(infra: Infra, pool) -> None:
    """The relay polls once a minute here and the unit of work sends at most one NOTIFY an hour: the
    second commit is published at once only because the relay is woken in-process."""
    topic = f"ingresstest.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**infra.kafka.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    relay_pool = await create_pool(Infra.dsn(SCHEMA), SCHEMA, max_size=2)  # the relay's listener and rounds
    uow = UnitOfWork(SCHEMA, notify_interval=3600)
    uow.pool = pool
    relay = OutboxRelay(relay_pool, infra.kafka, SCHEMA, CollectorRegistry(), poll_seconds=60)
    await relay.start()
    try:
        for n in (1, 2):
            async with uow.transaction() as tx:
                tx.publish_raw(topic, f"k{n}", "Thing", json.dumps({"n": n}))

            async def published(n: int = n) -> bool:
                return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == n

            await _until(published, timeout=20)  # far below the 60 s poll and the hour between NOTIFYs
        assert relay.running
    finally:
        await relay.stop()
        await relay_pool.close()


async def test_a_pool_connection_used_outside_a_transaction_of_the_unit_of_work_is_still_reset(pool) -> None:
    default = await pool.fetchval("SHOW work_mem")
    async with pool.acquire() as conn:
        await conn.execute("SET work_mem = '7MB'")  # session state: must not reach the next user
    assert await pool.fetchval("SHOW work_mem") == default
    uow = UnitOfWork(SCHEMA)
    uow.pool = pool
    async with uow.transaction() as tx:
        await tx.conn.execute("SET LOCAL work_mem = '9MB'")  # transaction-scoped: gone at the commit
        assert await tx.conn.fetchval("SHOW work_mem") == "9MB"
    async with pool.acquire() as conn:  # the same connection (max_size=1), released without a reset
        assert await conn.fetchval("SHOW work_mem") == default
        await conn.execute("LISTEN somewhere")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
