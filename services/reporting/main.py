"""App factory: `uvicorn --factory services.reporting.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from schemas.dashboard import DashboardRecord
from schemas.topics import DASHBOARD
from services.reporting import handlers
from services.reporting.api import build_api
from services.reporting.config import ReportingSettings
from services.reporting.live import LiveDashboard
from services.reporting.metrics import gauge_refresher
from services.reporting.repository import Repository


def create_app(settings: ReportingSettings | None = None) -> ServiceApp:
    settings = settings or ReportingSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    live = LiveDashboard(rt.uow, rt.clock, settings.timezone, settings.suppression_threshold,
                         settings.dashboard_refresh_seconds, settings.dashboard_watch_seconds,
                         settings.dashboard_retry_seconds)
    handlers.register(rt, changed=live.wake)
    _produces_dashboard_feed(rt)
    rt.background(gauge_refresher(rt.uow, rt.registry, settings.gauge_refresh_seconds))
    rt.background(live.refresh)
    rt.background(live.watch)
    return rt.asgi_app(http_api=build_api(
        rt.uow, settings.timezone, rt.regions, threshold=settings.suppression_threshold, clock=rt.clock, live=live))


def _produces_dashboard_feed(rt: Runtime) -> None:
    """Declare the dashboard feed (records, not events: `Runtime.produces` takes topics of events) for the
    AsyncAPI document and the registry's contract test."""
    rt.produces_records(
        DASHBOARD, DashboardRecord,
        "DashboardRecord (privacy-safe aggregates per region, edition and day; counts below the "
        "threshold withheld). Compacted; key: `<region>:<edition>:<day>`.",
    )
