"""Settings base. Each service subclasses it with its own env prefix (e.g. REGISTRATION_HTTP_PORT)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str
    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = Field(default="", description="Defaults to the local role and schema of the service.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    #: Records taken from Kafka per poll; they are handled in one database transaction.
    consume_batch_size: int = 500
    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 1.0
    handler_attempts: int = 3
    #: The editions' local time: calendar days in reports, "until when" in e-mails, the day before a visit.
    timezone: TimeZoneName = "Europe/Amsterdam"
    # --- access (runtime/auth.py) -----------------------------------------------------------
    #: OpenID Connect bearer tokens from a portal's identity provider: the JWKS with its signing keys,
    #: the issuer and audience a token must name, and the claims that carry role and region. Empty
    #: `oidc_jwks_url`: tokens are not accepted (API keys still are).
    oidc_jwks_url: str = Field(default="", validation_alias=AliasChoices("ESTAFETTE_OIDC_JWKS_URL", "oidc_jwks_url"))
    oidc_issuer: str = Field(default="", validation_alias=AliasChoices("ESTAFETTE_OIDC_ISSUER", "oidc_issuer"))
    oidc_audience: str = Field(default="estafette", validation_alias=AliasChoices("ESTAFETTE_OIDC_AUDIENCE", "oidc_audience"))
    oidc_role_claim: str = Field(default="estafette_role", validation_alias=AliasChoices("ESTAFETTE_OIDC_ROLE_CLAIM", "oidc_role_claim"))
    oidc_region_claim: str = Field(default="estafette_region", validation_alias=AliasChoices("ESTAFETTE_OIDC_REGION_CLAIM", "oidc_region_claim"))
    #: Signs participant links (shared by every service that makes or reads them). The default is for
    #: local runs only; set ESTAFETTE_LINK_SECRET anywhere else.
    link_secret: SecretStr = Field(
        default=SecretStr("local-development-only-link-secret"),
        validation_alias=AliasChoices("ESTAFETTE_LINK_SECRET", "link_secret"),
    )
    #: How long a participant link stays valid (a seat offer's own expiry still applies).
    link_max_age_hours: float = Field(default=60 * 24.0, gt=0)
    #: Comma-separated fault-injection points, for crash tests only (e.g. "crash_after_commit").
    failpoints: str = ""

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            name = self.service_name
            self.database_url = f"postgresql://{name}:{name}@127.0.0.1:55432/estafette"

    @property
    def db_schema(self) -> str:
        return self.service_name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def failpoint(self, name: str) -> bool:
        return name in {p.strip() for p in self.failpoints.split(",")}
