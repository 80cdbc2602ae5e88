"""The envelope every event carries.

Events are flat pydantic models: the envelope fields below plus the event's own fields. `event_type`
is the discriminator (past-tense name, e.g. ``SignupSubmitted``) and `version` the contract version.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Envelope fields shared by all events. Subclasses add `event_type` (a Literal) and their data."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: Which field of the event is the Kafka message key (the entity id). Set by each event class.
    key_field: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique id; consumers dedupe on it.")
    event_type: str
    version: int = Field(default=2, description="Contract version of this event type (schemas/topics.py VERSION).")
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    correlation_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Id of the request or run that caused this event."
    )
    region: str = Field(min_length=1, max_length=64, description="Region that runs the edition, e.g. 'twente'.")
    edition: str = Field(min_length=1, max_length=64, description="Edition id, e.g. 'wvdu-2027-twente'.")

    @property
    def key(self) -> str:
        """The Kafka message key: the id of the entity the event is about."""
        return str(getattr(self, self.key_field))
