"""A compacted topic read whole into memory and kept current (the API keys, the region registry).

The reader has no consumer group: it assigns every partition, reads from the beginning, sets `ready`
once it has reached the end offsets seen at start, and then follows new records (polling every
`poll_ms`). Each record is handed to `apply(key, value)`; a tombstone has `value` None. While Kafka is
away it keeps what it has and reconnects with back-off (logged once: the first failure, then the
recovery).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from estafette.runtime.kafka import KafkaAccess
from estafette.runtime.loops import pause

log = structlog.get_logger(__name__)

Apply = Callable[[bytes | None, bytes | None], None]


class CompactedReader:
    def __init__(self, kafka: KafkaAccess, topic: str, apply: Apply, *, what: str, poll_ms: int = 500) -> None:
        self._kafka = kafka
        self._topic = topic
        self._apply = apply
        self._what = what
        self._poll_ms = poll_ms
        #: Set once the topic has been read up to its end at start-up.
        self.ready = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Read the topic until `stopping`; reconnect with back-off while Kafka is away."""
        backoff = 0.5
        failing = False  # since the last successful start: only the first failure is logged
        while not stopping.is_set():
            consumer = AIOKafkaConsumer(
                **self._kafka.client_kwargs(), enable_auto_commit=False, group_id=None,
                auto_offset_reset="earliest", client_id=f"estafette-{self._what.replace(' ', '-')}",
            )
            try:
                await consumer.start()
                partitions = [TopicPartition(self._topic, p) for p in sorted(consumer.partitions_for_topic(self._topic) or {0})]
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await consumer.end_offsets(partitions)
                backoff = 0.5
                if failing:
                    failing = False
                    log.info(f"{self._what} reading its topic again", topic=self._topic)
                while not stopping.is_set():
                    batches = await consumer.getmany(timeout_ms=self._poll_ms)
                    for records in batches.values():
                        for record in records:
                            self._apply(record.key, record.value)
                    # a list, not a generator: `await` in a generator expression makes an async generator
                    if not self.ready.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                        self.ready.set()
                        log.info(f"{self._what} loaded", topic=self._topic)
            except Exception as exc:  # noqa: BLE001 - Kafka away: keep what we have, try again
                if not failing:  # once per outage (the runtime logs Kafka's state: runtime/logging.py)
                    failing = True
                    log.warning(f"{self._what} cannot read its topic; retrying with back-off", error=type(exc).__name__)
                await pause(stopping, backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await consumer.stop()

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            return False
        return True
