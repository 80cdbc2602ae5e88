"""The region registry as records on a compacted national topic (not events: no edition envelope).

`estafette regions apply` reads deploy/regions.toml, creates each region's topics and publishes one
`RegionRecord` per region keyed by its id; `estafette regions remove R` publishes a tombstone. Every
service reads the whole topic (no consumer group) and keeps the latest record per region, so a region
added by configuration is known everywhere within seconds, without a restart.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.topics import REGION_ID_PATTERN

Language = Literal["nl", "de", "en"]


class RegionNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    nl: str = Field(min_length=1, max_length=100)
    de: str = Field(min_length=1, max_length=100)
    en: str = Field(min_length=1, max_length=100)


class RegionRecord(BaseModel):
    """One region: its id (a segment of its topics' names), display names, time zone, the languages its
    editions may use, and its topics' partitions and retention."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=REGION_ID_PATTERN, description="e.g. 'twente'; part of every topic name of the region.")
    names: RegionNames
    timezone: str = "Europe/Amsterdam"
    languages: list[Language] = Field(default=["nl"], min_length=1)
    partitions: int = Field(default=4, ge=1, le=256, description="Partitions of each of the region's topics.")
    retention_days: int = Field(default=90, ge=1, le=3650, description="Retention of the region's event topics (the participants topic is compacted).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def retention_ms(self) -> int:
        return self.retention_days * 24 * 3600 * 1000
