"""Kafka security on the real broker: SASL/SCRAM-SHA-512 only, one principal per service and per
regional pipeline, each allowed what services/registry.py declares and nothing more.

Every case is tried with the principal itself (its own password from <state>/kafka/credentials.env or
from `pipeline_credentials`), never with the super user; the cases are derived from the registry, so a
new service or topic is covered without touching this file.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    for_code,
)
from typer.testing import CliRunner

from estafette.runtime.kafka import KafkaAccess
from estafette.tools import kafka_security, regions
from estafette.tools.cli import app
from schemas.topics import NATIONAL, PARTICIPANTS, REGIONAL, SIGNUPS, Topic
from services.registry import SERVICES, ServiceSpec
from tests.support import KAFKA_PORT, STATE, Infra, kafka_access, region

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REGION_A, REGION_B = "acl-a", "acl-b"
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"


@pytest.fixture(scope="module")
def two_regions(infra: Infra) -> tuple[str, str]:
    """Two regions of their own (one partition per topic: a record is found quickly)."""
    if not infra.kafka.secured:
        pytest.fail("the test broker has no security: deploy/local/kafka.sh must start it with SASL/SCRAM")
    infra.add_regions(region(REGION_A, partitions=1), region(REGION_B, partitions=1))
    return REGION_A, REGION_B


@pytest.fixture(autouse=True)
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs every refused request at ERROR; here refusals are what we test for."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


# --- helpers: one principal doing one thing ---------------------------------------------------
def name(topic: Topic, region_id: str) -> str:
    return topic.name_in(region_id) if topic.regional else topic.name


async def produce(access: KafkaAccess, topic: str, value: bytes | None = b"{}", key: bytes = b"acl-test") -> None:
    producer = AIOKafkaProducer(**access.client_kwargs(), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read(
    access: KafkaAccess, topic: str, group: str | None = None, until: bytes | None = None, timeout: float = 30
) -> list[bytes]:
    """Subscribe to `topic` (in consumer group `group`, or without one as the services read the
    topics they read whole) and read from the beginning until the record with value `until` arrived
    (without `until`: up to the end offsets); the broker's refusal surfaces as aiokafka's
    authorization error."""
    consumer = AIOKafkaConsumer(
        topic, **access.client_kwargs(), group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    values: list[bytes] = []
    try:
        await consumer.start()
        async with asyncio.timeout(timeout):
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                values += [r.value or b"" for records in batches.values() for r in records]
                if until is not None:
                    if until in values:
                        return values
                    continue
                assigned = consumer.assignment()
                if assigned:
                    ends = await consumer.end_offsets(list(assigned))
                    if all([await consumer.position(tp) >= ends[tp] for tp in assigned]):
                        return values
    finally:
        await consumer.stop()


async def create_topic(access: KafkaAccess, topic: str) -> type[Exception] | None:
    """The error the broker answers to `access` creating `topic` (None: created)."""
    admin = AIOKafkaAdminClient(**access.client_kwargs(), request_timeout_ms=10_000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        (error_code,) = [code for _, code, *_ in response.topic_errors]
        return None if error_code == 0 else for_code(error_code)
    finally:
        await admin.close()


async def topic_names(access: KafkaAccess) -> set[str]:
    admin = AIOKafkaAdminClient(**access.client_kwargs())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def marker() -> bytes:
    return f'{{"acl-test": "{uuid.uuid4().hex}"}}'.encode()


# --- a regional pipeline ----------------------------------------------------------------------
async def test_a_pipeline_reads_its_region_only(infra: Infra, two_regions: tuple[str, str]) -> None:
    a, b = two_regions
    username, password = await kafka_security.pipeline_credentials(infra.kafka, b)
    assert username == f"pipeline-{b}"
    pipeline = KafkaAccess(BOOTSTRAP, username, password)
    group = f"pipeline-{b}"

    # region B's topics: a record the admin produced there is read back, in its own groups
    mine = marker()
    await produce(infra.kafka, PARTICIPANTS.name_in(b), mine)
    assert mine in await read(pipeline, PARTICIPANTS.name_in(b), group, until=mine)
    other = marker()
    await produce(infra.kafka, SIGNUPS.name_in(b), other)
    assert other in await read(pipeline, SIGNUPS.name_in(b), f"{group}.signups", until=other)

    # region A's topics: refused, every one of them (even with a record in it)
    await produce(infra.kafka, PARTICIPANTS.name_in(a), marker())
    for topic in REGIONAL:
        with pytest.raises(TopicAuthorizationFailedError):
            await read(pipeline, topic.name_in(a))
    # nor national topics, nor writing, nor another group, nor creating a topic
    for topic in NATIONAL:
        with pytest.raises(TopicAuthorizationFailedError):
            await read(pipeline, topic.name)
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(pipeline, PARTICIPANTS.name_in(b))
    with pytest.raises(GroupAuthorizationFailedError):
        await read(pipeline, PARTICIPANTS.name_in(b), "notifications")
    with pytest.raises(GroupAuthorizationFailedError):  # another region's pipeline group
        await read(pipeline, PARTICIPANTS.name_in(b), f"pipeline-{a}")
    assert await create_topic(pipeline, f"estafette.{b}.extra.v2") is TopicAuthorizationFailedError

    # new credentials replace the old ones
    _, rotated = await kafka_security.pipeline_credentials(infra.kafka, b)
    assert rotated != password
    await login(KafkaAccess(BOOTSTRAP, username, rotated))
    await until_refused(pipeline)


# --- clients without (the right) credentials --------------------------------------------------
async def login(access: KafkaAccess) -> None:
    """Open one connection and authenticate (SaslAuthenticationFailed on a wrong password)."""
    kwargs = access.client_kwargs()
    host, _, port = kwargs.pop("bootstrap_servers").partition(":")
    conn = await create_conn(host, int(port), request_timeout_ms=10_000, **kwargs)
    conn.close()


async def until_refused(access: KafkaAccess, timeout: float = 15) -> None:
    """Poll until the broker refuses `access` (a replaced password stops working once the broker has
    applied the change)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await login(access)
            except SaslAuthenticationFailed:
                return
            await asyncio.sleep(0.05)


async def start_admin(access: KafkaAccess) -> None:
    admin = AIOKafkaAdminClient(**access.client_kwargs(), request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


async def test_a_client_without_credentials_is_refused(infra: Infra) -> None:
    matching = kafka_access("matching")
    await login(matching)  # the same path with the right password works
    await start_admin(matching)

    with pytest.raises(KafkaConnectionError):  # PLAINTEXT to the SASL listener: the broker hangs up
        await start_admin(KafkaAccess(BOOTSTRAP))
    with pytest.raises(SaslAuthenticationFailed):
        await login(KafkaAccess(BOOTSTRAP, "matching", matching.password + "x"))
    with pytest.raises(SaslAuthenticationFailed):
        await login(KafkaAccess(BOOTSTRAP, "nobody", matching.password))
    with pytest.raises(KafkaConnectionError):  # a client that cannot log in gets no answer at all
        await start_admin(KafkaAccess(BOOTSTRAP, "matching", "wrong"))


# --- each service, one by one -----------------------------------------------------------------
def national_reads(spec: ServiceSpec) -> list[Topic]:
    return [*kafka_security.EVERY_SERVICE_READS, *(t for t in spec.reads if not t.regional)]


def readable(spec: ServiceSpec) -> list[Topic]:
    return [t for t in spec.reads if t.regional] + national_reads(spec)


def unreadable(spec: ServiceSpec) -> list[Topic]:
    allowed = set(readable(spec))
    return [t for t in (*REGIONAL, *NATIONAL) if t not in allowed]


def unwritable(spec: ServiceSpec) -> list[Topic]:
    return [t for t in (*REGIONAL, *NATIONAL) if t not in spec.writes]


def test_the_cases_cover_what_the_issue_names() -> None:
    """The derived cases include the refusals the issue names (so the derivation is not vacuous)."""
    by_name = {s.name: s for s in SERVICES}
    assert PARTICIPANTS in unreadable(by_name["matching"])
    assert PARTICIPANTS in unreadable(by_name["reporting"])
    assert SIGNUPS in unreadable(by_name["registration"])
    assert all(unwritable(s) for s in SERVICES)


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
async def test_each_service_does_its_job_and_nothing_more(infra: Infra, two_regions: tuple[str, str], spec: ServiceSpec) -> None:
    a, _ = two_regions
    me = kafka_access(spec.name)
    assert me.secured and me.username == spec.name
    group = f"{spec.name}.{a}.acl-{uuid.uuid4().hex[:6]}"

    # reads: a record the admin put on each regional topic it reads comes back (in a consumer group
    # of its own, as the service consumes); the national ones are read to their end, without a group
    for topic in readable(spec):
        if topic.regional:
            value = marker()
            await produce(infra.kafka, topic.name_in(a), value)
            assert value in await read(me, topic.name_in(a), group, until=value), topic.name_in(a)
        else:
            await read(me, topic.name)
    if spec.reads:  # its consumer groups: `<name>` (all regions, national topics) and `<name>.<region>`
        await read(me, name(spec.reads[0], a), spec.name)
        await read(me, name(spec.reads[0], a), f"{spec.name}.{a}")
    # writes: each topic it writes takes a record
    for topic in spec.writes:
        await produce(me, name(topic, a), marker())

    # and nothing more: no other topic, no other service's consumer group, no group if it consumes nothing
    for topic in unreadable(spec):
        with pytest.raises(TopicAuthorizationFailedError):
            await read(me, name(topic, a))
    for topic in unwritable(spec):
        with pytest.raises(TopicAuthorizationFailedError):
            await produce(me, name(topic, a))
    foreign_groups = [g for other in SERVICES if other.name != spec.name and other.reads for g in (other.name, f"{other.name}.{a}")]
    if not spec.reads:
        foreign_groups += [spec.name, f"{spec.name}.{a}"]
    for foreign in foreign_groups:
        with pytest.raises(GroupAuthorizationFailedError):
            await read(me, name(readable(spec)[0], a), foreign)
    new_topic = f"estafette.{a}.{spec.name}-made.v2"
    assert await create_topic(me, new_topic) is TopicAuthorizationFailedError
    assert new_topic not in await topic_names(infra.kafka)


# --- the operator command ---------------------------------------------------------------------
def operator_env(infra: Infra) -> dict[str, str]:
    return {
        "ESTAFETTE_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "ESTAFETTE_KAFKA_USERNAME": "admin",
        "ESTAFETTE_KAFKA_PASSWORD": infra.kafka.password,
    }


def properties(output: str) -> dict[str, str]:
    lines = (line.partition("=") for line in output.splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, sep, value in lines if sep and "." in key}


def test_kafka_credentials_prints_working_credentials(infra: Infra, two_regions: tuple[str, str]) -> None:
    a, b = two_regions
    runner = CliRunner()
    result = runner.invoke(app, ["kafka", "credentials", "--region", a], env=operator_env(infra))
    assert result.exit_code == 0, result.output
    assert f"principal: User:pipeline-{a}" in result.output
    config = properties(result.output)
    assert config["bootstrap.servers"] == BOOTSTRAP
    assert config["security.protocol"] == "SASL_PLAINTEXT" and config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert f'username="pipeline-{a}"' in config["sasl.jaas.config"]
    password = config["sasl.jaas.config"].split('password="', 1)[1].split('"', 1)[0]
    assert f"password:  {password}" in result.output
    assert f"estafette.{a}.*" in result.output and f"pipeline-{a}." in result.output

    pipeline = KafkaAccess(config["bootstrap.servers"], f"pipeline-{a}", password)
    value = marker()

    async def check() -> None:
        await produce(infra.kafka, PARTICIPANTS.name_in(a), value)
        assert value in await read(pipeline, PARTICIPANTS.name_in(a), f"pipeline-{a}", until=value)
        with pytest.raises(TopicAuthorizationFailedError):
            await read(pipeline, PARTICIPANTS.name_in(b), f"pipeline-{a}")

    asyncio.run(check())

    quiet = runner.invoke(app, ["kafka", "credentials", "--region", a, "--quiet"], env=operator_env(infra))
    assert quiet.exit_code == 0, quiet.output
    (new_password,) = quiet.stdout.split()
    assert new_password != password
    asyncio.run(login(KafkaAccess(BOOTSTRAP, f"pipeline-{a}", new_password)))

    listed = runner.invoke(app, ["kafka", "acls", "--principal", f"pipeline-{a}"], env=operator_env(infra))
    assert listed.exit_code == 0, listed.output
    shown = [line.split() for line in listed.stdout.splitlines()]
    assert {(row[2], row[4]) for row in shown} == {("READ", f"estafette.{a}."), ("DESCRIBE", f"estafette.{a}."),
                                                   ("READ", f"pipeline-{a}"), ("READ", f"pipeline-{a}.")}
    assert all(row[0] == f"User:pipeline-{a}" for row in shown)


def test_kafka_credentials_errors_are_one_line(infra: Infra, two_regions: tuple[str, str]) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["kafka", "credentials", "--region", "atlantis"], env=operator_env(infra))
    assert unknown.exit_code == 1
    assert "atlantis" in unknown.stderr and "not in the registry" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and "Traceback" not in unknown.output

    closed_port = str(KAFKA_PORT + 7)  # nothing listens there
    away = runner.invoke(app, ["kafka", "credentials", "--region", "twente", "--kafka", f"127.0.0.1:{closed_port}"],
                         env=operator_env(infra))
    assert away.exit_code == 1
    assert "cannot reach Kafka" in away.stderr and len(away.stderr.strip().splitlines()) == 1

    wrong = runner.invoke(app, ["kafka", "acls"], env={**operator_env(infra), "ESTAFETTE_KAFKA_PASSWORD": "wrong"})
    assert wrong.exit_code == 1 and len(wrong.stderr.strip().splitlines()) == 1, wrong.output


def test_setup_is_idempotent_and_creates_the_service_users(infra: Infra) -> None:
    credentials = STATE / "kafka" / "credentials.env"
    result = CliRunner().invoke(app, ["kafka", "setup", "--credentials", str(credentials)], env=operator_env(infra))
    assert result.exit_code == 0, result.output
    users = asyncio.run(kafka_security.describe_users(infra.kafka))
    for spec in SERVICES:
        assert users.get(spec.name) == ["SCRAM-SHA-512"]
    bindings = asyncio.run(kafka_security.describe_acls(infra.kafka))
    assert set(kafka_security.national_acls()) <= set(bindings)
    assert set(kafka_security.region_acls("twente")) <= set(bindings)  # by `regions apply` at session start


async def test_regions_apply_grants_a_new_region(infra: Infra) -> None:
    """A region added at run time is granted to the services by `regions apply` (its grant_region)."""
    new = f"acl-{uuid.uuid4().hex[:6]}"
    await regions.apply(infra.kafka, [region(new, partitions=1)])
    found = set(await kafka_security.describe_acls(infra.kafka))
    granted = set(kafka_security.region_acls(new)) | set(kafka_security.pipeline_acls(new))
    assert granted <= found
    assert {acl for acl in found if new in acl.name} == granted  # and nothing else names it
    assert await kafka_security.revoke_region(infra.kafka, new) == len(granted)
    assert not {acl for acl in await kafka_security.describe_acls(infra.kafka) if new in acl.name}


async def test_regions_apply_without_topics_and_grants_only_publishes_the_region(infra: Infra) -> None:
    """On Kubernetes Strimzi makes topics and ACLs (the Helm chart's KafkaTopic and KafkaUser): the chart's
    Job runs `regions apply --no-topics --no-grants`, which only publishes the registry entry."""
    new = f"strimzi-{uuid.uuid4().hex[:6]}"
    created = await regions.apply(infra.kafka, [region(new, partitions=1)], topics=False, grants=False)
    assert created == {new: []}
    admin = AIOKafkaAdminClient(**infra.kafka.client_kwargs())
    await admin.start()
    try:
        assert not {t for t in await admin.list_topics() if new in t}
    finally:
        await admin.close()
    assert not {acl for acl in await kafka_security.describe_acls(infra.kafka) if new in acl.name}
    assert new in await regions.published(infra.kafka)
    await regions.remove(infra.kafka, new)
