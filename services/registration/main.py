"""App factory: `uvicorn --factory services.registration.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from estafette.runtime.scheduler import Scheduler
from schemas.topics import EDITIONS, FEEDBACK, NOTIFICATION_REQUESTS, OFFERS, PARTICIPANTS, RELAY, SIGNUPS
from services.registration import handlers, relay_steps
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from services.registration.repository import Repository


def create_app(settings: RegistrationSettings | None = None) -> ServiceApp:
    settings = settings or RegistrationSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    handlers.register(rt)
    rt.produces(EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS, FEEDBACK, NOTIFICATION_REQUESTS, RELAY)
    # The durable scheduler: the relay's start and hand-over steps (issue 10). One loop for every kind of
    # this service: add other kinds' handlers to this mapping.
    steps = {**relay_steps.steps(rt.clock)}
    rt.background(Scheduler(rt.uow, steps, rt.clock, settings.scheduler_poll_seconds).run)
    api = build_api(rt.uow, RegistrationMetrics(rt.registry), rt.links, settings, rt.regions, clock=rt.clock)
    return rt.asgi_app(http_api=api)
