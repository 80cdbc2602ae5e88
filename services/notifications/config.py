from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """Env vars: NOTIFICATIONS_SMTP_HOST, NOTIFICATIONS_SMTP_PORT, NOTIFICATIONS_MAX_ATTEMPTS, ..."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    http_port: int = 8003

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = 30.0
    #: The From header; its domain also names the Message-ID.
    sender: str = "Estafette <no-reply@estafette.local>"

    #: Send attempts per message, the first included; a temporary failure after the last one is final.
    max_attempts: int = 10
    #: Wait after the first temporary failure; doubled after each further one, up to retry_max_seconds.
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    #: Messages the sender claims in one short transaction (they are `sending` under a lease).
    send_batch_size: int = Field(50, ge=1, le=1000)
    #: Messages handed to the SMTP server at the same time, over as many reused connections; also the
    #: most messages sent but not yet recorded, so the most duplicates one crash can cause (issue 13).
    smtp_concurrency: int = Field(8, ge=1, le=10)
    #: How long a claimed message stays the claiming sender's: after that (the sender died) another
    #: sender takes it again. Longer than a send can take (smtp_timeout_seconds).
    send_lease_seconds: float = Field(120.0, gt=0)
    #: How often the sender looks for due messages when no NOTIFY woke it.
    send_poll_seconds: float = 1.0

    #: Where participants reach the matching service: a seat offer e-mail shows its accept and
    #: decline addresses under this URL.
    matching_public_url: str = "http://127.0.0.1:8002"
    #: Where participants reach the registration service: the "my sign-up" and feedback links of the
    #: e-mails are `{REGISTRATION_PUBLIC_URL}/links/signup/{token}` and `.../links/feedback/{token}`.
    registration_public_url: str = "http://127.0.0.1:8001"

    # --- webhooks for portals (issue 11; services/notifications/webhooks.py) ---
    #: Attempts per delivery, the first included; then it is failed (redeliver by hand).
    webhook_max_attempts: int = Field(8, ge=1)
    #: Wait after the first failed attempt; doubled after each further one, up to webhook_retry_max_seconds.
    webhook_retry_base_seconds: float = Field(10.0, ge=0)
    webhook_retry_max_seconds: float = Field(3600.0, ge=0)
    #: One attempt's limit (connect, send, answer).
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    #: Attempts in flight per endpoint, and in all, per instance.
    webhook_per_endpoint: int = Field(2, ge=1)
    webhook_max_in_flight: int = Field(64, ge=1)
    #: How often the delivery loop looks for due deliveries (a finished attempt wakes it too).
    webhook_poll_seconds: float = Field(0.5, gt=0)
