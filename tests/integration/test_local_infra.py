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
from aiokafka.errors import KafkaConnectionError

from estafette.runtime.kafka import KafkaAccess
from estafette.tools import kafka_security
from estafette.tools.devserver import kafka_passwords
from services.registry import NAMES
from tests.support import (
    DB, INFRA_ENV, KAFKA_CONTROLLER_PORT, KAFKA_PORT, MAIL_HTTP_PORT, PG_PORT, SMTP_PORT, STATE, Infra, kafka_access,
)

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
def kafka() -> KafkaAccess:
    """The test broker, as its admin principal (the broker takes SASL/SCRAM-SHA-512 clients only)."""
    script("kafka.sh", "start")
    return kafka_access("admin")


@pytest.fixture(scope="module")
def postgres() -> int:
    script("postgres.sh", "start")
    script("postgres.sh", "bootstrap", DB)
    return PG_PORT


@pytest.fixture(scope="module")
def mailsink() -> str:
    script("mailsink.sh", "start")
    return SINK


async def test_kafka_produce_and_consume(kafka: KafkaAccess) -> None:
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello estafette", key=b"k1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **kafka.client_kwargs(), group_id=f"{topic}-g", auto_offset_reset="earliest")
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k1", b"hello estafette")
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_kafka_does_not_auto_create_topics(kafka: KafkaAccess) -> None:
    producer = AIOKafkaProducer(**kafka.client_kwargs(), request_timeout_ms=1500)
    await producer.start()
    try:
        with pytest.raises(Exception):
            await asyncio.wait_for(producer.send_and_wait(f"missing-{uuid.uuid4().hex[:8]}", b"x"), 10)
    finally:
        await producer.stop()


def test_kafka_passwords_are_made_once_and_kept_private(kafka: KafkaAccess) -> None:
    creds = STATE / "kafka" / "credentials.env"
    lines = [line for line in creds.read_text().splitlines() if not line.startswith("#")]
    assert [line.split("=", 1)[0] for line in lines] == [f"{p.upper()}_KAFKA_PASSWORD" for p in ("admin", *NAMES)]
    passwords = kafka_passwords(STATE)
    assert set(passwords) == {"admin", *NAMES}
    assert all(len(p) == 48 and int(p, 16) >= 0 for p in passwords.values())  # 24 random bytes, hex
    assert len(set(passwords.values())) == len(passwords)
    for private in (creds, STATE / "kafka" / "server.properties", STATE / "kafka" / "admin.properties"):
        assert private.stat().st_mode & 0o777 == 0o600, private
    # no password on the broker's command line
    pid = (STATE / "kafka" / "kafka.pid").read_text().strip()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert "kafka.Kafka" in cmdline and not any(p in cmdline for p in passwords.values())


async def test_kafka_listeners_refuse_clients_without_credentials(kafka: KafkaAccess) -> None:
    async def reach(access: KafkaAccess) -> None:
        admin = AIOKafkaAdminClient(**access.client_kwargs(), request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    await reach(kafka)  # admin with SCRAM on the client listener: the positive control
    controller = f"127.0.0.1:{KAFKA_CONTROLLER_PORT}"
    for refused in (
        KafkaAccess(KAFKA),  # PLAINTEXT
        KafkaAccess(KAFKA, "admin", "not-the-password"),
        KafkaAccess(controller),  # the controller listener: PLAINTEXT ...
        KafkaAccess(controller, "admin", kafka.password),  # ... and SCRAM (it takes PLAIN only)
    ):
        with pytest.raises(KafkaConnectionError):
            await reach(refused)


def test_kafka_restart_restores_a_lost_admin_credential(kafka: KafkaAccess) -> None:
    """A data dir whose admin SCRAM credential is not the password of credentials.env (formatted by an
    older kafka.sh without security, or credentials.env replaced) is repaired by the next start."""
    creds = STATE / "kafka" / "credentials.env"
    before = creds.read_text()
    asyncio.run(kafka_security.upsert_users(kafka, {"admin": uuid.uuid4().hex}))  # admin's password is now another one
    asyncio.run(_until_refused(kafka))
    script("kafka.sh", "stop")
    out = script("kafka.sh", "start")
    assert "restoring admin's SCRAM credential" in out and "setup done" in out
    assert creds.read_text() == before  # the passwords of a state dir never change
    assert asyncio.run(kafka_security.describe_users(kafka))["admin"] == ["SCRAM-SHA-512"]
    assert "already running" in script("kafka.sh", "start")


async def _until_refused(access: KafkaAccess) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed

    kwargs = {k: v for k, v in access.client_kwargs().items() if k != "bootstrap_servers"}
    async with asyncio.timeout(15):
        while True:
            try:
                conn = await create_conn("127.0.0.1", KAFKA_PORT, **kwargs)
            except SaslAuthenticationFailed:
                return
            conn.close()
            await asyncio.sleep(0.05)


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
