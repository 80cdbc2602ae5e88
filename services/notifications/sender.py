"""The sender: a background loop that sends due messages, woken by NOTIFY or by polling.

Each round sends up to `send_batch_size` messages over one SMTP connection, each in its own
transaction (see service.send_next, which also logs each outcome with the message's notification id
and correlation id bound), then closes the connection and updates the pending gauges.

An instance started for some regions (`--regions a,b`, `settings.served_regions`) sends only those
regions' messages, so that it is never held up by another region's burst; instances of different
regions may share the database.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from estafette.runtime.loops import listen, pause
from estafette.runtime.uow import UnitOfWork
from services.notifications import domain, service
from services.notifications.config import NotificationsSettings
from services.notifications.mail import SmtpMailer
from services.notifications.rendering import Renderer
from services.notifications.repository import PENDING_CHANNEL, Repository

log = structlog.get_logger(__name__)
MAX_BACKOFF_SECONDS = 5.0


class SenderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["template", "language"]
        self.sent = Counter("emails_sent", "E-mails accepted by the SMTP server", labels, registry=registry)
        self.failed = Counter(
            "emails_failed", "E-mails given up on", [*labels, "permanent"], registry=registry
        )
        self.retried = Counter("emails_retried", "Temporary send failures, to be retried", labels, registry=registry)
        self.pending = Gauge("emails_pending", "Messages waiting to be sent, retries included", registry=registry)
        self.oldest = Gauge("emails_oldest_pending_seconds", "Age of the oldest pending message", registry=registry)
        self.awaiting = Gauge(
            "emails_awaiting_contact", "Participants' messages waiting for their contact details", registry=registry
        )

    def count(self, attempt: service.Attempt) -> None:
        template, language = attempt.message.template, attempt.message.language or ""
        if attempt.status == "sent":
            self.sent.labels(template, language).inc()
        elif attempt.status == "pending":
            self.retried.labels(template, language).inc()
        else:
            assert attempt.failure is not None
            self.failed.labels(template, language, str(attempt.failure.permanent).lower()).inc()


class Sender:
    def __init__(
        self, uow: UnitOfWork[Repository], settings: NotificationsSettings, metrics: SenderMetrics, renderer: Renderer
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._metrics = metrics
        self._renderer = renderer
        self._mailer = SmtpMailer(settings)
        self._policy = domain.RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        #: The regions whose messages this instance sends (None: every region).
        self._regions = settings.served_regions
        self._wake = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Send until `stopping` is set; the message in flight is finished first."""
        assert self._uow.pool is not None
        listener = await listen(self._uow.pool, PENDING_CHANNEL, self._wake)
        backoff = self._settings.send_poll_seconds
        try:
            while not stopping.is_set():
                handled = await self._round(stopping)
                if handled is None:  # the database is away: wait longer each time
                    await pause(stopping, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                backoff = self._settings.send_poll_seconds
                if handled < self._settings.send_batch_size:
                    await pause(stopping, self._settings.send_poll_seconds, self._wake)
        finally:
            await self._mailer.close()
            await self._uow.pool.release(listener)  # resetting the connection drops its listener

    async def _round(self, stopping: asyncio.Event) -> int | None:
        """Send up to one batch; return how many messages were handled, None if the database failed."""
        handled = 0
        try:
            while handled < self._settings.send_batch_size and not stopping.is_set():
                attempt = await service.send_next(
                    self._uow, self._mailer, self._renderer, self._settings.sender, self._policy, self._regions
                )
                if attempt is None:
                    break
                handled += 1
                self._metrics.count(attempt)
            backlog = await service.backlog(self._uow, self._regions)
            self._metrics.pending.set(backlog.pending)
            self._metrics.oldest.set(backlog.oldest_seconds)
            self._metrics.awaiting.set(backlog.awaiting_contact)
        except Exception as exc:  # noqa: BLE001 - the database is away: keep the rows, try again later
            log.warning("sender round failed, will retry", error=repr(exc))
            return None
        finally:
            await self._mailer.close()
        return handled

