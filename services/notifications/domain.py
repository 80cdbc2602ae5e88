"""Notification rules (pure: no I/O): which message an event asks for, and what a failed send means."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Literal
from urllib.parse import quote

from aiosmtplib import SMTPRecipientsRefused, SMTPResponseException

from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, NotificationRequested, SeatOffered

#: Namespace of the notification ids derived from source event ids (never change it).
NAMESPACE = uuid.UUID("c51480a5-a976-47e6-9ff4-6b6df51b4362")

Kind = Literal["assigned", "waitlisted", "unmatched", "seat_offered", "generic"]
Status = Literal["pending", "sent", "failed"]
MatchEvent = MatchAssigned | MatchWaitlisted | MatchUnmatched

_MATCH_KINDS: dict[type[MatchEvent], Kind] = {
    MatchAssigned: "assigned",
    MatchWaitlisted: "waitlisted",
    MatchUnmatched: "unmatched",
}
_ADDRESS = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"',;:]+")
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class NewNotification:
    """One e-mail to send; `data` holds what its template needs besides the recipient (JSON)."""

    id: uuid.UUID
    source_event_id: uuid.UUID
    kind: Kind
    template: str
    region: str
    edition: str
    signup_id: str | None
    correlation_id: uuid.UUID
    name: str
    email: str
    language: str
    data: dict[str, Any]


def notification_id(source_event_id: uuid.UUID) -> uuid.UUID:
    """The same event always yields the same notification id, so a redelivery cannot add a second one."""
    return uuid.uuid5(NAMESPACE, str(source_event_id))


def from_match(event: MatchEvent) -> NewNotification:
    kind = _MATCH_KINDS[type(event)]
    if isinstance(event, MatchAssigned):
        data: dict[str, Any] = {"offer": event.offer.model_dump(mode="json"), "rank": event.rank}
    elif isinstance(event, MatchWaitlisted):
        data = {"position": event.position}
    else:
        data = {"reason_code": event.reason_code}
    return NewNotification(
        id=notification_id(event.event_id),
        source_event_id=event.event_id,
        kind=kind,
        template=f"match_{kind}",
        region=event.region,
        edition=event.edition,
        signup_id=event.signup_id,
        correlation_id=event.correlation_id,
        name=event.recipient.name,
        email=str(event.recipient.email),
        language=event.recipient.language,
        data=data,
    )


def from_seat_offer(event: SeatOffered, matching_url: str) -> NewNotification:
    """What is offered, until when, and the matching service's addresses to accept or decline it."""
    answer = f"{matching_url.rstrip('/')}/editions/{quote(event.edition)}/seat-offers/{quote(event.signup_id)}"
    return NewNotification(
        id=notification_id(event.event_id),
        source_event_id=event.event_id,
        kind="seat_offered",
        template="seat_offered",
        region=event.region,
        edition=event.edition,
        signup_id=event.signup_id,
        correlation_id=event.correlation_id,
        name=event.recipient.name,
        email=str(event.recipient.email),
        language=event.recipient.language,
        data={
            "offer": event.offer.model_dump(mode="json"),
            "rank": event.rank,
            "expires_at": event.expires_at.isoformat(),
            "accept_url": f"{answer}/accept",
            "decline_url": f"{answer}/decline",
        },
    )


def from_request(event: NotificationRequested) -> NewNotification:
    """A message another service asked for; its own notification_id is the id (idempotent per request)."""
    return NewNotification(
        id=event.notification_id,
        source_event_id=event.event_id,
        kind="generic",
        template=event.template,
        region=event.region,
        edition=event.edition,
        signup_id=None,
        correlation_id=event.correlation_id,
        name=event.recipient.name,
        email=str(event.recipient.email),
        language=event.recipient.language,
        data=dict(event.context),
    )


def message_id(notification: uuid.UUID, sender: str) -> str:
    """A Message-ID that is the same for every attempt, so mail clients can drop a duplicate."""
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    return f"<{notification}@{domain if at and domain else 'estafette.local'}>"


# --- failures -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    permanent: bool
    #: Safe to store, log and publish: e-mail addresses are replaced by "<address>".
    error: str


def redact(text: str) -> str:
    """Remove e-mail addresses (SMTP replies often quote the recipient) and bound the length."""
    return _ADDRESS.sub("<address>", " ".join(text.split()))[:MAX_ERROR_LENGTH]


def classify(exc: BaseException) -> Failure:
    """Permanent: a 5xx reply, or an error retrying cannot fix (bad address, template bug).
    Temporary: a 4xx reply, or the server being unreachable, slow or hanging up."""
    if isinstance(exc, SMTPRecipientsRefused):
        replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        permanent = all(r.code >= 500 for r in exc.recipients)
        return Failure(permanent, redact(f"recipient refused: {replies}"))
    if isinstance(exc, SMTPResponseException):
        return Failure(exc.code >= 500, redact(f"{type(exc).__name__}: {exc.code} {exc.message}"))
    if isinstance(exc, OSError | TimeoutError):  # refused, reset, disconnected, timed out
        return Failure(False, redact(f"{type(exc).__name__}: {exc}"))
    return Failure(True, redact(f"{type(exc).__name__}: {exc}"))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th (1-based) failed attempt: base, 2x, 4x, ... capped."""
        return min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Outcome:
    status: Literal["pending", "failed"]
    #: Seconds until the next attempt when the message stays pending.
    retry_in: float | None = None


def after_failure(failure: Failure, attempt: int, policy: RetryPolicy) -> Outcome:
    """What happens to a message whose `attempt`-th send failed."""
    if failure.permanent or attempt >= policy.max_attempts:
        return Outcome("failed")
    return Outcome("pending", policy.delay(attempt))
