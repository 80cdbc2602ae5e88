from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """Env vars: REPORTING_KAFKA_BOOTSTRAP, REPORTING_DATABASE_URL, REPORTING_HTTP_PORT, ..."""

    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    http_port: int = 8004
    #: How often the business gauges on /metrics (editions tracked) are refreshed from the database.
    gauge_refresh_seconds: float = 15.0

