"""The local infrastructure under deploy/local: real Kafka, PostgreSQL and mail sink.

Runs against the test suite's own instance (state dir and ports from tests/support.py, so a
developer's `make run` instance is left alone). Each fixture starts its piece through the project's
scripts; `start` is idempotent, so an instance the session already started is reused as it is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.registry import NAMES
from tests.support import DB, INFRA_ENV, Infra, KAFKA_PORT, MAIL_HTTP_PORT, PG_PORT, SMTP_PORT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
SERVICES = NAMES
KAFKA = f"127.0.0.1:{KAFKA_PORT}"
SINK = f"http://127.0.0.1:{MAIL_HTTP_PORT}"


def script(name: str, *args: str) -> str:
    """Run deploy/local/NAME with ARGS on the test instance; fail the test with its output if it fails."""
    proc = subprocess.run(
        [str(LOCAL / name), *args],
        cwd=ROOT, env={**os.environ, **INFRA_ENV}, capture_output=True, text=True, timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def kafka() -> str:
    script("kafka.sh", "start")
    return KAFKA


@pytest.fixture(scope="module")
def postgres() -> int:
    script("postgres.sh", "start")
    script("postgres.sh", "bootstrap", DB)
    return PG_PORT


@pytest.fixture(scope="module")
def mailsink() -> str:
    script("mailsink.sh", "start")
    return SINK


async def test_kafka_produce_and_consume(kafka: str) -> None:
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello estafette", key=b"k1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka, group_id=f"{topic}-g", auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k1", b"hello estafette")
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_kafka_does_not_auto_create_topics(kafka: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, request_timeout_ms=1500)
    await producer.start()
    try:
        with pytest.raises(Exception):
            await asyncio.wait_for(producer.send_and_wait(f"missing-{uuid.uuid4().hex[:8]}", b"x"), 10)
    finally:
        await producer.stop()


async def test_postgres_each_service_owns_only_its_schema(postgres: int) -> None:
    for svc in SERVICES:
        conn = await asyncpg.connect(Infra.dsn(svc))  # the role's own password (postgres.sh keeps them)
        try:
            assert await conn.fetchval("SHOW search_path") == svc
            tx = conn.transaction()
            await tx.start()
            try:  # DDL in the own schema works (rolled back: leaves nothing behind)
                await conn.execute("CREATE TABLE infra_probe (id int PRIMARY KEY)")
                await conn.execute("INSERT INTO infra_probe VALUES (1)")
                assert await conn.fetchval(f"SELECT count(*) FROM {svc}.infra_probe") == 1
            finally:
                await tx.rollback()
            for other in SERVICES:
                if other == svc:
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
                    await conn.fetch(f"SELECT * FROM {other}.anything")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"CREATE TABLE {other}.intruder (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.intruder (id int)")
        finally:
            await conn.close()


async def test_postgres_rejects_wrong_password(postgres: int) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://matching:wrong@127.0.0.1:{postgres}/{DB}")


async def test_mailsink_catches_and_lists_a_message(mailsink: str) -> None:
    rcpt = f"infra-{uuid.uuid4().hex[:8]}@example.test"
    msg = EmailMessage()
    msg["From"] = "Estafette <noreply@estafette.test>"
    msg["To"] = f"Zoë Test <{rcpt}>"
    msg["Subject"] = "Bienvenue à Estafette"
    msg.set_content("Bonjour Zoë")
    msg.add_alternative("<p>Bonjour <b>Zoë</b></p>", subtype="html")
    msg["Content-Language"] = "fr"
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=SMTP_PORT)

    async with httpx.AsyncClient(base_url=mailsink) as client:
        found = (await client.get("/api/messages", params={"to": rcpt})).raise_for_status().json()
        assert len(found) == 1
        m = found[0]
        assert m["to"] == [rcpt]
        assert m["subject"] == "Bienvenue à Estafette"
        assert m["text"].strip() == "Bonjour Zoë"
        assert "<b>Zoë</b>" in m["html"]
        assert m["headers"]["Content-Language"] == "fr"
        one = (await client.get(f"/api/messages/{m['id']}")).raise_for_status().json()
        assert one["id"] == m["id"] and one["from"] == "Estafette <noreply@estafette.test>"
        page = (await client.get("/")).raise_for_status().text
        assert "Bienvenue à Estafette" in page


async def test_mailsink_simulates_hard_and_soft_failures(mailsink: str) -> None:
    msg = EmailMessage()
    msg["From"] = "noreply@estafette.test"
    msg["Subject"] = "should not arrive"
    msg.set_content("x")
    for rcpt, code in (("bounce-x@example.test", 550), ("softfail.y@example.test", 451)):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as err:
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=SMTP_PORT, recipients=[rcpt])
        assert err.value.recipients[0].code == code
    async with httpx.AsyncClient(base_url=mailsink) as client:
        for rcpt in ("bounce-x@example.test", "softfail.y@example.test"):
            assert (await client.get("/api/messages", params={"to": rcpt})).json() == []
