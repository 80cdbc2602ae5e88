from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """Env vars: REPORTING_KAFKA_BOOTSTRAP, REPORTING_DATABASE_URL, REPORTING_HTTP_PORT, ..."""

    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    http_port: int = 8004
    #: The calendar in which sign-ups are counted per day (by_day in the edition report).
    report_timezone: str = "Europe/Amsterdam"
    #: How often the business gauges on /metrics (editions tracked) are refreshed from the database.
    gauge_refresh_seconds: float = 15.0

    @field_validator("report_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
