"""The region registry as every service sees it: the compacted national topic `estafette.regions.v1`
(schemas/regions.py) read whole and kept current, so a region added by `estafette regions apply` is
known within a second or two, without a restart."""

from __future__ import annotations

import structlog
from pydantic import ValidationError

from estafette.runtime.compacted import CompactedReader
from estafette.runtime.kafka import KafkaAccess
from schemas.regions import RegionRecord
from schemas.topics import REGIONS

log = structlog.get_logger(__name__)


class RegionBook:
    def __init__(self, kafka: KafkaAccess, poll_ms: int = 500) -> None:
        self.regions: dict[str, RegionRecord] = {}
        self.reader = CompactedReader(kafka, REGIONS.name, self.apply, what="region registry", poll_ms=poll_ms)
        self.ready = self.reader.ready
        self.run = self.reader.run

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record: a region's latest configuration, or a tombstone (the region was removed)."""
        if value is None:
            if key:
                self.regions.pop(key.decode(), None)
            return
        try:
            record = RegionRecord.model_validate_json(value)
        except ValidationError:
            log.warning("unreadable region record ignored")
            return
        self.regions[record.id] = record

    def get(self, region: str) -> RegionRecord | None:
        return self.regions.get(region)

    def __contains__(self, region: object) -> bool:
        return region in self.regions
