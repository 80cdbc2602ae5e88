"""App factory: `uvicorn --factory services.reporting.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from services.reporting import handlers
from services.reporting.api import build_api
from services.reporting.config import ReportingSettings
from services.reporting.metrics import gauge_refresher
from services.reporting.repository import Repository


def create_app(settings: ReportingSettings | None = None) -> ServiceApp:
    settings = settings or ReportingSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    handlers.register(rt)
    rt.background(gauge_refresher(rt.uow, rt.registry, settings.gauge_refresh_seconds))
    return rt.asgi_app(http_api=build_api(rt.uow, settings.timezone, rt.regions))
