"""Runtime settings: the database role's password has no default, and the HTTP limits are shared by
every service (ESTAFETTE_*)."""

import pytest

from estafette.runtime.db import NoDatabaseUrl, create_pool
from estafette.runtime.settings import HttpLimits, ServiceSettings


class ShopSettings(ServiceSettings):
    model_config = {"env_prefix": "SHOP_"}
    service_name: str = "shop"


def test_the_database_url_is_built_from_the_role_password(monkeypatch):
    monkeypatch.setenv("SHOP_DATABASE_PASSWORD", "s3cret/with:odd@chars")
    assert ShopSettings().database_url == "postgresql://shop:s3cret%2Fwith%3Aodd%40chars@127.0.0.1:15432/estafette"


def test_a_given_database_url_wins(monkeypatch):
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql://shop:x@db:5432/prod")
    monkeypatch.setenv("SHOP_DATABASE_PASSWORD", "other")
    assert ShopSettings().database_url == "postgresql://shop:x@db:5432/prod"


async def test_without_url_or_password_there_is_no_default_and_the_service_says_what_to_set(monkeypatch):
    monkeypatch.delenv("SHOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHOP_DATABASE_PASSWORD", raising=False)
    settings = ShopSettings()
    assert settings.database_url == ""
    with pytest.raises(NoDatabaseUrl, match="SHOP_DATABASE_URL, or SHOP_DATABASE_PASSWORD"):
        await create_pool(settings.database_url, settings.db_schema)


def test_http_limits_are_platform_settings_with_safe_defaults(monkeypatch):
    for name in ("MAX_BODY_BYTES", "PUBLIC_RATE_LIMIT_PER_MINUTE", "PUBLIC_RATE_LIMIT_BURST"):
        monkeypatch.delenv(f"ESTAFETTE_{name}", raising=False)
    assert (HttpLimits().max_body_bytes, HttpLimits().public_rate_limit_per_minute) == (1024 * 1024, 60)
    monkeypatch.setenv("ESTAFETTE_PUBLIC_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("ESTAFETTE_MAX_BODY_BYTES", "2048")
    assert (ShopSettings().public_rate_limit_per_minute, ShopSettings().max_body_bytes) == (0, 2048)
