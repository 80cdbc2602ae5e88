"""API keys as records on a compacted topic (not v1 events: no edition, no region envelope).

`estafette keys create` publishes an `ApiKeyRecord` keyed by `key_id`; `estafette keys revoke`
publishes the same record with `revoked_at` set. Compaction keeps the latest record per key, so the
topic is the registry of every key and every service reads all of it (no consumer group) into memory:
a revocation reaches every service as soon as it is read (within a second or two). The key itself is
never stored: only the SHA-256 of it (keys are 256-bit random, so a plain hash suffices).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Roles a key or a token may carry (participants act through links, the public needs nothing).
KeyRole = Literal["admin", "organiser", "national"]


class ApiKeyRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    key_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]+$")
    key_sha256: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    role: KeyRole
    region: str | None = Field(default=None, description="The organiser's region; null for admin and national.")
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self, at: datetime) -> ApiKeyRecord:
        return self.model_copy(update={"revoked_at": at})
