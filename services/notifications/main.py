"""App factory: `uvicorn --factory services.notifications.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.app import Runtime, ServiceApp
from estafette.runtime.scheduler import Scheduler
from schemas.topics import EDITIONS, MATCHES, NOTIFICATION_REQUESTS, NOTIFICATIONS, OFFERS, PARTICIPANTS, SIGNUPS
from services.notifications import handlers, webhooks
from services.notifications.api import build_api
from services.notifications.config import NotificationsSettings
from services.notifications.domain import WebhookPolicy
from services.notifications.links import ParticipantLinks, SeatOfferLinks
from services.notifications.rendering import Renderer
from services.notifications.repository import Repository
from services.notifications.sender import Sender, SenderMetrics
from services.notifications.service import Journey


def create_app(settings: NotificationsSettings | None = None) -> ServiceApp:
    settings = settings or NotificationsSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)

    def zone(region: str) -> str:
        """The region's time zone (region registry), else the service's TIMEZONE (Europe/Amsterdam)."""
        record = rt.regions.get(region)
        return record.timezone if record is not None else settings.timezone

    participant_links = ParticipantLinks(rt.links, settings.registration_public_url)
    journey = Journey(rt.clock, zone, participant_links.signup, participant_links.feedback)
    # Each tapped topic's events of the types a region's webhooks subscribed to also become webhook
    # deliveries, in the same transaction (issue 11, webhooks.py).
    rt.subscribe(EDITIONS, "editions", webhooks.tap(EDITIONS, handlers.editions(journey), rt.clock))
    rt.subscribe(OFFERS, "offers", webhooks.tap(OFFERS, handlers.offers(journey), rt.clock))
    rt.subscribe(SIGNUPS, "signups", webhooks.tap(SIGNUPS, handlers.signups(journey), rt.clock))
    rt.subscribe(
        MATCHES, "matches", webhooks.tap(
            MATCHES, handlers.matches(SeatOfferLinks(rt.links, settings.matching_public_url), journey), rt.clock
        )
    )
    rt.subscribe(PARTICIPANTS, "participants", handlers.PARTICIPANTS, tombstone=handlers.participant_erased)
    rt.subscribe(NOTIFICATION_REQUESTS, "requests", handlers.REQUESTS)
    rt.produces(NOTIFICATIONS)
    # The sender is a worker: `make run` gives it an instance of its own at a lower CPU priority
    # (`--part sender`), so that a burst of sign-ups is taken first and its e-mails follow.
    rt.background(Sender(rt.uow, settings, SenderMetrics(rt.registry), Renderer(timezone=settings.zone)).run, worker="sender")
    rt.background(Scheduler(rt.uow, handlers.steps(journey), rt.clock, settings.scheduler_poll_seconds).run)
    rt.background(webhooks.WebhookDeliverer(
        rt.uow, rt.clock,
        WebhookPolicy(settings.webhook_max_attempts, settings.webhook_retry_base_seconds, settings.webhook_retry_max_seconds),
        timeout_seconds=settings.webhook_timeout_seconds, per_endpoint=settings.webhook_per_endpoint,
        max_in_flight=settings.webhook_max_in_flight, poll_seconds=settings.webhook_poll_seconds,
        regions=rt.served_regions,
    ).run)
    return rt.asgi_app(http_api=build_api(rt.uow, clock=rt.clock))
