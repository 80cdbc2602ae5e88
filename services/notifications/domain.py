"""Notification rules (pure: no I/O): which message an event asks for, whom it goes to, and what a
failed send means.

A participant's contact details (name, e-mail address, language) come only from the region's
participants topic (`ParticipantRegistered`, erased by a tombstone): a message about a sign-up names the
sign-up id, and its recipient is looked up when it is sent. `addressing` decides whether such a message
can be queued (`pending`), must wait for the contact (`awaiting_contact`) or can never be sent (the
contact was erased: `failed`).

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

from schemas import (
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    ParticipantRegistered,
    SeatOffered,
)

#: Namespace of the notification ids derived from source event ids (never change it).
NAMESPACE = uuid.UUID("c51480a5-a976-47e6-9ff4-6b6df51b4362")

Kind = Literal["assigned", "waitlisted", "unmatched", "seat_offered", "generic"]
#: `awaiting_contact`: a participant's message whose contact details have not arrived yet (the
#: participants topic is read apart from the match topic); it becomes `pending` when they arrive.
Status = Literal["awaiting_contact", "pending", "sent", "failed"]
#: How a participant can answer a seat offer (each through its own signed link).
Answer = Literal["accept", "decline"]
ANSWERS: tuple[Answer, ...] = ("accept", "decline")
#: The address of the page where a participant gives `answer` to the seat offer of (signup_id,
#: edition_id) on offer_id: made by the links adapter (`links.SeatOfferLinks`), which signs it.
AnswerLink = Callable[[Answer, str, str, str], str]
MatchEvent = MatchAssigned | MatchWaitlisted | MatchUnmatched

_ADDRESS = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"',;:]+")
MAX_ERROR_LENGTH = 500
#: Why a participant's message was not sent: their contact details were erased (a tombstone on the
#: participants topic) before it could be. Stored as `last_error` and published in NotificationFailed.
CONTACT_ERASED = "contact_erased: the participant's contact details were erased before the message was sent"
#: A queued message found without any address when its turn came (it cannot be sent, retrying won't help).
NO_ADDRESS = "no_address: no contact details for this message"


# --- messages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewNotification:
    """One e-mail to send; `data` holds what its template needs besides the recipient (JSON).

    A participant's message (about `signup_id`) carries no recipient: name, e-mail and language are
    None and are looked up in the participant's contact when it is sent. Only a requested message
    (`NotificationRequested`, no sign-up) carries its own recipient."""

    id: uuid.UUID
    source_event_id: uuid.UUID
    kind: Kind
    template: str
    region: str
    edition: str
    signup_id: str | None
    correlation_id: uuid.UUID
    name: str | None
    email: str | None
    language: str | None
    data: dict[str, Any]

    @property
    def for_participant(self) -> bool:
        """Addressed through the sign-up's contact (not a recipient of its own)."""
        return self.signup_id is not None and self.email is None


@dataclass(frozen=True)
class Due(NewNotification):
    """A pending message whose time has come, held by the sender that claimed it, with its recipient
    as it is now (a participant's current contact details; None when there are none)."""

    #: Attempts made before this one.
    attempts: int = 0


@dataclass(frozen=True)
class Contact:
    """A participant's contact details (personal data: never logged, never served by the API), kept
    from the region's participants topic until a tombstone erases them."""

    signup_id: str
    region: str
    edition: str
    name: str
    email: str
    language: str


def contact_from(event: ParticipantRegistered) -> Contact:
    return Contact(
        signup_id=event.signup_id, region=event.region, edition=event.edition, name=event.name,
        email=str(event.email), language=event.language,
    )


@dataclass(frozen=True)
class Addressing:
    """How a new message starts: its status, the language it will be written in (None until a
    participant's contact is known) and, when it can never be sent, why."""

    status: Status
    language: str | None
    error: str | None = None


def addressing(notification: NewNotification, contact: Contact | None, erased: bool) -> Addressing:
    """A message with its own recipient, or for a participant whose contact is known: `pending`. For a
    participant whose contact has not arrived yet: `awaiting_contact` (queued when it arrives). For a
    participant whose contact was erased: `failed` at once (it would never arrive)."""
    if not notification.for_participant:
        return Addressing("pending", notification.language)
    if contact is not None:
        return Addressing("pending", contact.language)
    if erased:
        return Addressing("failed", None, CONTACT_ERASED)
    return Addressing("awaiting_contact", None)


@dataclass(frozen=True)
class Ended:
    """What NotificationFailed needs of a message given up on (after its attempts, or unsent because
    its participant's contact was erased): ids and template, nothing personal."""

    id: uuid.UUID
    template: str
    region: str
    edition: str
    signup_id: str | None
    correlation_id: uuid.UUID


@dataclass(frozen=True)
class NotificationView:
    """What organisers may see of a message: status and tracing; no body, no name, no address."""

    id: uuid.UUID
    kind: Kind
    template: str
    region: str
    edition: str
    signup_id: str | None
    #: None while a participant's message awaits their contact.
    language: str | None
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
    #: Participants' messages waiting for their contact details.
    awaiting_contact: int = 0


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


def _participant_message(
    event: MatchEvent | SeatOffered, *, kind: Kind, template: str, data: dict[str, Any]
) -> NewNotification:
    """A message to the participant of `event.signup_id`: the recipient is their contact, looked up
    when the message is sent."""
    return NewNotification(
        id=notification_id(event.event_id), source_event_id=event.event_id, kind=kind, template=template,
        region=event.region, edition=event.edition, signup_id=event.signup_id,
        correlation_id=event.correlation_id, name=None, email=None, language=None, data=data,
    )


def from_match(event: MatchEvent) -> NewNotification:
    """An assignment, a place on the waiting list or no place: one message of that kind."""
    kind, data = MATCH_MESSAGES[type(event)]
    return _participant_message(event, kind=kind, template=f"match_{kind}", data=data(event))


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
    return _participant_message(event, kind="seat_offered", template="seat_offered", data=data)


def from_request(event: NotificationRequested) -> NewNotification:
    """A message another pipeline asked for, to the recipient the request names (no sign-up); its own
    notification_id is the id (idempotent per request)."""
    return NewNotification(
        id=event.notification_id, source_event_id=event.event_id, kind="generic", template=event.template,
        region=event.region, edition=event.edition, signup_id=None, correlation_id=event.correlation_id,
        name=event.recipient.name, email=str(event.recipient.email), language=event.recipient.language,
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
