"""Settings base. Each service subclasses it with its own env prefix (e.g. REGISTRATION_HTTP_PORT)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from estafette.runtime.kafka import KafkaAccess
from schemas.topics import REGION_ID_PATTERN


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]


def _platform(name: str) -> AliasChoices:
    """A setting shared by every service: `ESTAFETTE_<NAME>` (or the field name, for tests)."""
    return AliasChoices(f"ESTAFETTE_{name.upper()}", name)


class HttpLimits(BaseSettings):
    """What one client may send to any service's HTTP API (runtime/http.py, runtime/ratelimit.py).
    The same for every service: `ESTAFETTE_MAX_BODY_BYTES`, `ESTAFETTE_PUBLIC_RATE_LIMIT_PER_MINUTE`,
    `ESTAFETTE_PUBLIC_RATE_LIMIT_BURST`."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    #: A request body larger than this is refused with 413 before it is read into memory.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, validation_alias=_platform("max_body_bytes"))
    #: Requests per minute one client (IP address) may make to public routes without credentials
    #: (sign-up, public pages, dashboard); beyond it: 429 with Retry-After. 0: no limit (benchmarks).
    public_rate_limit_per_minute: int = Field(default=60, ge=0, validation_alias=_platform("public_rate_limit_per_minute"))
    #: How many of those requests may come at once (the bucket's size).
    public_rate_limit_burst: int = Field(default=20, ge=1, validation_alias=_platform("public_rate_limit_burst"))


class ServiceSettings(HttpLimits):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: The service's Kafka principal (SASL/SCRAM-SHA-512); empty: the service's name.
    kafka_username: str = ""
    #: Its password (local: <state>/kafka/credentials.env, written by `kafka.sh start`). None: PLAINTEXT.
    kafka_password: SecretStr | None = None
    #: How often consumers refresh topic metadata, so that a pattern subscription picks up a region
    #: added later within this time (aiokafka's default is 5 minutes).
    kafka_metadata_max_age_ms: int = Field(default=15_000, ge=1000)
    #: The regions this instance serves, comma-separated (`estafette serve matching --regions a,b`):
    #: it consumes only their topics, in one consumer group per region (`<service>.<region>`). Empty:
    #: every region, including regions added later (a pattern subscription, group `<service>`).
    regions: str = ""
    #: The service's database. Empty: its own role on the local cluster
    #: (postgresql://<service>:<database_password>@127.0.0.1:15432/estafette).
    database_url: str = ""
    #: The password of the service's database role, for the default `database_url` (no default: the
    #: local cluster's passwords are in <state>/pg/passwords.env, written by `postgres.sh bootstrap`).
    database_password: SecretStr | None = None
    #: What this instance runs (glossary: part). "all": everything. "main": everything but the
    #: service's workers. A worker's name (notifications: "sender"): only that worker's loops and the
    #: outbox relay, with health, readiness and metrics but no consumers and no service API;
    #: `estafette serve --part <worker>` also lowers its CPU priority (serve.py), so that on a busy
    #: machine taking input (sign-ups, events) goes first and the worker catches up afterwards.
    part: str = "all"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    #: Records taken from Kafka per poll; they are handled in one database transaction.
    consume_batch_size: int = 500
    #: A fetch waits on the broker until it has this many bytes for the consumer, or for
    #: consume_wait_ms: under load a consumer then takes tens of events per fetch (one transaction,
    #: bulk handlers) instead of a fetch round trip per few events; idle, an event waits at most
    #: consume_wait_ms longer (issue 13). 250 ms rather than 50: every consumer fetches about
    #: 1000/consume_wait_ms times a second when idle, and at 50 ms the broker spent 0.10 of a core
    #: (the services 0.15 more) answering empty fetches; at 250 ms 0.05, and at 16 clients the
    #: pipeline bench accepted 480 sign-ups/s instead of 390 (Kafka 0.5 ms per sign-up instead of 1.4).
    consume_min_bytes: int = Field(default=32_768, ge=1)
    consume_wait_ms: int = Field(default=250, ge=0, le=500)
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
    # --- time (runtime/clock.py) ------------------------------------------------------------
    #: Where the platform runs. `production` refuses the test clock settings below at start-up.
    environment: Literal["development", "test", "staging", "production"] = Field(
        default="development", validation_alias=_platform("environment")
    )
    #: Test clock: every service's "now" is this fixed instant (ISO 8601 with a UTC offset).
    fixed_now: datetime | None = Field(default=None, validation_alias=_platform("fixed_now"))
    #: Test clock: every service's "now" is moved by this many seconds (added to `fixed_now` if set).
    clock_offset_seconds: float = Field(default=0.0, validation_alias=_platform("clock_offset_seconds"))
    #: Test clock: a JSON file ({"offset_seconds": ..., "fixed_now": ...}) read on every reading of
    #: the clock, so a test moves every service's time without restarting them. Wins over the two above.
    clock_file: str = Field(default="", validation_alias=_platform("clock_file"))
    #: How often a service's durable scheduler (runtime/scheduler.py) looks for due steps.
    scheduler_poll_seconds: float = Field(default=1.0, gt=0, validation_alias=_platform("scheduler_poll_seconds"))

    @field_validator("regions")
    @classmethod
    def _region_ids(cls, value: str) -> str:
        for region in (r.strip() for r in value.split(",")):
            if region and not re.fullmatch(REGION_ID_PATTERN, region):
                raise ValueError(f"{region!r} is not a region id ({REGION_ID_PATTERN})")
        return value

    def model_post_init(self, __context: object) -> None:
        if not self.database_url and self.database_password is not None:
            name, password = self.service_name, quote(self.database_password.get_secret_value(), safe="")
            self.database_url = f"postgresql://{name}:{password}@127.0.0.1:15432/estafette"
        # Without either, `database_url` stays empty and the service refuses to start (runtime/db.py).

    @property
    def kafka(self) -> KafkaAccess:
        password = self.kafka_password.get_secret_value() if self.kafka_password else ""
        return KafkaAccess(self.kafka_bootstrap, self.kafka_username or self.service_name, password)

    @property
    def served_regions(self) -> tuple[str, ...] | None:
        """The regions named in `regions`, or None for every region."""
        names = tuple(dict.fromkeys(r.strip() for r in self.regions.split(",") if r.strip()))
        return names or None

    @property
    def db_schema(self) -> str:
        return self.service_name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def failpoint(self, name: str) -> bool:
        return name in {p.strip() for p in self.failpoints.split(",")}
