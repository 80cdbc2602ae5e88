from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """Env vars: MATCHING_KAFKA_BOOTSTRAP, MATCHING_DATABASE_URL, MATCHING_HTTP_PORT, ..."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore")

    service_name: str = "matching"
    http_port: int = 8002
    #: After a change to an edition whose assignments were published (withdrawal, cancelled offer,
    #: late sign-up), wait this long for more changes before re-matching what is free.
    rematch_debounce_seconds: float = 2.0
    rematch_poll_seconds: float = 1.0
    #: How long a seat freed after publication is held for the person on the waiting list it is
    #: offered to; never later than the end of the day before the visit.
    seat_offer_hours: float = Field(default=48.0, gt=0)
    #: The editions' local time, in which "the day before the visit" ends.
    timezone: str = "Europe/Amsterdam"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
