"""Crash safety on the real broker and database.

1. A consumer killed after its database commit and before its offset commit gets the records again;
   the inbox makes the redelivery a no-op: every event has its effect exactly once.
2. An outbox row written while Kafka is down is published once Kafka is back.
3. A record that can never be handled is dead-lettered; the records around it are still handled.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from estafette.runtime.consumer import CRASH_EXIT_CODE
from schemas import FeedbackSubmitted, decode_event
from schemas.topics import DEAD_LETTERS, FEEDBACK, SIGNUPS
from tests.support import CRASH_APP_PORT, DB, ROOT, STATE, Infra, ServiceProcess, eventually, kafka_access, script

pytestmark = pytest.mark.integration
CRASH_DSN = Infra.dsn("crashtest")
REGION = "twente"
FEEDBACK_TOPIC = FEEDBACK.name_in(REGION)


async def _ensure_crashtest_schema() -> None:
    conn = await asyncpg.connect(Infra.admin_dsn())
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'crashtest'"):
            await conn.execute("CREATE ROLE crashtest LOGIN PASSWORD 'crashtest'")
        await conn.execute(f"GRANT CONNECT ON DATABASE {DB} TO crashtest")
        await conn.execute("DROP SCHEMA IF EXISTS crashtest CASCADE")
        await conn.execute("CREATE SCHEMA crashtest AUTHORIZATION crashtest")
    finally:
        await conn.close()


async def _produce(events: list[FeedbackSubmitted | tuple[bytes, bytes | None]]) -> None:
    """Events, or raw (key, value) records (a value None is a tombstone)."""
    producer = AIOKafkaProducer(**kafka_access().client_kwargs(), enable_idempotence=True)
    await producer.start()
    try:
        for e in events:
            key, value = e if isinstance(e, tuple) else (e.key.encode(), e.model_dump_json().encode())
            # with the header the outbox relay sets (FastStream's own decoder would trust it)
            await producer.send_and_wait(FEEDBACK_TOPIC, value, key=key, headers=[("content-type", b"application/json")])
    finally:
        await producer.stop()


async def _committed_and_end(group: str, topic: str) -> tuple[int, int]:
    admin = AIOKafkaAdminClient(**kafka_access().client_kwargs())
    consumer = AIOKafkaConsumer(**kafka_access().client_kwargs())
    await admin.start()
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        committed = sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset >= 0)
        (described,) = await admin.describe_topics([topic])
        parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        end = sum((await consumer.end_offsets(parts)).values())
        return committed, end
    finally:
        await consumer.stop()
        await admin.close()


async def _effects() -> list[asyncpg.Record]:
    conn = await asyncpg.connect(CRASH_DSN)
    try:
        return await conn.fetch("SELECT event_id, payload FROM crashtest.effect_log ORDER BY seq")
    finally:
        await conn.close()


def _crash_app(infra: Infra, **env: str) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        "CRASHTEST_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        # A test consumer, not a service: no principal of its own, so it uses the operator's.
        "CRASHTEST_KAFKA_USERNAME": infra.kafka.username,
        "CRASHTEST_KAFKA_PASSWORD": infra.kafka.password,
        "CRASHTEST_DATABASE_URL": CRASH_DSN,
        "CRASHTEST_HTTP_PORT": str(CRASH_APP_PORT),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    log = (STATE / "crashtest.log").open("ab")
    return subprocess.Popen([sys.executable, str(ROOT / "tests/integration/crash_app.py")], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _feedback(n: int, tag: str, learned: str = "") -> list[FeedbackSubmitted]:
    return [
        FeedbackSubmitted(region=REGION, edition=f"crash-{tag}", feedback_id=f"f-{tag}-{i}", signup_id=f"s-{i}", offer_id="o-1", rating=4, learned=learned)
        for i in range(n)
    ]


def test_consumer_killed_between_db_commit_and_offset_commit_has_its_effect_exactly_once(infra: Infra) -> None:
    asyncio.run(_ensure_crashtest_schema())
    events = _feedback(20, "a")
    asyncio.run(_produce(events))

    crashing = _crash_app(infra, CRASHTEST_FAILPOINTS="crash_after_commit")
    assert crashing.wait(60) == CRASH_EXIT_CODE  # it handled a batch, committed to Postgres, then died

    handled_before_crash = asyncio.run(_effects())
    assert len(handled_before_crash) >= 1
    committed, end = asyncio.run(_committed_and_end("crashtest", FEEDBACK_TOPIC))
    assert committed == 0 and end >= len(events)  # ... and the offsets were never committed

    app = _crash_app(infra)
    try:
        def caught_up() -> bool:
            committed, end = asyncio.run(_committed_and_end("crashtest", FEEDBACK_TOPIC))
            return committed == end

        eventually(caught_up, timeout=60)
        effects = asyncio.run(_effects())
        # The topic may hold other tests' feedback too (it is a region's real feedback topic): ours
        # each had its effect exactly once.
        ours = {str(e.event_id) for e in events}
        assert sorted(str(r["event_id"]) for r in effects if str(r["event_id"]) in ours) == sorted(ours)
        metrics = httpx.get(f"http://127.0.0.1:{CRASH_APP_PORT}/metrics", timeout=5).text
        duplicates = [line for line in metrics.splitlines() if line.startswith('events_duplicate_total{consumer="crashtest.feedback"}')]
        assert duplicates and float(duplicates[0].split()[-1]) == len(handled_before_crash)  # redelivered, skipped
    finally:
        app.terminate()
        app.wait(20)


def test_poison_record_is_dead_lettered_and_the_rest_are_handled(infra: Infra) -> None:
    asyncio.run(_ensure_crashtest_schema())
    good_before, poison, good_after = _feedback(3, "b1"), _feedback(1, "b2", learned="poison"), _feedback(3, "b3")
    # Also a value that is not JSON (dead-lettered) and a tombstone (no value: nothing to handle here),
    # on the partition of the good events around them.
    garbage, tombstone = (b"f-b1-0", b"\xff not json"), (b"f-b1-0", None)
    app = _crash_app(infra)
    try:
        eventually(lambda: _healthy(f"http://127.0.0.1:{CRASH_APP_PORT}"), timeout=60)
        asyncio.run(_produce([*good_before, garbage, tombstone, *poison, *good_after]))
        wanted = {str(e.event_id) for e in good_before + good_after}
        eventually(lambda: wanted <= {str(r["event_id"]) for r in asyncio.run(_effects())}, timeout=60)

        async def dead_letters() -> list[dict]:
            conn = await asyncpg.connect(CRASH_DSN)
            try:
                rows = await conn.fetch("SELECT error, value FROM crashtest.dead_letters")
            finally:
                await conn.close()
            return [{"error": r["error"], "value": r["value"]} for r in rows]

        letters = eventually(lambda: len(asyncio.run(dead_letters())) == 2 and asyncio.run(dead_letters()), timeout=30)
        by_error = {("never be handled" in d["error"]): d for d in letters}
        assert json.loads(by_error[True]["value"])["event_id"] == str(poison[0].event_id)
        assert by_error[False]["value"] == garbage[1] and by_error[False]["error"].startswith("cannot decode")
        assert len(asyncio.run(_effects())) == len(wanted)
    finally:
        app.terminate()
        app.wait(20)

    async def dead_letter_on_topic() -> dict:
        # the region's own dead-letter topic: a region's records never leave it
        consumer = AIOKafkaConsumer(DEAD_LETTERS.name_in(REGION), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
            return json.loads([m for msgs in batch.values() for m in msgs][-1].value)
        finally:
            await consumer.stop()

    letter = asyncio.run(dead_letter_on_topic())
    assert letter["consumer"] == "crashtest.feedback" and letter["topic"] == FEEDBACK_TOPIC


def test_outbox_row_written_while_kafka_is_down_is_published_when_kafka_is_back(infra: Infra) -> None:
    registration = ServiceProcess(infra, "registration").start()
    edition = f"kd-{uuid.uuid4().hex[:8]}"
    try:
        api = registration.url
        admin = {"Authorization": f"Bearer {infra.key('admin')}"}
        httpx.post(f"{api}/editions", headers=admin, json={"id": edition, "region": "twente", "name": "Kafka down", "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"}, timeout=10).raise_for_status()
        httpx.post(f"{api}/editions/{edition}/offers", headers=admin, json={"id": f"{edition}-o1", "host_org": "org-a", "title": "Visit", "date": "2099-05-02", "capacity": 5}, timeout=10).raise_for_status()

        script("kafka.sh", "stop")
        try:
            assert httpx.get(f"{api}/healthz", timeout=10).status_code == 503
            signup = httpx.post(f"{api}/editions/{edition}/signups", json={"org": "org-b", "name": "Bea", "email": "bea@example.org", "choices": [f"{edition}-o1"], "consent": True}, timeout=10)
            assert signup.status_code == 201, signup.text  # accepted: it only needs the database
            signup_id = signup.json()["signup_id"]

            async def unpublished() -> list[str]:
                conn = await asyncpg.connect(Infra.dsn("registration"))
                try:
                    rows = await conn.fetch("SELECT event_type FROM registration.outbox WHERE published_at IS NULL AND key = $1", signup_id)
                    return sorted(r["event_type"] for r in rows)
                finally:
                    await conn.close()

            time.sleep(2)
            assert asyncio.run(unpublished()) == ["ParticipantRegistered", "SignupSubmitted"]
        finally:
            script("kafka.sh", "start")

        eventually(lambda: asyncio.run(unpublished()) == [], timeout=60)

        async def find_signup_event() -> list:
            consumer = AIOKafkaConsumer(SIGNUPS.name_in("twente"), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
            await consumer.start()
            try:
                found, deadline = [], time.monotonic() + 20
                while not found and time.monotonic() < deadline:
                    for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                        found += [decode_event(m.value) for m in msgs if m.key == signup_id.encode()]
                return found
            finally:
                await consumer.stop()

        events = asyncio.run(find_signup_event())
        assert [e.event_type for e in events] == ["SignupSubmitted"]
        registration.wait_healthy(30)
    finally:
        registration.stop()
