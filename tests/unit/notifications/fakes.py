"""In-memory stand-ins for the notifications repository and the SMTP mailer (service-layer unit tests)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from services.notifications.domain import Backlog, Contact, Due, Ended, NewNotification, NotificationView, Status


@dataclass
class Row:
    """One stored message, as the notifications table holds it (`message` holds the recipient columns)."""

    message: NewNotification
    created_at: datetime
    language: str | None = None
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
        self.contacts: dict[str, Contact] = {}
        self.erased_ids: set[str] = set()
        #: Raw values of dead-lettered participants records (the runtime's `dead_letters` table).
        self.dead_letters: list[bytes] = []
        #: The sign-up ids whose lock was taken, in order.
        self.locks: list[str] = []
        self.wakes = 0
        self.now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

    async def insert(self, n: NewNotification, status: Status, language: str | None, error: str | None = None) -> bool:
        if n.id in self.rows or any(r.message.source_event_id == n.source_event_id for r in self.rows.values()):
            return False
        self.rows[n.id] = Row(
            n, created_at=self.now, language=language, status=status, next_attempt_at=self.now, last_error=error,
            failed_at=self.now if status == "failed" else None,
        )
        return True

    async def wake_sender(self) -> None:
        self.wakes += 1

    # --- contacts --------------------------------------------------------------------------------
    async def lock_participant(self, signup_id: str) -> None:
        self.locks.append(signup_id)

    async def contact(self, signup_id: str) -> Contact | None:
        return self.contacts.get(signup_id)

    async def erased(self, signup_id: str) -> bool:
        return signup_id in self.erased_ids

    async def save_contact(self, contact: Contact) -> None:
        self.contacts[contact.signup_id] = contact
        self.erased_ids.discard(contact.signup_id)

    async def release_awaiting(self, signup_id: str, language: str) -> int:
        rows = [r for r in self.rows.values() if r.message.signup_id == signup_id and r.status == "awaiting_contact"]
        for row in rows:
            row.status, row.language, row.next_attempt_at = "pending", language, self.now
        return len(rows)

    async def erase_contact(self, signup_id: str) -> None:
        self.contacts.pop(signup_id, None)
        self.erased_ids.add(signup_id)

    async def end_unsent(self, signup_id: str, error: str) -> list[Ended]:
        ended = []
        for row in self.rows.values():
            if row.message.signup_id == signup_id and row.status in ("awaiting_contact", "pending"):
                row.status, row.last_error, row.failed_at = "failed", error, self.now
                m = row.message
                ended.append(Ended(m.id, m.template, m.region, m.edition, m.signup_id, m.correlation_id))
        return sorted(ended, key=lambda e: str(e.id))

    async def clear_recipients(self, signup_id: str) -> None:
        for row in self.rows.values():
            if row.message.signup_id == signup_id:
                row.message = dataclasses.replace(row.message, name=None, email=None)

    async def forget_dead_letters(self, signup_id: str) -> int:
        kept = [v for v in self.dead_letters if json.dumps(signup_id).encode() not in v]
        forgotten, self.dead_letters = len(self.dead_letters) - len(kept), kept
        return forgotten

    # --- sending ---------------------------------------------------------------------------------
    async def claim_due(self, regions: tuple[str, ...] | None = None) -> Due | None:
        due = [
            r for r in self.rows.values()
            if r.status == "pending" and r.next_attempt_at <= self.now and (regions is None or r.message.region in regions)
        ]
        if not due:
            return None
        row = min(due, key=lambda r: (r.next_attempt_at, r.created_at))
        m = row.message
        contact = self.contacts.get(m.signup_id) if m.signup_id else None
        recipient = (contact.name, contact.email, contact.language) if contact else (m.name, m.email, row.language)
        return Due(**{**vars(m), **dict(zip(("name", "email", "language"), recipient))}, attempts=row.attempts)

    async def mark_sent(self, notification_id: uuid.UUID, language: str | None) -> None:
        row = self.rows[notification_id]
        row.status, row.attempts, row.sent_at = "sent", row.attempts + 1, self.now
        row.language = language or row.language

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

    async def backlog(self, regions: tuple[str, ...] | None = None) -> Backlog:
        rows = [r for r in self.rows.values() if regions is None or r.message.region in regions]
        pending = [r.created_at for r in rows if r.status == "pending"]
        awaiting = sum(r.status == "awaiting_contact" for r in rows)
        return Backlog(len(pending), (self.now - min(pending)).total_seconds() if pending else 0.0, awaiting)

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _view(row: Row) -> NotificationView:
    m = row.message
    return NotificationView(
        id=m.id, kind=m.kind, template=m.template, region=m.region, edition=m.edition, signup_id=m.signup_id,
        language=row.language, status=row.status, attempts=row.attempts, last_error=row.last_error,
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
