"""Test infrastructure: real Kafka, PostgreSQL and mail sink, started through the project's scripts.

Tests use their own state dir (.local/test) and ports, so `make test` and `make run` can run side by
side. Each test session starts from an empty Kafka log and a new database, and stops its Kafka,
PostgreSQL and mail sink at its end (`stop_infra`) unless KEEP_INFRA=1 (fast reruns).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from estafette.runtime.auth import Links, key_id_of
from estafette.runtime.clock import move_clock_file
from estafette.runtime.kafka import KafkaAccess
from estafette.tools import keys, regions
from estafette.tools.devserver import database_passwords, database_url, kafka_passwords
from schemas import Event, topic_name
from schemas.topics import Topic, subscription_pattern
from schemas.regions import RegionNames, RegionRecord
from services.registry import NAMES

ROOT = Path(__file__).resolve().parent.parent
#: Several test sessions on one machine (e.g. two developers' worktrees) each take their own slot:
#: ESTAFETTE_TEST_SLOT=N moves the state dir and every port, so sessions never touch each other.
#: Every fixed port stays below Linux's ephemeral range (32768-60999): there, the local end of any
#: outgoing connection (the session makes thousands) can hold the port when a server wants to bind it.
SLOT = int(os.environ.get("ESTAFETTE_TEST_SLOT", "0"))
_SHIFT = 100 * SLOT
STATE = ROOT / ".local" / (f"test-{SLOT}" if SLOT else "test")
KAFKA_PORT, KAFKA_CONTROLLER_PORT = 19092 + _SHIFT, 19093 + _SHIFT
PG_PORT = 15442 + _SHIFT
SMTP_PORT, MAIL_HTTP_PORT = 11025 + _SHIFT, 18025 + _SHIFT
DB = "estafette_test"
#: Signs participant links in the test session (ESTAFETTE_LINK_SECRET of every service).
LINK_SECRET = "test-session-link-secret"
SERVICES = NAMES
HTTP_PORTS = {name: 18001 + i + _SHIFT for i, name in enumerate(SERVICES)}
CRASH_APP_PORT = 18009 + _SHIFT
#: Ports for more instances of a service (e.g. one matching instance per region).
EXTRA_PORTS = [18011 + i + _SHIFT for i in range(8)]
assert max(KAFKA_CONTROLLER_PORT, PG_PORT, MAIL_HTTP_PORT, *HTTP_PORTS.values(), *EXTRA_PORTS) < 32768, "slot too high"

INFRA_ENV = {
    "ESTAFETTE_STATE_DIR": str(STATE),
    "KAFKA_PORT": str(KAFKA_PORT),
    "KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
    "PGPORT_ESTAFETTE": str(PG_PORT),
    "MAILSINK_SMTP_PORT": str(SMTP_PORT),
    "MAILSINK_HTTP_PORT": str(MAIL_HTTP_PORT),
    "ESTAFETTE_PYTHON": sys.executable,
}


def script(name: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, **INFRA_ENV, **(extra_env or {})}
    subprocess.run([str(ROOT / "deploy" / "local" / name), *args], env=env, check=True)


def _run(coro):  # noqa: ANN001, ANN202
    """Run a coroutine to completion from sync or async test code (in a thread of its own)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def kafka_access(principal: str = "admin") -> KafkaAccess:
    """A Kafka principal of the test broker, with the password `kafka.sh start` gave it
    (<state>/kafka/credentials.env); PLAINTEXT when the broker has none."""
    return KafkaAccess(f"127.0.0.1:{KAFKA_PORT}", principal, kafka_passwords(STATE).get(principal, ""))


def region(region_id: str, partitions: int = 4, languages: Sequence[str] = ("nl", "de", "en")) -> RegionRecord:
    """A registry entry for a test region (by default in every language)."""
    return RegionRecord(id=region_id, names=RegionNames(nl=region_id, de=region_id, en=region_id),
                        languages=list(languages), partitions=partitions)


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str = f"127.0.0.1:{KAFKA_PORT}"
    mail_api: str = f"http://127.0.0.1:{MAIL_HTTP_PORT}"

    @property
    def kafka(self) -> KafkaAccess:
        """The operator's (admin) access to the test broker."""
        return kafka_access("admin")

    def reset_relay(self) -> None:
        """Forget the national relay (registration's plan, its scheduled relay steps and the legs its
        knowledge items travelled with; reporting's legs and knowledge items), for a test that plans
        its own: the country has one relay, and tests of a session would otherwise share it. Call it
        while neither service runs."""

        async def reset() -> None:
            conn = await asyncpg.connect(self.admin_dsn())
            try:
                statements = [  # (table that must exist, statement): a fresh database has none yet
                    ("registration.knowledge_items", "UPDATE registration.knowledge_items SET leg_id = NULL"),
                    ("registration.relay_legs", "DELETE FROM registration.relay_legs"),
                    ("registration.scheduled_steps", "DELETE FROM registration.scheduled_steps WHERE kind LIKE 'relay%'"),
                    ("reporting.relay_legs", "DELETE FROM reporting.relay_legs"),
                    ("reporting.knowledge_items", "DELETE FROM reporting.knowledge_items"),
                ]
                async with conn.transaction():
                    for table, statement in statements:
                        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
                            await conn.execute(statement)
            finally:
                await conn.close()

        _run(reset())

    def add_regions(self, *records: RegionRecord) -> None:
        """Apply registry entries as `estafette regions apply` does (topics, grants, registry records)."""
        _run(regions.apply(self.kafka, list(records)))

    @staticmethod
    def dsn(service: str) -> str:
        """A service's role with the password this test instance's `postgres.sh bootstrap` gave it
        (<state>/pg/passwords.env); a role a test makes itself (e.g. crashtest) has its name as password."""
        password = database_passwords(STATE)[service] if service in SERVICES else service
        return database_url(service, password, PG_PORT, DB)

    @staticmethod
    def admin_dsn(db: str = DB) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{PG_PORT}/{db}"

    def service_env(self, service: str) -> dict[str, str]:
        """Environment for running `service` against the test infrastructure."""
        prefix = service.upper()
        password = kafka_passwords(STATE).get(service)
        return {
            f"{prefix}_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            **({f"{prefix}_KAFKA_PASSWORD": password} if password else {}),
            f"{prefix}_KAFKA_METADATA_MAX_AGE_MS": "3000",
            f"{prefix}_DATABASE_URL": self.dsn(service),
            f"{prefix}_HTTP_PORT": str(HTTP_PORTS[service]),
            f"{prefix}_OUTBOX_POLL_SECONDS": "0.2",
            "NOTIFICATIONS_SMTP_PORT": str(SMTP_PORT),
            "ESTAFETTE_LINK_SECRET": LINK_SECRET,
            # Tests open editions far ahead (2099) so that no deadline passes during a run; the rule
            # "at most five years ahead" is tested with its default (tests/integration/test_relay.py).
            "REGISTRATION_MAX_YEARS_AHEAD": "100",
            # Tests (and the fuzzer) call public routes far more often than a person would.
            "ESTAFETTE_PUBLIC_RATE_LIMIT_PER_MINUTE": "600000",
            "ESTAFETTE_PUBLIC_RATE_LIMIT_BURST": "10000",
        }

    def key(self, role: str, region: str | None = None, name: str = "test") -> str:
        """A new API key of `role` (published on the key topic, as `estafette keys create` does)."""
        _, key = _run(keys.create(self.kafka, role, region, name))  # type: ignore[arg-type]
        return key

    def callers(self) -> dict[str, dict[str, str]]:
        """The Authorization header of each kind of caller (new keys; anonymous: none)."""
        keys = {"org A": self.key("organiser", "twente"), "org B": self.key("organiser", "groningen"),
                "national": self.key("national"), "admin": self.key("admin")}
        return {"anonymous": {}, **{name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}}

    def produce(self, events: Sequence[Event]) -> None:
        """Publish `events` on their topics, keyed as the services' outboxes key them, one by one."""

        async def send() -> None:
            producer = AIOKafkaProducer(**self.kafka.client_kwargs(), enable_idempotence=True)
            await producer.start()
            try:
                for event in events:
                    await producer.send_and_wait(topic_name(event), event.model_dump_json().encode(), key=event.key.encode())
            finally:
                await producer.stop()

        _run(send())

    def revoke(self, key: str) -> None:
        key_id = key_id_of(key)
        assert key_id is not None
        _run(keys.revoke(self.kafka, key_id))

    @staticmethod
    def link(purpose: str, signup_id: str, edition_id: str, *, age_seconds: float = 0, ref: str | None = None) -> str:
        """A participant link token as the services sign them (`age_seconds` old; `ref`: what in the
        sign-up it is for, e.g. an offer id)."""
        issued = time.time() - age_seconds if age_seconds else None
        return Links(LINK_SECRET).make(purpose, signup_id, edition_id, ref=ref, issued_at=issued)


async def group_assignments(kafka: KafkaAccess, group: str) -> list[set[tuple[str, int]]]:
    """The partitions each member of consumer group `group` holds, as the broker describes the group
    (one set of (topic, partition) per member; [] for a group without members)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        members = response.groups[0][5] if response.groups else []
        found = []
        for member in members:
            raw = member[-1]  # member_assignment (bytes), the last field in every version
            decoded = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
            found.append({(tp.topic, tp.partition) for tp in decoded.partitions()} if decoded else set())
        return found
    finally:
        await admin.close()


def start_infra() -> Infra:
    """Start (or reuse) the test Kafka, PostgreSQL and mail sink; empty Kafka, new database. If one of
    them cannot start (e.g. its port is taken), the others are stopped again: the session ends with an
    error and leaves nothing running."""
    try:
        script("kafka.sh", "stop")
        shutil.rmtree(STATE / "kafka" / "data", ignore_errors=True)
        script("kafka.sh", "start")
        infra = Infra()
        # The platform's registry, as `make run` applies it (tests that need another region add it).
        asyncio.run(regions.apply(infra.kafka, regions.load()))
        script("postgres.sh", "start")
        asyncio.run(_drop_database())
        script("postgres.sh", "bootstrap", DB)
        script("mailsink.sh", "start")
        httpx.delete(f"{Infra.mail_api}/api/messages", timeout=5).raise_for_status()
    except BaseException:
        stop_infra()
        raise
    return infra


def stop_infra() -> None:
    """Stop the session's mail sink, Kafka and PostgreSQL (each script's stop is a no-op when it is
    not running); a failure to stop one does not keep the others running."""
    failed = []
    for name in ("mailsink.sh", "kafka.sh", "postgres.sh"):
        try:
            script(name, "stop")
        except subprocess.CalledProcessError as exc:
            failed.append(f"{name} stop: exit {exc.returncode}")
    if failed:
        raise RuntimeError("; ".join(failed))


async def _drop_database() -> None:
    conn = await asyncpg.connect(Infra.admin_dsn("postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    finally:
        await conn.close()


class TestClock:
    """A test clock for services started with `env` (ESTAFETTE_CLOCK_FILE): `move_to(t)` sets every such
    service's "now" to `t`, after which time runs on from there (an offset, not a frozen instant), so
    timeouts and waits keep working. Each instance has its own file: other tests' services are not moved."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime | None = None) -> None:
        STATE.mkdir(parents=True, exist_ok=True)
        self.path = STATE / f"clock-{os.getpid()}-{time.monotonic_ns()}.json"
        self.env = {"ESTAFETTE_CLOCK_FILE": str(self.path), "ESTAFETTE_ENVIRONMENT": "test"}
        if start is not None:
            self.move_to(start)

    def move_to(self, at: datetime) -> None:
        move_clock_file(self.path, offset_seconds=(at - datetime.now(UTC)).total_seconds())

    def now(self) -> datetime:
        from estafette.runtime.clock import Clock

        return Clock(file=self.path).now()


class ServiceProcess:
    """One service as a real process (`estafette serve NAME`), as `make run` starts it."""

    def __init__(
        self, infra: Infra, service: str, extra_env: dict[str, str] | None = None, *,
        port: int | None = None, label: str | None = None, part: str = "",
    ) -> None:
        """`port` and `label` (its log file's name) for a second instance of a service; `part` as
        `estafette serve --part` (e.g. notifications' "sender" alone: `make run` does that)."""
        self.service = service
        self.part = part
        port = port or HTTP_PORTS[service]
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **infra.service_env(service), f"{service.upper()}_HTTP_PORT": str(port), **(extra_env or {})}
        self.log_path = STATE / f"{label or service}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> ServiceProcess:
        """Start the process and wait until it is ready (`wait_healthy`)."""
        self.start_process()
        self.wait_healthy(timeout)
        return self

    def start_process(self) -> ServiceProcess:
        """Start the process without waiting for it."""
        STATE.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "estafette.tools.cli", "serve", self.service, *(["--part", self.part] if self.part else [])],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until the service is ready (`/readyz` 200: database, consumer groups joined with their
        assignment, outbox relay, keys and regions loaded), not merely alive (`/healthz`)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.service} exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.service} not ready within {timeout}s ({last}); log: {self.log_path}")

    def terminate(self, timeout: float = 60) -> tuple[int, float]:
        """SIGTERM; wait for the exit: (exit code, seconds from the signal to the exit)."""
        assert self.proc is not None and self.proc.poll() is None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, with no graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def services(infra: Infra, *names: str, extra_env: dict[str, str] | None = None) -> Iterator[dict[str, ServiceProcess]]:
    procs = {name: ServiceProcess(infra, name, extra_env) for name in names}
    try:
        started = [p.start() for p in procs.values()]
        yield {p.service: p for p in started}
    finally:
        for p in procs.values():
            p.stop()


def eventually(check, timeout: float = 30, interval: float = 0.2):  # noqa: ANN001, ANN201
    """Poll `check()` until it returns a truthy value (returned) or raise with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def lagging_partitions(kafka: KafkaAccess, group: str, consumed: Sequence[Topic], max_lag: int = 0) -> list[str]:
    """Partitions of the regional topics `consumed`, in every region there is now (a service's own
    subscription pattern), of which consumer group `group` has more than `max_lag` records to commit."""
    lags = await partition_lags(kafka, group, consumed)
    return [name for name, lag in lags.items() if lag > max_lag]


async def partition_lags(kafka: KafkaAccess, group: str, consumed: Sequence[Topic]) -> dict[str, int]:
    """The records consumer group `group` has yet to commit, per partition of the regional topics
    `consumed` in every region there is now (a region no instance serves any more keeps its lag)."""
    import re

    pattern = re.compile(subscription_pattern(tuple(consumed)))
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    consumer = AIOKafkaConsumer(**kafka.client_kwargs())
    await admin.start()
    await consumer.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if pattern.match(t))
        parts = [TopicPartition(d["topic"], p["partition"]) for d in await admin.describe_topics(topics) for p in d["partitions"]]
        committed = {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}
        # Assigned first: the client then asks the broker for the metadata of every topic at once.
        # Unassigned, end_offsets learns each unknown topic with a metadata round of its own plus
        # the retry back-off: 26 s for the ~250 topics a whole test session creates (0.05 s so).
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        return {f"{tp.topic}[{tp.partition}]": ends[tp] - committed.get(tp, 0) for tp in parts}
    finally:
        await consumer.stop()
        await admin.close()


def wait_caught_up(kafka: KafkaAccess, group: str, consumed: Sequence[Topic], timeout: float = 60) -> None:
    """Wait until `group` has committed every record of its regional topics (e.g. a service started
    late working through what the session's earlier tests published)."""
    eventually(lambda: not asyncio.run(lagging_partitions(kafka, group, consumed)), timeout=timeout, interval=0.3)


def wait_backlog_worked_off(kafka: KafkaAccess, group: str, consumed: Sequence[Topic], timeout: float = 300) -> None:
    """Wait until `group`'s total lag stops falling (by at most 20 records in a second), i.e. its
    consumers have worked off any backlog; with a live load, and with partitions of regions no
    instance serves any more (their lag never falls), `wait_caught_up` would wait for ever."""
    last: list[int] = []

    def settled() -> bool:
        total = sum(asyncio.run(partition_lags(kafka, group, consumed)).values())
        last.append(total)
        return len(last) >= 2 and last[-2] - last[-1] <= 20

    eventually(settled, timeout=timeout, interval=1.0)
