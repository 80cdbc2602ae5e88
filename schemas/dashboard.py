"""Dashboard feed records (not events: no envelope) on the compacted national topic
`estafette.dashboard.v1`, for national dashboards: privacy-safe aggregates per region, edition and day.

Keyed `<region>:<edition>:<day>` (ISO date), so the latest record per key wins. A count below the
configured threshold is never published as a number: it is `None` with `suppressed` naming the field,
and totals are published only where no suppressed count can be derived from them by subtraction.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class DashboardRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    region: str
    edition: str
    day: date
    #: Counts for that day; None when below the threshold (see `suppressed`).
    signups: int | None = None
    assigned: int | None = None
    feedback: int | None = None
    average_rating: float | None = Field(default=None, description="Only over at least `threshold` ratings.")
    suppressed: list[str] = Field(default=[], description="Fields withheld because their count is below the threshold.")
    threshold: int = Field(ge=1, description="Counts below this are never published.")
    updated_at: datetime

    @property
    def key(self) -> str:
        return f"{self.region}:{self.edition}:{self.day.isoformat()}"
