"""How a process reaches Kafka: the bootstrap address and its SASL/SCRAM-SHA-512 principal.

Every client a service or a tool makes (the FastStream broker, the outbox relay's producer, the readers
of compacted topics, admin clients) takes its connection settings from one `KafkaAccess`, so a
principal's name and password are configured in one place: `<SERVICE>_KAFKA_USERNAME` (default: the
service's name) and `<SERVICE>_KAFKA_PASSWORD`; tools use `ESTAFETTE_KAFKA_USERNAME/PASSWORD`. Without a
password the client speaks PLAINTEXT (a broker without security, e.g. a unit test's in-memory one).
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka.client import AIOKafkaClient
from faststream.security import BaseSecurity, SASLScram512

MECHANISM = "SCRAM-SHA-512"
#: retry_backoff_ms of a service's Kafka clients (aiokafka's default: 100).
SERVICE_RETRY_BACKOFF_MS = 500


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    username: str = ""
    password: str = field(default="", repr=False)
    #: Milliseconds every retry loop of the client waits between attempts (None: aiokafka's 100).
    retry_backoff_ms: int | None = None

    @property
    def secured(self) -> bool:
        return bool(self.password)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.retry_backoff_ms is not None:
            kwargs["retry_backoff_ms"] = self.retry_backoff_ms
        if self.secured:
            kwargs |= {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": MECHANISM,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return kwargs

    def with_backoff(self, retry_backoff_ms: int = SERVICE_RETRY_BACKOFF_MS) -> KafkaAccess:
        """The same access with a longer retry back-off (a service's clients: see the module's docstring)."""
        return replace(self, retry_backoff_ms=retry_backoff_ms)

    def security(self) -> BaseSecurity | None:
        """For FastStream's KafkaBroker(security=...)."""
        return SASLScram512(self.username, self.password, use_ssl=False) if self.secured else None

    @classmethod
    def from_env(cls, bootstrap: str | None = None) -> KafkaAccess:
        """An operator tool's access: ESTAFETTE_KAFKA_BOOTSTRAP / _USERNAME / _PASSWORD."""
        return cls(
            bootstrap or os.environ.get("ESTAFETTE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            os.environ.get("ESTAFETTE_KAFKA_USERNAME", "admin"),
            os.environ.get("ESTAFETTE_KAFKA_PASSWORD", ""),
        )


def _pace_failed_metadata_updates() -> None:
    """A failed metadata update waits the client's `retry_backoff_ms` before it returns.

    aiokafka (0.14) retries at once: a consumer whose cached metadata names no leader for a partition
    (what a broker reports while it shuts down) asks for metadata again as soon as the last request
    failed, and with the broker away every request fails at once (connection refused). Its fetcher then
    spins through all its partitions: a full core for the whole outage, seen in the outage test late in
    a test session (docs/faults.md; upstream: aio-libs/aiokafka issue 1155 is the same missing back-off
    for fetch errors). Applied once, when this module is imported (every client of the platform is
    made after it)."""
    update = AIOKafkaClient._metadata_update
    if getattr(update, "paced", False):
        return

    @functools.wraps(update)
    async def paced(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
        ok: bool = await update(self, cluster_metadata, topics)
        if not ok:
            await asyncio.sleep(self._retry_backoff)
        return ok

    paced.paced = True  # type: ignore[attr-defined]
    AIOKafkaClient._metadata_update = paced  # type: ignore[method-assign]


_pace_failed_metadata_updates()
