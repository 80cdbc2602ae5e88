from pydantic import Field
from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    """Env vars: REGISTRATION_KAFKA_BOOTSTRAP, REGISTRATION_DATABASE_URL, REGISTRATION_HTTP_PORT, ...,
    REGISTRATION_PUBLIC_URL, REGISTRATION_MATCHING_PUBLIC_URL."""

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    http_port: int = 8001
    #: Where participants reach this service: the base of the `manage_url` of a sign-up's link page.
    public_url: str = Field(default="http://127.0.0.1:8001", pattern=r"^https?://[^\s/]+(/\S*)?$")
    #: Where participants reach the matching service: the base of a seat offer's accept/decline links
    #: on the "my sign-up" page (matching's `/links/seat-offers/{token}/{answer}` pages).
    matching_public_url: str = Field(default="http://127.0.0.1:8002", pattern=r"^https?://[^\s/]+(/\S*)?$")
    #: Just started: how long a request that needs the region registry waits for it to be read (then 503).
    regions_ready_timeout_seconds: float = Field(default=10.0, gt=0)
    # --- relay (issue 10): possible dates (domain.DateLimits) ---
    #: Editions, offers and relay legs more than this many years before the platform clock's today are refused.
    max_years_past: int = Field(default=1, ge=0)
    #: ... and more than this many years after it (REGISTRATION_MAX_YEARS_AHEAD).
    max_years_ahead: int = Field(default=5, ge=0)
    #: Editions longer than this many days are refused.
    max_edition_days: int = Field(default=31, ge=1)

    @property
    def link_max_age_seconds(self) -> float:
        return self.link_max_age_hours * 3600
