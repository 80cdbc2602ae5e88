"""Honest readiness and clean shutdown, each service as a real process (`estafette serve NAME`).

- Ready means working: when a service's /readyz first answers 200, each of its consumer groups has
  joined and holds partitions (as the broker describes the group), and the body names every check ok.
  Before that, /readyz answers 503 naming what is not ready.
- SIGTERM: the service stops taking work, stops its consumers, loops and outbox relay before its
  database pool, and exits with code 0 within 10 s, also while sign-ups are coming in.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest

from tests.support import Infra, ServiceProcess, eventually, group_assignments

pytestmark = pytest.mark.integration

EXIT_SECONDS = 10
#: A clean stop: uvicorn re-raises SIGTERM after its graceful shutdown, and `estafette serve`
#: (tools/serve.py) turns that into exit code 0; the log must also show that the shutdown ran to its end.
CLEAN_EXITS = (0,)


def _assert_clean_exit(proc: ServiceProcess, code: int, seconds: float) -> None:
    log = proc.log_path.read_text(errors="replace")
    tail = log[log.rfind('"service stopping"'):] if '"service stopping"' in log else ""
    assert code in CLEAN_EXITS, f"{proc.service} exited with {code}; log: {proc.log_path}"
    assert '"service stopped"' in tail and "Application shutdown complete" in tail, f"log: {proc.log_path}"
    assert seconds < EXIT_SECONDS, f"{proc.service} took {seconds:.1f} s to exit; log: {proc.log_path}"
#: The consumer group of each service started without --regions (one pattern subscription).
GROUPS = {"registration": [], "matching": ["matching"], "notifications": ["notifications"], "reporting": ["reporting"]}


def _readiness(url: str) -> tuple[int, dict]:
    r = httpx.get(f"{url}/readyz", timeout=5)
    return r.status_code, r.json()


@pytest.mark.parametrize("service", list(GROUPS))
def test_a_service_is_ready_only_once_it_works_and_exits_within_10_s_of_sigterm(infra: Infra, service: str) -> None:
    proc = ServiceProcess(infra, service)
    proc.start()  # returns once /readyz answers 200
    try:
        status, body = _readiness(proc.url)
        assert status == 200 and body["status"] == "ready" and body["not_ready"] == [], body
        assert {"database", "outbox relay", "api keys", "region registry"} <= set(body["checks"])
        for group in GROUPS[service]:
            assert body["checks"][f"consumer group {group}"] == "ok", body
            members = asyncio.run(group_assignments(infra.kafka, group))
            assert members and any(members), f"{group}: {members}"  # joined, and partitions are held
        code, seconds = proc.terminate(timeout=30)
    finally:
        proc.kill()
    _assert_clean_exit(proc, code, seconds)
    print(f"{service}: exit {code} {seconds:.2f} s after SIGTERM")


def test_registration_taking_sign_ups_exits_within_10_s_of_sigterm(infra: Infra) -> None:
    """Sign-ups keep arriving while the SIGTERM comes: each one is answered (201, or refused as the
    server closes: never a 500), and the process exits with 0 in time."""
    proc = ServiceProcess(infra, "registration").start()
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    edition = f"sd-{uuid.uuid4().hex[:8]}"
    try:
        httpx.post(f"{proc.url}/editions", headers=admin, timeout=10, json={
            "id": edition, "region": "twente", "name": "Shutdown", "signup_deadline": "2099-01-01T00:00:00Z",
            "starts_on": "2099-05-01", "ends_on": "2099-05-05"}).raise_for_status()
        httpx.post(f"{proc.url}/editions/{edition}/offers", headers=admin, timeout=10, json={
            "id": f"{edition}-o1", "host_org": "org-a", "title": "Visit", "date": "2099-05-02",
            "capacity": 5}).raise_for_status()
        statuses: list[int] = []
        stop = threading.Event()

        def sign_up() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        person = uuid.uuid4().hex[:10]
                        r = client.post(f"{proc.url}/editions/{edition}/signups", json={
                            "org": "org-b", "name": f"P {person}", "email": f"{person}@example.org",
                            "choices": [f"{edition}-o1"]})
                    except httpx.HTTPError:
                        return  # the server stopped taking connections
                    statuses.append(r.status_code)

        clients = [threading.Thread(target=sign_up) for _ in range(8)]
        for t in clients:
            t.start()
        try:
            eventually(lambda: statuses.count(201) >= 50, timeout=30)  # busy: sign-ups committed, relay publishing
            code, seconds = proc.terminate(timeout=30)
        finally:
            stop.set()
            for t in clients:
                t.join()
    finally:
        proc.kill()
    _assert_clean_exit(proc, code, seconds)
    assert statuses and set(statuses) <= {201, 503}, sorted(set(statuses))
    print(f"registration (busy, {len(statuses)} sign-ups): exit {code} {seconds:.2f} s after SIGTERM")


def test_after_a_crash_a_restarted_service_is_not_ready_until_its_consumers_hold_partitions(infra: Infra) -> None:
    """kill -9, then a restart: the broker keeps the dead member in the group until its session
    expires, so the new instance's join takes a while. /healthz is 200 meanwhile (alive); /readyz
    answers 503 naming the consumer group until the group has re-formed with the new instance
    holding its partitions."""
    first = ServiceProcess(infra, "matching").start()
    first.kill()
    restarted = ServiceProcess(infra, "matching")
    t0 = time.monotonic()
    restarted.start_process()
    try:
        waiting_for_group = []

        def ready() -> bool:
            try:
                status, body = _readiness(restarted.url)
            except httpx.HTTPError:
                return False
            if status != 200 and "consumer group matching" in body["not_ready"]:
                waiting_for_group.append(body["checks"]["consumer group matching"])
            return status == 200

        eventually(ready, timeout=60, interval=0.1)
        members = asyncio.run(group_assignments(infra.kafka, "matching"))
        assert len(members) == 1 and members[0], members  # the dead member is gone; the new one holds partitions
        assert waiting_for_group, "never saw /readyz wait for the consumer group"
        assert httpx.get(f"{restarted.url}/healthz", timeout=5).status_code == 200
        print(f"matching restarted after kill -9: ready {time.monotonic() - t0:.1f} s after its start")
    finally:
        restarted.stop()
