"""Creating topics (an operator's job: services' Kafka principals may not create topics).

National topics are created by `estafette kafka setup`; a region's topics by `estafette regions
apply`, with the partitions and retention its registry entry gives (schemas/regions.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from estafette.runtime.kafka import KafkaAccess
from schemas.regions import RegionRecord
from schemas.topics import NATIONAL, REGIONAL


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


def national_specs() -> list[TopicSpec]:
    return [
        TopicSpec(t.name, t.partitions, {"cleanup.policy": t.cleanup_policy, "retention.ms": str(t.retention_ms)})
        for t in NATIONAL
    ]


def region_specs(region: RegionRecord) -> list[TopicSpec]:
    """The region's topics: its partitions for each; its retention for event topics (a compacted
    topic keeps every key's latest record for as long as the key lives)."""
    return [
        TopicSpec(
            t.name_in(region.id),
            region.partitions,
            {"cleanup.policy": t.cleanup_policy, "retention.ms": str(-1 if t.compacted() else region.retention_ms)},
        )
        for t in REGIONAL
    ]


async def ensure_topics(kafka: KafkaAccess, specs: list[TopicSpec], replication: int = 1,
                        min_insync_replicas: int | None = None) -> list[str]:
    """Create the topics of `specs` that do not exist yet (`replication` copies; on a cluster also
    `min_insync_replicas`); return the names created."""
    extra = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication, topic_configs=s.configs | extra)
                     for s in missing]
                )
            except TopicAlreadyExistsError:  # created by another tool at the same moment
                pass
        return [s.name for s in missing]
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaAccess, names: list[str]) -> list[str]:
    """Delete those of `names` that exist; return the names deleted."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


async def read_compacted(kafka: KafkaAccess, topic: str, timeout: float = 10.0) -> dict[bytes, bytes]:
    """A compacted topic read from its beginning to its end: each key's latest value (a key whose
    latest record is a tombstone is left out)."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes] = {}
        async with asyncio.timeout(timeout):
            # (a list: `await` in a generator expression would make an async generator)
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for message in batch:
                        if message.value is None:
                            latest.pop(message.key or b"", None)
                        else:
                            latest[message.key or b""] = message.value
        return latest
    finally:
        await consumer.stop()


async def publish_records(kafka: KafkaAccess, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    """Publish (key, value) records on a compacted topic, in order (a value None is a tombstone)."""
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()
