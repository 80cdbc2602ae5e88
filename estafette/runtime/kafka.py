"""How a process reaches Kafka: the bootstrap address and its SASL/SCRAM-SHA-512 principal.

Every client a service or a tool makes (the FastStream broker, the outbox relay's producer, the readers
of compacted topics, admin clients) takes its connection settings from one `KafkaAccess`, so a
principal's name and password are configured in one place: `<SERVICE>_KAFKA_USERNAME` (default: the
service's name) and `<SERVICE>_KAFKA_PASSWORD`; tools use `ESTAFETTE_KAFKA_USERNAME/PASSWORD`. Without a
password the client speaks PLAINTEXT (a broker without security, e.g. a unit test's in-memory one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from faststream.security import BaseSecurity, SASLScram512

MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def secured(self) -> bool:
        return bool(self.password)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.secured:
            kwargs |= {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": MECHANISM,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return kwargs

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
