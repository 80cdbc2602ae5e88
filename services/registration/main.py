"""App factory: `uvicorn --factory services.registration.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from schemas.topics import EDITIONS, FEEDBACK, NOTIFICATION_REQUESTS, OFFERS, PARTICIPANTS, SIGNUPS
from services.registration import handlers
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from services.registration.repository import Repository


def create_app(settings: RegistrationSettings | None = None) -> ServiceApp:
    settings = settings or RegistrationSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    handlers.register(rt)
    rt.produces(EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS, FEEDBACK, NOTIFICATION_REQUESTS)
    api = build_api(rt.uow, RegistrationMetrics(rt.registry), rt.links, settings, rt.regions, clock=rt.clock)
    return rt.asgi_app(http_api=api)
