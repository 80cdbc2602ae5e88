"""In-memory stand-ins for the notifications repository and the SMTP mailer (service-layer unit tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from services.notifications.domain import Backlog, Due, NewNotification, NotificationView, Status


@dataclass
class Row:
    """One stored message, as the notifications table holds it."""

    message: NewNotification
    created_at: datetime
    status: Status = "pending"
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    sent_at: datetime | None = None
    failed_at: datetime | None = None


class FakeRepository:
    """Same methods as services.notifications.repository.Repository, over a dict. `now` is the clock."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Row] = {}
        self.wakes = 0
        self.now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

    async def insert(self, n: NewNotification) -> bool:
        if n.id in self.rows or any(r.message.source_event_id == n.source_event_id for r in self.rows.values()):
            return False
        self.rows[n.id] = Row(n, created_at=self.now, next_attempt_at=self.now)
        return True

    async def wake_sender(self) -> None:
        self.wakes += 1

    async def claim_due(self) -> Due | None:
        due = [r for r in self.rows.values() if r.status == "pending" and r.next_attempt_at <= self.now]
        if not due:
            return None
        row = min(due, key=lambda r: (r.next_attempt_at, r.created_at))
        return Due(**vars(row.message), attempts=row.attempts)

    async def mark_sent(self, notification_id: uuid.UUID) -> None:
        row = self.rows[notification_id]
        row.status, row.attempts, row.sent_at = "sent", row.attempts + 1, self.now

    async def mark_retry(self, notification_id: uuid.UUID, error: str, retry_in: float) -> None:
        row = self.rows[notification_id]
        row.attempts, row.last_error = row.attempts + 1, error
        row.next_attempt_at = self.now + timedelta(seconds=retry_in)

    async def mark_failed(self, notification_id: uuid.UUID, error: str) -> None:
        row = self.rows[notification_id]
        row.status, row.attempts, row.last_error, row.failed_at = "failed", row.attempts + 1, error, self.now

    async def get(self, notification_id: uuid.UUID) -> NotificationView | None:
        row = self.rows.get(notification_id)
        return _view(row) if row else None

    async def search(
        self, *, region: str | None, edition: str | None, signup_id: str | None, status: Status | None,
        after: uuid.UUID | None, limit: int,
    ) -> list[NotificationView]:
        rows = sorted(self.rows.values(), key=lambda r: (r.created_at, r.message.id))
        if after is not None:
            start = self.rows[after]
            rows = [r for r in rows if (r.created_at, r.message.id) > (start.created_at, after)]
        rows = [
            r for r in rows
            if region in (None, r.message.region) and edition in (None, r.message.edition)
            and signup_id in (None, r.message.signup_id)
            and status in (None, r.status)
        ]
        return [_view(r) for r in rows[:limit]]

    async def backlog(self) -> Backlog:
        pending = [r.created_at for r in self.rows.values() if r.status == "pending"]
        return Backlog(len(pending), (self.now - min(pending)).total_seconds() if pending else 0.0)

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _view(row: Row) -> NotificationView:
    m = row.message
    return NotificationView(
        id=m.id, kind=m.kind, template=m.template, region=m.region, edition=m.edition, signup_id=m.signup_id,
        language=m.language, status=row.status, attempts=row.attempts, last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None, created_at=row.created_at,
        sent_at=row.sent_at, failed_at=row.failed_at, source_event_id=m.source_event_id,
        correlation_id=m.correlation_id,
    )


class FakeMailer:
    """Accepts every message, or raises the next queued error (one per send)."""

    def __init__(self, *errors: BaseException) -> None:
        self.sent: list[EmailMessage] = []
        self.errors = list(errors)

    async def send(self, message: EmailMessage) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)
