"""App factory: `uvicorn --factory services.notifications.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from schemas.topics import MATCHES, NOTIFICATION_REQUESTS, NOTIFICATIONS, PARTICIPANTS
from services.notifications import handlers
from services.notifications.api import build_api
from services.notifications.config import NotificationsSettings
from services.notifications.links import SeatOfferLinks
from services.notifications.rendering import Renderer
from services.notifications.repository import Repository
from services.notifications.sender import Sender, SenderMetrics


def create_app(settings: NotificationsSettings | None = None) -> ServiceApp:
    settings = settings or NotificationsSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    rt.subscribe(MATCHES, "matches", handlers.matches(SeatOfferLinks(rt.links, settings.matching_public_url)))
    rt.subscribe(PARTICIPANTS, "participants", handlers.PARTICIPANTS, tombstone=handlers.participant_erased)
    rt.subscribe(NOTIFICATION_REQUESTS, "requests", handlers.REQUESTS)
    rt.produces(NOTIFICATIONS)
    rt.background(Sender(rt.uow, settings, SenderMetrics(rt.registry), Renderer(timezone=settings.zone)).run)
    return rt.asgi_app(http_api=build_api(rt.uow))
