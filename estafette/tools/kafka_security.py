"""Kafka principals and ACLs (SASL/SCRAM-SHA-512): one principal per service, one per regional pipeline.

(Being written: grant_region is called by `estafette regions apply` for each region.)
"""

from __future__ import annotations

from estafette.runtime.kafka import KafkaAccess


async def grant_region(kafka: KafkaAccess, region: str) -> None:
    """Grant each service its access to `region`'s topics (nothing to do on a broker without security)."""
    if not kafka.secured:
        return
    raise NotImplementedError("ACLs on a secured broker")
