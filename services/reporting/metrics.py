"""Business gauges on /metrics, refreshed from the database by a background loop."""

from __future__ import annotations

import asyncio
from typing import get_args

import structlog
from prometheus_client import CollectorRegistry, Gauge

from estafette.runtime.app import BackgroundLoop
from estafette.runtime.loops import pause
from estafette.runtime.uow import Uow
from services.reporting import service
from services.reporting.domain import EditionStatus
from services.reporting.repository import Repository

log = structlog.get_logger(__name__)
EDITION_STATUSES: tuple[str, ...] = get_args(EditionStatus)


def gauge_refresher(uow: Uow[Repository], registry: CollectorRegistry, every_seconds: float) -> BackgroundLoop:
    editions = Gauge("reporting_editions", "Editions tracked, by status", ["status"], registry=registry)

    async def refresh(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                counts = await service.editions_by_status(uow)
                for status in EDITION_STATUSES:
                    editions.labels(status).set(counts.get(status, 0))
            except Exception as exc:  # noqa: BLE001 - the database may be down; try again later
                log.warning("gauge refresh failed", error=repr(exc))
            await pause(stopping, every_seconds)

    return refresh
