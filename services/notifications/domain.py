"""Notification rules (pure: no I/O): which message an event asks for, and what a failed send means.

The SMTP side (which exceptions are permanent) lives in the mail adapter (`mail.classify`); here a
failure is only a `Failure(permanent, error)`, and `after_failure` decides what happens next.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Literal

from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, NotificationRequested, SeatOffered

#: Namespace of the notification ids derived from source event ids (never change it).
NAMESPACE = uuid.UUID("c51480a5-a976-47e6-9ff4-6b6df51b4362")

Kind = Literal["assigned", "waitlisted", "unmatched", "seat_offered", "generic"]
Status = Literal["pending", "sent", "failed"]
#: How a participant can answer a seat offer (each through its own signed link).
Answer = Literal["accept", "decline"]
ANSWERS: tuple[Answer, ...] = ("accept", "decline")
#: The address of the page where a participant gives `answer` to the seat offer of (signup_id,
#: edition_id) on offer_id: made by the links adapter (`links.SeatOfferLinks`), which signs it.
AnswerLink = Callable[[Answer, str, str, str], str]
MatchEvent = MatchAssigned | MatchWaitlisted | MatchUnmatched
MessageEvent = MatchEvent | SeatOffered | NotificationRequested

_ADDRESS = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"',;:]+")
MAX_ERROR_LENGTH = 500


# --- messages -----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Due(NewNotification):
    """A pending message whose time has come, held by the sender that claimed it."""

    #: Attempts made before this one.
    attempts: int = 0


@dataclass(frozen=True)
class NotificationView:
    """What organisers may see of a message: status and tracing; no body, no name, no address."""

    id: uuid.UUID
    kind: Kind
    template: str
    region: str
    edition: str
    signup_id: str | None
    language: str
    status: Status
    attempts: int
    last_error: str | None
    #: Only while pending.
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    source_event_id: uuid.UUID
    correlation_id: uuid.UUID


@dataclass(frozen=True)
class NotificationPage:
    items: list[NotificationView]
    #: The last item's id when the page is full (there may be more), else None.
    next_after: uuid.UUID | None


@dataclass(frozen=True)
class Backlog:
    pending: int
    #: Age of the oldest pending message in seconds; 0 when none.
    oldest_seconds: float


def notification_id(source_event_id: uuid.UUID) -> uuid.UUID:
    """The same event always yields the same notification id, so a redelivery cannot add a second one."""
    return uuid.uuid5(NAMESPACE, str(source_event_id))


def page(items: list[NotificationView], limit: int) -> NotificationPage:
    """A full page may have a successor: continue after its last item."""
    return NotificationPage(items, items[-1].id if items and len(items) == limit else None)


def _assigned(event: MatchAssigned) -> dict[str, Any]:
    return {"offer": event.offer.model_dump(mode="json"), "rank": event.rank}


def _waitlisted(event: MatchWaitlisted) -> dict[str, Any]:
    return {"position": event.position}


def _unmatched(event: MatchUnmatched) -> dict[str, Any]:
    return {"reason_code": event.reason_code}


#: Which message each match event asks for: its kind and the template data taken from the event.
MATCH_MESSAGES: dict[type[Any], tuple[Kind, Callable[[Any], dict[str, Any]]]] = {
    MatchAssigned: ("assigned", _assigned),
    MatchWaitlisted: ("waitlisted", _waitlisted),
    MatchUnmatched: ("unmatched", _unmatched),
}


def _message(
    event: MessageEvent, *, nid: uuid.UUID, kind: Kind, template: str, signup_id: str | None, data: dict[str, Any]
) -> NewNotification:
    return NewNotification(
        id=nid, source_event_id=event.event_id, kind=kind, template=template, region=event.region,
        edition=event.edition, signup_id=signup_id, correlation_id=event.correlation_id,
        name=event.recipient.name, email=str(event.recipient.email), language=event.recipient.language,
        data=data,
    )


def from_match(event: MatchEvent) -> NewNotification:
    """An assignment, a place on the waiting list or no place: one message of that kind."""
    kind, data = MATCH_MESSAGES[type(event)]
    return _message(
        event, nid=notification_id(event.event_id), kind=kind, template=f"match_{kind}",
        signup_id=event.signup_id, data=data(event),
    )


def from_seat_offer(event: SeatOffered, answer_link: AnswerLink) -> NewNotification:
    """What is offered, until when, and the addresses of the pages where the participant accepts or
    declines it (`answer_link`, one per answer: the links are part of the e-mail, so they are stored
    with the message)."""
    data = {
        "offer": event.offer.model_dump(mode="json"),
        "rank": event.rank,
        "expires_at": event.expires_at.isoformat(),
        **{f"{answer}_url": answer_link(answer, event.signup_id, event.edition, event.offer.offer_id) for answer in ANSWERS},
    }
    return _message(
        event, nid=notification_id(event.event_id), kind="seat_offered", template="seat_offered",
        signup_id=event.signup_id, data=data,
    )


def from_request(event: NotificationRequested) -> NewNotification:
    """A message another service asked for; its own notification_id is the id (idempotent per request)."""
    return _message(
        event, nid=event.notification_id, kind="generic", template=event.template, signup_id=None,
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


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th (1-based) failed attempt: base, 2x, 4x, ... capped."""
        return min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))


@dataclass(frozen=True)
class RetryDecision:
    """What happens to a message after a failed attempt: retry later, or give up."""

    status: Literal["pending", "failed"]
    #: Seconds until the next attempt when the message stays pending.
    retry_in: float | None = None


def after_failure(failure: Failure, attempt: int, policy: RetryPolicy) -> RetryDecision:
    """A permanent failure, or a temporary one on the last attempt, fails the message; otherwise it
    is retried after the policy's back-off."""
    if failure.permanent or attempt >= policy.max_attempts:
        return RetryDecision("failed")
    return RetryDecision("pending", policy.delay(attempt))
