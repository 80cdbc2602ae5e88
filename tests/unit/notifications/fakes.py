"""In-memory stand-ins for the notifications repository and the SMTP mailer (service-layer unit tests)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from services.notifications.domain import (
    ApprovalState,
    Backlog,
    Contact,
    Due,
    Edition,
    EditionStatus,
    Ended,
    NewNotification,
    NotificationView,
    Offer,
    Planned,
    Signup,
    SignupStatus,
    Status,
    Visit,
    Visitor,
)
from services.notifications.rendering import Rendered


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
        # --- the journey's copies (editions, offers, sign-ups, visits) and scheduled steps ---
        self.editions: dict[str, Edition] = {}
        self.offers: dict[str, Offer] = {}
        self.signups: dict[str, Signup] = {}
        self.visit_rows: dict[tuple[str, str], Visit] = {}
        #: The editions whose lock was taken, in order.
        self.edition_locks: list[str] = []
        #: Scheduled steps (kind, key) -> the last plan that scheduled them (cancelled: removed).
        self.steps: dict[tuple[str, str], Planned] = {}
        #: Every plan, in order (scheduled and cancelled).
        self.plans: list[Planned] = []
        #: The number of messages of each `insert_all` call, in order.
        self.insert_calls: list[int] = []
        #: The sign-up ids of each `lock_participants` call (one statement each), in order.
        self.lock_calls: list[list[str]] = []
        #: The repository calls that read or keep sign-ups, contacts and offers, by name, in order (one
        #: statement each in the real repository; `save_contacts` two): what a bulk call saves over
        #: its per-event form.
        self.calls: list[str] = []
        #: Webhook deliveries recorded (`record_deliveries`): (region, event id, event type), in order.
        self.deliveries: list[tuple[str, uuid.UUID, str]] = []

    async def insert(self, n: NewNotification, status: Status, language: str | None, error: str | None = None) -> bool:
        if n.id in self.rows:
            return False
        self.rows[n.id] = Row(
            n, created_at=self.now, language=language, status=status, next_attempt_at=self.now, last_error=error,
            failed_at=self.now if status == "failed" else None,
        )
        return True

    async def insert_all(self, rows: list[tuple[NewNotification, Status, str | None, str | None]]) -> set[uuid.UUID]:
        #: Each call's number of messages (one statement per call in the real repository).
        self.insert_calls.append(len(rows))
        return {n.id for n, status, language, error in rows if await self.insert(n, status, language, error)}

    async def wake_sender(self) -> None:
        self.wakes += 1

    # --- contacts --------------------------------------------------------------------------------
    async def lock_participant(self, signup_id: str) -> None:
        self.locks.append(signup_id)

    async def lock_participants(self, signup_ids: list[str]) -> None:
        self.lock_calls.append(list(signup_ids))
        self.locks.extend(signup_ids)

    async def contacts_of(self, signup_ids: list[str]) -> dict[str, Contact]:
        return {s: self.contacts[s] for s in signup_ids if s in self.contacts}

    async def erased_among(self, signup_ids: list[str]) -> set[str]:
        return {s for s in signup_ids if s in self.erased_ids}

    async def contact(self, signup_id: str) -> Contact | None:
        return self.contacts.get(signup_id)

    async def erased(self, signup_id: str) -> bool:
        return signup_id in self.erased_ids

    async def save_contact(self, contact: Contact) -> None:
        self.calls.append("save_contact")
        self._keep_contact(contact)

    async def save_contacts(self, contacts: list[Contact]) -> None:
        self.calls.append("save_contacts")
        # The real upsert (`ON CONFLICT DO UPDATE`) cannot touch one row twice in a statement.
        assert len({c.signup_id for c in contacts}) == len(contacts), "one contact per sign-up id"
        for contact in contacts:
            self._keep_contact(contact)

    def _keep_contact(self, contact: Contact) -> None:
        self.contacts[contact.signup_id] = contact
        self.erased_ids.discard(contact.signup_id)

    async def release_awaiting_all(self, languages: dict[str, str]) -> int:
        self.calls.append("release_awaiting_all")
        return sum(self._release(s, language) for s, language in languages.items())

    async def release_awaiting(self, signup_id: str, language: str) -> int:
        self.calls.append("release_awaiting")
        return self._release(signup_id, language)

    def _release(self, signup_id: str, language: str) -> int:
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

    # --- the journey -----------------------------------------------------------------------------
    async def lock_edition(self, edition: str) -> None:
        self.edition_locks.append(edition)

    async def save_edition(self, edition: Edition) -> None:
        known = self.editions.get(edition.edition)
        status, reason = (known.status, known.reason) if known else ("open", "")
        self.editions[edition.edition] = dataclasses.replace(edition, status=status, reason=reason)

    async def set_edition_status(self, edition: str, region: str, status: EditionStatus, reason: str = "") -> None:
        known = self.editions.get(edition) or Edition(edition, region, edition)
        if known.status != "cancelled":
            self.editions[edition] = dataclasses.replace(known, status=status, reason=reason)

    async def edition(self, edition: str) -> Edition | None:
        return self.editions.get(edition)

    async def save_offer(self, offer: Offer) -> None:
        known = self.offers.get(offer.offer_id)
        status, reason = (known.status, known.reason) if known else ("published", "")
        self.offers[offer.offer_id] = dataclasses.replace(offer, status=status, reason=reason)

    async def cancel_offer(self, offer_id: str, reason: str) -> bool:
        known = self.offers.get(offer_id)
        if known is None or known.cancelled:
            return False
        self.offers[offer_id] = dataclasses.replace(known, status="cancelled", reason=reason)
        return True

    async def offer(self, offer_id: str) -> Offer | None:
        self.calls.append("offer")
        return self.offers.get(offer_id)

    async def offers_by_id(self, offer_ids: list[str]) -> dict[str, Offer | None]:
        self.calls.append("offers_by_id")
        return {o: self.offers.get(o) for o in offer_ids}

    async def offers_of(self, edition: str) -> list[Offer]:
        return sorted((o for o in self.offers.values() if o.edition == edition), key=lambda o: o.offer_id)

    async def save_signup(self, signup: Signup) -> None:
        self.calls.append("save_signup")
        self._keep_signup(signup)

    def _keep_signup(self, signup: Signup) -> None:
        known = self.signups.get(signup.signup_id)
        self.signups[signup.signup_id] = (
            dataclasses.replace(known, org=signup.org, language=signup.language, choices=signup.choices)
            if known else signup
        )

    async def save_signups(self, signups: list[Signup]) -> None:
        self.calls.append("save_signups")
        for signup in signups:
            self._keep_signup(signup)

    async def signup(self, signup_id: str) -> Signup | None:
        return self.signups.get(signup_id)

    async def signups_by_id(self, signup_ids: list[str]) -> dict[str, Signup]:
        return {s: self.signups[s] for s in signup_ids if s in self.signups}

    async def signups_of(self, edition: str) -> list[Signup]:
        return sorted((s for s in self.signups.values() if s.edition == edition), key=lambda s: s.signup_id)

    async def change_signup(
        self, signup_id: str, *, choices: list[str] | None = None, status: SignupStatus | None = None,
        approval: ApprovalState | None = None,
    ) -> None:
        known = self.signups.get(signup_id)
        if known is None:
            return
        self.signups[signup_id] = dataclasses.replace(
            known, choices=tuple(choices) if choices is not None else known.choices, status=status or known.status,
            approval=approval or known.approval,
        )

    async def save_visit(self, visit: Visit) -> None:
        self.visit_rows[(visit.signup_id, visit.offer_id)] = visit

    async def save_visits(self, visits: list[Visit]) -> None:
        for visit in visits:
            await self.save_visit(visit)

    async def end_visit(self, signup_id: str, offer_id: str, only: str | None = None) -> None:
        visit = self.visit_rows.get((signup_id, offer_id))
        if visit is not None and visit.status != "ended" and only in (None, visit.status):
            self.visit_rows[(signup_id, offer_id)] = dataclasses.replace(visit, status="ended")

    async def visits(
        self, *, signup_id: str | None = None, offer_id: str | None = None, edition: str | None = None
    ) -> list[Visit]:
        return sorted(
            (v for v in self.visit_rows.values() if v.status != "ended" and signup_id in (None, v.signup_id)
             and offer_id in (None, v.offer_id) and edition in (None, v.edition)),
            key=lambda v: (v.signup_id, v.offer_id),
        )

    async def visitors(self, signup_ids: list[str]) -> dict[str, Visitor]:
        return {
            c.signup_id: Visitor(c.signup_id, c.name, c.org, c.learning_goal)
            for c in self.contacts.values() if c.signup_id in signup_ids
        }

    async def plan(self, step: Planned) -> None:
        self.plans.append(step)
        if step.due_at is None:
            self.steps.pop((step.kind, step.key), None)
        else:
            self.steps[(step.kind, step.key)] = step

    async def plan_all(self, steps: Iterable[Planned]) -> None:
        for step in steps:
            await self.plan(step)

    # --- webhooks (only what the consumers' tap calls) ------------------------------------------------
    async def record_deliveries(self, region: str, event_id: uuid.UUID, event_type: str, body: str, now: datetime) -> int:
        """As if every region had one endpoint subscribed to every type: one delivery per event id."""
        if any(d[1] == event_id for d in self.deliveries):
            return 0
        self.deliveries.append((region, event_id, event_type))
        return 1



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


class FakeRenderer:
    """Renders every kind: records (kind, language, name, data) and makes a subject of them (the real
    templates are tested in test_rendering.py)."""

    def __init__(self) -> None:
        self.rendered: list[tuple[str, str, str, dict]] = []

    def render(self, kind: str, language: str, name: str, data: dict) -> Rendered:
        self.rendered.append((kind, language, name, data))
        return Rendered(f"{kind} {language}", f"{name}\n", f"<p>{name}</p>")
