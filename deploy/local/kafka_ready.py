"""Wait until a local Kafka broker answers a metadata request (used by kafka.sh wait).

usage: KAFKA_READY_USERNAME=admin KAFKA_READY_PASSWORD=... kafka_ready.py PORT TIMEOUT_S [PID [CLUSTER_ID]]
Exits 0 once the broker on 127.0.0.1:PORT describes its cluster to the principal (SASL_PLAINTEXT,
SCRAM-SHA-512; PLAINTEXT without a password) and it is CLUSTER_ID (on a shared machine another Kafka
may hold the port); 1 on timeout, 2 if process PID died, 3 if the broker refuses the password (a few
times in a row: not a passing state of its start-up), 4 without aiokafka. The password comes from the
environment, never the command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


try:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed
except ImportError:  # not the project's environment
    sys.exit(4)

READY, NOT_YET, REFUSED = "ready", "not yet", "refused"
#: Refusals in a row that count as a wrong password (the broker accepts connections only once it
#: has loaded the metadata holding the credentials, so one refusal is already telling).
REFUSALS = 3


def _security() -> dict[str, str]:
    password = os.environ.get("KAFKA_READY_PASSWORD", "")
    if not password:
        return {}
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": os.environ.get("KAFKA_READY_USERNAME", "admin"),
        "sasl_plain_password": password,
    }


async def _authenticates(port: int, security: dict[str, str]) -> bool | None:
    """True if the principal logs in, False if the broker refuses it, None if it does not answer."""
    try:
        conn = await asyncio.wait_for(create_conn("127.0.0.1", port, request_timeout_ms=3000, **security), 5)
    except SaslAuthenticationFailed:
        return False
    except Exception:
        return None
    conn.close()
    return True


async def _probe(port: int, cluster_id: str | None) -> str:
    security = _security()
    if security:
        logged_in = await _authenticates(port, security)
        if logged_in is False:
            return REFUSED
        if logged_in is None:
            return NOT_YET
    admin = AIOKafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000, connections_max_idle_ms=5000, **security
    )
    try:
        await asyncio.wait_for(admin.start(), 5)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        if cluster_id and cluster.get("cluster_id") != cluster_id:
            return NOT_YET
        return READY if cluster.get("brokers") else NOT_YET
    except Exception:
        return NOT_YET
    finally:
        try:
            await asyncio.wait_for(admin.close(), 3)
        except Exception:
            pass


async def main() -> int:
    port, timeout = int(sys.argv[1]), float(sys.argv[2])
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    cluster_id = sys.argv[4] if len(sys.argv) > 4 else None
    logging.disable(logging.CRITICAL)  # aiokafka logs every refused connection
    deadline = time.monotonic() + timeout
    refused = 0
    while time.monotonic() < deadline:
        if not _alive(pid):
            return 2
        state = await _probe(port, cluster_id)
        if state == READY:
            return 0
        refused = refused + 1 if state == REFUSED else 0
        if refused >= REFUSALS:
            return 3
        await asyncio.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
