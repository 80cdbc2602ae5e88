from pydantic import Field
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

