from pydantic_settings import SettingsConfigDict

from estafette.runtime.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    """Env vars: REGISTRATION_KAFKA_BOOTSTRAP, REGISTRATION_DATABASE_URL, REGISTRATION_HTTP_PORT, ..."""

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    http_port: int = 8001
