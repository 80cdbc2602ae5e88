"""Wait until a local Kafka broker answers a metadata request (used by kafka.sh wait).

usage: kafka_ready.py PORT TIMEOUT_S [PID [CLUSTER_ID]]
Exits 0 once the broker on 127.0.0.1:PORT describes its cluster (and it is CLUSTER_ID: on a shared
machine another Kafka may hold the port), 1 on timeout, 2 if process PID died, 4 without aiokafka.
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
except ImportError:  # not the project's environment
    sys.exit(4)


async def _probe(port: int, cluster_id: str | None) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000, connections_max_idle_ms=5000
    )
    try:
        await asyncio.wait_for(admin.start(), 5)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        if cluster_id and cluster.get("cluster_id") != cluster_id:
            return False
        return bool(cluster.get("brokers"))
    except Exception:
        return False
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
    while time.monotonic() < deadline:
        if not _alive(pid):
            return 2
        if await _probe(port, cluster_id):
            return 0
        await asyncio.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
