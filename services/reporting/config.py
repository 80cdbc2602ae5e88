from pydantic import Field
from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """Env vars: REPORTING_KAFKA_BOOTSTRAP, REPORTING_DATABASE_URL, REPORTING_HTTP_PORT, ..."""

    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    http_port: int = 8004
    #: How often the business gauges on /metrics (editions tracked) are refreshed from the database.
    gauge_refresh_seconds: float = 15.0

    #: Counts below this are never shown publicly or published on the dashboard feed ("< 5").
    suppression_threshold: int = Field(default=5, ge=2)
    #: How often the dashboard feed is recomputed without a wake-up (a consumer's commit wakes it at once;
    #: only commits change figures, so this is a safety net), how soon after a failed refresh, and how
    #: often live pages check whether another instance published a change.
    dashboard_refresh_seconds: float = 300.0
    dashboard_retry_seconds: float = 10.0
    dashboard_watch_seconds: float = 0.5
