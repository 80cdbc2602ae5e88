"""The sender: a background loop that sends due messages at the speed of the mail server, woken by
NOTIFY or by polling (issue 13).

1. **Claim** (`service.claim`, one short transaction): up to `send_batch_size` due messages become
   `sending` under a lease (`send_lease_seconds`) — no row lock is held while SMTP works. Messages
   that cannot be sent (contact erased, no address) fail right there.
2. **Send** (`service.send_claimed`, no transaction): at most `smtp_concurrency` (≤ 10) messages at a
   time, each over a reused connection of an SMTP pool (`mail.SmtpPool`).
3. **Record** (`service.record_outcomes`): a recorder task commits the outcomes that are ready in one
   transaction per batch (status, attempts, NotificationSent/Failed through the outbox).

A send slot is taken before a message is handed to SMTP and given back only once its outcome is
committed, so at most `smtp_concurrency` messages are ever accepted by the server but not yet
recorded: the duplicates a crash (kill -9) can cause. Such messages stay `sending` until their lease
runs out and are then sent again, with the same Message-ID (`domain.message_id`). The next claim is
made while the previous batch is still being sent, so the connections stay busy.

A message is not handed to SMTP once half its lease has passed (it is handed back instead), so a
slow server does not make two senders send it. On stop: no new sends, the sends in flight get a
moment to finish and their outcomes are recorded, the claimed messages not sent are handed back
(due at once), the connections are closed.

An instance started for some regions (`--regions a,b`, `settings.served_regions`) sends only those
regions' messages, so that it is never held up by another region's burst; instances of different
regions may share the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from estafette.runtime.loops import listen, pause, unlisten
from estafette.runtime.uow import UnitOfWork
from services.notifications import domain, service
from services.notifications.config import NotificationsSettings
from services.notifications.mail import SmtpPool
from services.notifications.rendering import Renderer
from services.notifications.repository import PENDING_CHANNEL, Repository

log = structlog.get_logger(__name__)
MAX_BACKOFF_SECONDS = 5.0
#: How often, at most, the pending gauges are refreshed while the sender is busy.
GAUGE_SECONDS = 1.0
#: On stop: how long the sends in flight may take to finish (the runtime gives the loops 2 s).
STOP_SEND_SECONDS = 1.0


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
        self.in_flight = Gauge(
            "emails_in_flight", "Messages handed to SMTP whose outcome is not recorded yet", registry=registry
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
        self._pool = SmtpPool(settings)
        self._policy = domain.RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        #: The regions whose messages this instance sends (None: every region).
        self._regions = settings.served_regions
        self._wake = asyncio.Event()
        #: Taken before a message goes to SMTP, given back when its outcome is committed.
        self._slots = asyncio.Semaphore(settings.smtp_concurrency)
        self._outcomes: asyncio.Queue[domain.Outcome] = asyncio.Queue()
        self._sends: set[asyncio.Task[None]] = set()
        self._unrecorded = 0
        self._gauges_at = 0.0

    @property
    def pool(self) -> SmtpPool:
        return self._pool

    async def run(self, stopping: asyncio.Event) -> None:
        """Send until `stopping` is set; what is in flight then is finished and recorded, or handed back."""
        assert self._uow.pool is not None
        listener = await listen(self._uow.pool, PENDING_CHANNEL, self._wake)
        recorder = asyncio.create_task(self._record_loop(stopping))
        backoff = self._settings.send_poll_seconds
        try:
            while not stopping.is_set():
                claimed = await self._claim()
                if claimed is None:  # the database is away: wait longer each time
                    await pause(stopping, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                backoff = self._settings.send_poll_seconds
                await self._dispatch(claimed, stopping)
                if len(claimed.messages) + len(claimed.ended) < self._settings.send_batch_size:
                    if not self._sends and not self._unrecorded:
                        await self._gauges(force=True)
                        await self._pool.close()  # nothing left to send: no idle connections kept open
                    await pause(stopping, self._settings.send_poll_seconds, self._wake)
        finally:
            await self._finish(recorder)
            unlisten(PENDING_CHANNEL, self._wake)
            await self._uow.pool.release(listener)  # resetting the connection drops its listener

    async def _claim(self) -> service.Claim | None:
        try:
            claimed = await service.claim(
                self._uow, self._settings.send_batch_size, self._settings.send_lease_seconds, self._policy,
                self._regions,
            )
        except Exception as exc:  # noqa: BLE001 - the database is away: keep the rows, try again later
            log.warning("sender claim failed, will retry", error=repr(exc))
            return None
        for attempt in claimed.ended:
            self._metrics.count(attempt)
        await self._gauges()
        return claimed

    async def _dispatch(self, claimed: service.Claim, stopping: asyncio.Event) -> None:
        """Hand the claimed messages to SMTP as send slots become free; those not sent before the
        sender stops or half the lease has passed are handed back."""
        give_up_at = time.monotonic() + self._settings.send_lease_seconds / 2
        for i, due in enumerate(claimed.messages):
            await self._slots.acquire()
            if stopping.is_set() or time.monotonic() > give_up_at:
                self._slots.release()
                await self._hand_back(claimed, [m.id for m in claimed.messages[i:]])
                return
            self._unrecorded += 1
            self._metrics.in_flight.set(self._unrecorded)
            task = asyncio.create_task(self._send(due, claimed.lease))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, due: domain.Due, lease: uuid.UUID) -> None:
        with structlog.contextvars.bound_contextvars(notification_id=str(due.id), correlation_id=str(due.correlation_id)):
            try:
                failure = await service.send_claimed(due, self._pool, self._renderer, self._settings.sender)
            except Exception as exc:  # noqa: BLE001 - a bug must not keep the slot: record it as failed
                failure = domain.Failure(True, domain.redact(f"{type(exc).__name__}: {exc}"))
                log.error("e-mail send crashed", error=failure.error)  # redacted: no address, no traceback
        self._outcomes.put_nowait(domain.Outcome(due, lease, failure))

    async def _record_loop(self, stopping: asyncio.Event) -> None:
        """Commit the outcomes that are ready, one transaction per batch; give their slots back."""
        backoff = self._settings.send_poll_seconds
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            while True:
                try:
                    attempts = await service.record_outcomes(self._uow, batch, self._policy)
                    break
                except Exception as exc:  # noqa: BLE001 - the database is away: the slots stay taken
                    if stopping.is_set():  # not recorded: sent again after the lease (bounded)
                        log.warning("sender outcomes not recorded at stop", error=repr(exc), messages=len(batch))
                        attempts = []
                        break
                    log.warning("sender could not record outcomes, will retry", error=repr(exc))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            backoff = self._settings.send_poll_seconds
            for attempt in attempts:
                self._metrics.count(attempt)
            self._unrecorded -= len(batch)
            self._metrics.in_flight.set(self._unrecorded)
            for _ in batch:
                self._slots.release()

    async def _hand_back(self, claimed: service.Claim, ids: list[uuid.UUID]) -> None:
        try:
            await service.release(self._uow, claimed.lease, ids)
        except Exception as exc:  # noqa: BLE001 - not handed back: due again when the lease runs out
            log.warning("sender could not hand back claimed messages", error=repr(exc), messages=len(ids))

    async def _finish(self, recorder: asyncio.Task[None]) -> None:
        """Let the sends in flight finish (briefly) and record their outcomes; then close."""
        if self._sends:
            _, late = await asyncio.wait(set(self._sends), timeout=STOP_SEND_SECONDS)
            for task in late:  # outcome unknown: the message stays `sending` until its lease runs out
                task.cancel()
                self._unrecorded -= 1
                self._slots.release()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_SEND_SECONDS / 2):
                while self._unrecorded > 0:
                    await asyncio.sleep(0.01)
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder
        try:
            async with asyncio.timeout(STOP_SEND_SECONDS / 2):
                await self._pool.close()
        except TimeoutError:  # a server slow to answer QUIT
            self._pool.abort()

    async def _gauges(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._gauges_at < GAUGE_SECONDS:
            return
        self._gauges_at = now
        try:
            backlog = await service.backlog(self._uow, self._regions)
        except Exception as exc:  # noqa: BLE001 - a gauge is not worth failing for
            log.debug("sender gauges not refreshed", error=repr(exc))
            return
        self._metrics.pending.set(backlog.pending)
        self._metrics.oldest.set(backlog.oldest_seconds)
        self._metrics.awaiting.set(backlog.awaiting_contact)
