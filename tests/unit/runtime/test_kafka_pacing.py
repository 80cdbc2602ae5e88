"""A failed metadata update is paced by the client's retry back-off (runtime/kafka.py): without it an
aiokafka consumer that knows no leader for a partition asks again at once, a full core while Kafka is
away."""

from __future__ import annotations

import asyncio

from aiokafka.client import AIOKafkaClient

from estafette.runtime import kafka


def test_a_failed_metadata_update_waits_the_retry_back_off(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def update() -> bool:
        client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=500)
        # No broker known and no bootstrap connection yet: aiokafka's update fails at once (no network).
        return await client._metadata_update(client.cluster, set())

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    assert asyncio.run(update()) is False
    assert slept == [0.5]


def test_pacing_is_applied_once_however_often_the_module_is_set_up():
    before = AIOKafkaClient._metadata_update
    kafka._pace_failed_metadata_updates()
    assert AIOKafkaClient._metadata_update is before
