"""App factory: `uvicorn --factory services.registration.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from schemas.topics import EDITIONS, OFFERS, PARTICIPANTS, SIGNUPS
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from services.registration.repository import Repository


def create_app(settings: RegistrationSettings | None = None) -> ServiceApp:
    settings = settings or RegistrationSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    rt.produces(EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS)
    api = build_api(rt.uow, RegistrationMetrics(rt.registry), rt.links, settings, rt.regions)
    return rt.asgi_app(http_api=api)
