"""Correlation that follows the person: one sign-up's correlation id, given with the HTTP request,
is carried by its match event and its NotificationSent event (in the payload and in Kafka's
`correlation_id` header) and is bound in the log lines of registration, matching and notifications."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from estafette.runtime.kafka import KafkaAccess
from schemas import decode_event
from schemas.topics import MATCHES, NOTIFICATIONS
from tests.support import Infra, ServiceProcess, eventually, services

pytestmark = pytest.mark.e2e


async def read_until(kafka: KafkaAccess, topics: list[str], wanted, timeout: float = 60.0) -> dict[str, tuple]:
    """Read `topics` from the beginning until `wanted(found)` is true; found: event_type -> (event, headers)."""
    consumer = AIOKafkaConsumer(*topics, **kafka.client_kwargs(), group_id=f"t-{uuid.uuid4()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: dict[str, tuple] = {}
    try:
        async with asyncio.timeout(timeout):
            while not wanted(found):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        event = decode_event(record.value)
                        found.setdefault(f"{event.event_type}:{getattr(event, 'signup_id', '')}",
                                         (event, {k: v.decode() for k, v in record.headers}))
    finally:
        await consumer.stop()
    return found


def log_lines(proc: ServiceProcess, correlation_id: str) -> list[dict]:
    lines = []
    for raw in proc.log_path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("correlation_id") == correlation_id:
            lines.append(line)
    return lines


async def test_a_signups_correlation_id_follows_it_to_its_email(infra: Infra) -> None:
    edition = f"corr-{uuid.uuid4().hex[:8]}"
    cid = str(uuid.uuid4())
    with services(infra, "registration", "matching", "notifications") as svc:
        reg, matching = svc["registration"].url, svc["matching"].url
        admin = {"Authorization": f"Bearer {infra.key('admin')}"}  # the organiser's portal
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(f"{reg}/editions", headers=admin, json={
                "id": edition, "region": "twente", "name": "Week", "signup_deadline": "2099-04-01T00:00:00Z",
                "starts_on": "2099-05-31", "ends_on": "2099-06-04", "languages": ["nl"]})
            assert r.status_code == 201, r.text
            r = await http.post(f"{reg}/editions/{edition}/offers", headers=admin, json={
                "id": f"{edition}-bakery", "host_org": "bakker-bart", "title": "Bakkerij", "date": "2099-06-01",
                "capacity": 1})
            assert r.status_code == 201, r.text
            r = await http.post(f"{reg}/editions/{edition}/signups", headers={"X-Correlation-ID": cid}, json={
                "org": "gemeente", "name": "Anna", "email": f"anna-{edition}@example.org", "choices": [f"{edition}-bakery"], "consent": True})
            assert r.status_code == 201 and r.headers["x-correlation-id"] == cid, r.text
            signup_id = r.json()["signup_id"]

            async def arrived() -> bool:
                r = await http.get(f"{matching}/editions/{edition}", headers=admin)
                return r.status_code == 200 and r.json()["participants"] == 1

            for _ in range(300):
                if await arrived():
                    break
                await asyncio.sleep(0.2)
            run_cid = str(uuid.uuid4())  # the organiser's request: the run's own correlation
            run = await http.post(f"{matching}/editions/{edition}/match-runs", headers={**admin, "X-Correlation-ID": run_cid})
            assert run.status_code == 202, run.text
            run_id = run.json()["id"]

        found = await read_until(
            infra.kafka, [MATCHES.name_in("twente"), NOTIFICATIONS.name_in("twente")],
            lambda f: f"MatchAssigned:{signup_id}" in f and f"NotificationSent:{signup_id}" in f,
        )
        assigned, assigned_headers = found[f"MatchAssigned:{signup_id}"]
        sent, sent_headers = found[f"NotificationSent:{signup_id}"]
        assert str(assigned.correlation_id) == cid and str(assigned.run_id) == run_id
        assert str(sent.correlation_id) == cid
        assert assigned_headers["correlation_id"] == cid and sent_headers["correlation_id"] == cid

        def bound_everywhere() -> dict[str, list[dict]] | None:
            lines = {name: log_lines(proc, cid) for name, proc in svc.items()}
            return lines if all(lines.values()) else None

        lines = eventually(bound_everywhere, timeout=30)
        assert any(line["event"] == "request handled" for line in lines["registration"])
        handled = {line.get("event_type") for line in lines["matching"] if line["event"] == "event handled"}
        assert "SignupSubmitted" in handled
        assert any(line["event"] == "e-mail sent" for line in lines["notifications"])
        # Lines of a handled event also carry the event's id.
        assert all("event_id" in line for line in lines["matching"] if line["event"] == "event handled")
