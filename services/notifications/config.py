from pydantic import SecretStr
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
    #: Messages sent over one SMTP connection before the sender looks again for due messages.
    send_batch_size: int = 20
    #: How often the sender looks for due messages when no NOTIFY woke it.
    send_poll_seconds: float = 1.0

    #: Where participants reach the matching service: a seat offer e-mail shows its accept and
    #: decline addresses under this URL.
    matching_public_url: str = "http://127.0.0.1:8002"
    #: Where participants reach the registration service: the "my sign-up" and feedback links of the
    #: e-mails are `{REGISTRATION_PUBLIC_URL}/links/signup/{token}` and `.../links/feedback/{token}`.
    registration_public_url: str = "http://127.0.0.1:8001"

