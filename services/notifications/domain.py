"""Notification rules (pure: no I/O): which message an event asks for, whom it goes to, and what a
failed send means.

A participant's contact details (name, e-mail address, language) come only from the region's
participants topic (`ParticipantRegistered`, erased by a tombstone): a message about a sign-up names the
sign-up id, and its recipient is looked up when it is sent. `addressing` decides whether such a message
can be queued (`pending`), must wait for the contact (`awaiting_contact`) or can never be sent (the
contact was erased: `failed`).

The journey (issue 9): what this service keeps of editions, offers, sign-ups and visits (`Edition`,
`Offer`, `Signup`, `Visit`), the local times of a visit and of its scheduled steps (`visit_steps`),
and every message of a participant's and a host's journey with its data (the renderer's input) and
its id, derived from the trigger (`notification_id`, `fanout_id`, `host_id`, `step_id`).

The SMTP side (which exceptions are permanent) lives in the mail adapter (`mail.classify`); here a
failure is only a `Failure(permanent, error)`, and `after_failure` decides what happens next.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parseaddr
from typing import Any, Literal
from zoneinfo import ZoneInfo

from schemas import (
    EditionCancelled,
    EditionOpened,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    OfferChanged,
    OfferPublished,
    OfferSummary,
    ParticipantRegistered,
    SeatOffered,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.notifications import calendar as ics

#: Namespace of the notification ids derived from source event ids (never change it).
NAMESPACE = uuid.UUID("c51480a5-a976-47e6-9ff4-6b6df51b4362")

Kind = Literal[
    # participants (addressed through their sign-up's contact)
    "signup_confirmed", "assigned", "waitlisted", "unmatched", "seat_offered", "reminder", "offer_changed",
    "offer_cancelled", "edition_cancelled", "feedback_request", "approval_refused",
    # hosts (addressed to the offer's host contact)
    "visitor_list", "visitor_withdrew", "host_edition_cancelled",
    # requested by another pipeline (addressed to the request's recipient)
    "generic", "approval_requested",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
#: `awaiting_contact`: a participant's message whose contact details have not arrived yet (the
#: participants topic is read apart from the match topic); it becomes `pending` when they arrive.
#: `sending`: claimed by a sender under a lease (issue 13), until its outcome is recorded.
Status = Literal["awaiting_contact", "pending", "sending", "sent", "failed"]
#: How a participant can answer a seat offer (each through its own signed link).
Answer = Literal["accept", "decline"]
ANSWERS: tuple[Answer, ...] = ("accept", "decline")
#: The address of the page where a participant gives `answer` to the seat offer of (signup_id,
#: edition_id) on offer_id: made by the links adapter (`links.SeatOfferLinks`), which signs it.
AnswerLink = Callable[[Answer, str, str, str], str]
#: The "my sign-up" page of (signup_id, edition_id), signed (links.ParticipantLinks.signup).
SignupLink = Callable[[str, str], str]
#: The feedback page of (signup_id, edition_id, offer_id), signed (links.ParticipantLinks.feedback).
FeedbackLink = Callable[[str, str, str], str]
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
    from the region's participants topic until a tombstone erases them; `org` and `learning_goal` are
    what a host's visitor list shows."""

    signup_id: str
    region: str
    edition: str
    name: str
    email: str
    language: str
    org: str | None = None
    learning_goal: str = ""


def contact_from(event: ParticipantRegistered) -> Contact:
    return Contact(
        signup_id=event.signup_id, region=event.region, edition=event.edition, name=event.name,
        email=str(event.email), language=event.language, org=event.org, learning_goal=event.learning_goal,
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


def _waitlisted(event: MatchWaitlisted) -> dict[str, Any]:
    return {"position": event.position}


def _unmatched(event: MatchUnmatched) -> dict[str, Any]:
    return {"reason_code": event.reason_code}


#: Which message each match event asks for: its kind and the template data taken from the event.
MATCH_MESSAGES: dict[type[Any], tuple[Kind, Callable[[Any], dict[str, Any]]]] = {
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


def from_match(event: MatchWaitlisted | MatchUnmatched) -> NewNotification:
    """A place on the waiting list or no place: one message of that kind (an assignment:
    `from_assignment`, it needs the offer and the links)."""
    kind, data = MATCH_MESSAGES[type(event)]
    return _participant_message(event, kind=kind, template=f"match_{kind}", data=data(event))


def from_seat_offer(event: SeatOffered, answer_link: AnswerLink, offer: Offer | None = None) -> NewNotification:
    """What is offered, until when, and the addresses of the pages where the participant accepts or
    declines it (`answer_link`, one per answer: the links are part of the e-mail, so they are stored
    with the message). `offer`: the offer as this service keeps it (else the event's summary)."""
    data = {
        "offer": (offer or offer_from_summary(event.offer, event.region, event.edition)).data(),
        "rank": event.rank,
        "expires_at": event.expires_at.isoformat(),
        **{f"{answer}_url": answer_link(answer, event.signup_id, event.edition, event.offer.offer_id) for answer in ANSWERS},
    }
    return _participant_message(event, kind="seat_offered", template="seat_offered", data=data)


def from_request(event: NotificationRequested) -> NewNotification:
    """A message another pipeline asked for, to the recipient the request names (no sign-up); its own
    notification_id is the id (idempotent per request). The template `approval_requested` (an
    employer's approval, asked by registration) is its own kind; every other template is `generic`."""
    kind: Kind = "approval_requested" if event.template == "approval_requested" else "generic"
    return NewNotification(
        id=event.notification_id, source_event_id=event.event_id, kind=kind, template=event.template,
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


# --- the journey: what this service keeps of editions, offers, sign-ups and visits -------------------
EditionStatus = Literal["open", "closed", "cancelled"]
OfferStatus = Literal["published", "cancelled"]
SignupStatus = Literal["submitted", "withdrawn", "refused"]
ApprovalState = Literal["not_required", "pending", "approved", "refused"]
#: A visit is `current` from the assignment until the sign-up is withdrawn or refused, or the offer or
#: the edition is cancelled (`ended`); `seat_offered` while the person holds an open seat offer on it.
VisitStatus = Literal["seat_offered", "current", "ended"]
StepKind = Literal["reminder", "visitor_list", "feedback_request"]
STEP_KINDS: tuple[StepKind, ...] = ("reminder", "visitor_list", "feedback_request")
#: Local time of the reminder and of the host's visitor list, on the day before the visit.
DAY_BEFORE_AT = time(9, 0)
#: Changed fields (OfferChanged.changed) that change nothing for the people placed there: a change of
#: only these sends no `offer_changed`, and they are not named in one.
UNSEEN_CHANGES = frozenset({"capacity", "max_per_org", "host_contact", "themes"})


@dataclass(frozen=True)
class Edition:
    edition: str
    region: str
    name: str
    starts_on: date | None = None
    ends_on: date | None = None
    signup_deadline: datetime | None = None
    languages: tuple[str, ...] = ()
    status: EditionStatus = "open"
    reason: str = ""

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def data(self) -> dict[str, Any]:
        """`edition` of a `signup_confirmed` message (unknown dates: null)."""
        return {
            "name": self.name,
            "starts_on": self.starts_on.isoformat() if self.starts_on else None,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "signup_deadline": self.signup_deadline.isoformat() if self.signup_deadline else None,
        }


def edition_from(event: EditionOpened) -> Edition:
    return Edition(
        edition=event.edition, region=event.region, name=event.name, starts_on=event.starts_on,
        ends_on=event.ends_on, signup_deadline=event.signup_deadline, languages=tuple(event.languages),
    )


def unknown_edition(edition: str, region: str) -> Edition:
    """An edition whose EditionOpened has not been seen (topics are read apart): named by its id."""
    return Edition(edition=edition, region=region, name=edition)


@dataclass(frozen=True)
class HostContact:
    """Who at the host organisation gets the visitor list and notices (a work contact, not a participant)."""

    name: str
    email: str
    language: str = "nl"


@dataclass(frozen=True)
class Offer:
    """An offer as this service keeps it (OfferPublished, then each OfferChanged; OfferCancelled)."""

    offer_id: str
    region: str
    edition: str
    title: str
    host_org: str
    date: date
    format: str = "visit"
    attendance: str = "on_site"
    part_of_day: str = "whole_day"
    starts_at: time | None = None
    ends_at: time | None = None
    location: str = ""
    join_url: str | None = None
    what_to_bring: str = ""
    themes: tuple[str, ...] = ()
    sequence: int = 0
    host_contact: HostContact | None = None
    status: OfferStatus = "published"
    reason: str = ""

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def data(self) -> dict[str, Any]:
        """The `offer` of every message about it (JSON)."""
        return {
            "offer_id": self.offer_id, "title": self.title, "host_org": self.host_org,
            "date": self.date.isoformat(), "format": self.format, "attendance": self.attendance,
            "part_of_day": self.part_of_day,
            "starts_at": ics.hhmm(self.starts_at) if self.starts_at else None,
            "ends_at": ics.hhmm(self.ends_at) if self.ends_at else None,
            "location": self.location, "join_url": self.join_url, "what_to_bring": self.what_to_bring,
            "themes": list(self.themes), "sequence": self.sequence,
        }


def offer_from(event: OfferPublished | OfferChanged) -> Offer:
    host = event.host_contact
    return Offer(
        offer_id=event.offer_id, region=event.region, edition=event.edition, title=event.title,
        host_org=event.host_org, date=event.date, format=event.format, attendance=event.attendance,
        part_of_day=event.part_of_day, starts_at=event.starts_at, ends_at=event.ends_at, location=event.location,
        join_url=event.join_url, what_to_bring=event.what_to_bring, themes=tuple(event.themes),
        sequence=event.sequence,
        host_contact=HostContact(host.name, str(host.email), host.language) if host else None,
    )


def offer_from_data(
    details: dict[str, Any], *, region: str, edition: str, host_contact: HostContact | None = None,
    status: OfferStatus = "published", reason: str = "",
) -> Offer:
    """An offer from its stored `data()` (the repository's row)."""
    return Offer(
        offer_id=details["offer_id"], region=region, edition=edition, title=details["title"],
        host_org=details["host_org"], date=date.fromisoformat(details["date"]),
        format=details.get("format") or "visit", attendance=details.get("attendance") or "on_site",
        part_of_day=details.get("part_of_day") or "whole_day",
        starts_at=ics.parse_time(details.get("starts_at")), ends_at=ics.parse_time(details.get("ends_at")),
        location=details.get("location") or "", join_url=details.get("join_url"),
        what_to_bring=details.get("what_to_bring") or "", themes=tuple(details.get("themes") or ()),
        sequence=int(details.get("sequence") or 0), host_contact=host_contact, status=status, reason=reason,
    )


def offer_from_summary(summary: OfferSummary, region: str, edition: str) -> Offer:
    """An offer whose OfferPublished has not been seen yet: what a match event says of it."""
    return Offer(
        offer_id=summary.offer_id, region=region, edition=edition, title=summary.title, host_org=summary.host_org,
        date=summary.date, format=summary.format, location=summary.location,
    )


@dataclass(frozen=True)
class Signup:
    """A sign-up as this service keeps it (no personal data: the contact is in `contacts`)."""

    signup_id: str
    region: str
    edition: str
    org: str
    language: str
    choices: tuple[str, ...]
    status: SignupStatus = "submitted"
    approval: ApprovalState = "not_required"

    @property
    def ended(self) -> bool:
        """Withdrawn or refused: told nothing more."""
        return self.status != "submitted"


def signup_from(event: SignupSubmitted) -> Signup:
    return Signup(
        signup_id=event.signup_id, region=event.region, edition=event.edition, org=event.org,
        language=event.language, choices=tuple(event.choices), approval=event.approval,
    )


@dataclass(frozen=True)
class Visit:
    """A participant placed on an offer (`current`), or holding an open seat offer on it."""

    signup_id: str
    offer_id: str
    region: str
    edition: str
    status: VisitStatus = "current"
    #: An open seat offer's end.
    expires_at: datetime | None = None
    correlation_id: uuid.UUID | None = None

    def holds_seat_offer(self, now: datetime) -> bool:
        return self.status == "seat_offered" and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Visitor:
    """What a host's visitor list shows of a participant (from their contact)."""

    signup_id: str
    name: str
    org: str | None
    learning_goal: str = ""


# --- times: all local to the region's time zone ----------------------------------------------------
def visit_window(offer: Offer, zone: str) -> tuple[datetime, datetime]:
    """When the visit starts and ends (aware, in `zone`): its times, else its part of the day's
    (calendar.visit_times, the same as the `.ics`)."""
    start, end = ics.visit_times(offer.part_of_day, offer.starts_at, offer.ends_at)
    tz = ZoneInfo(zone)
    return datetime.combine(offer.date, start, tzinfo=tz), datetime.combine(offer.date, end, tzinfo=tz)


def day_before(offer: Offer, zone: str) -> datetime:
    """09:00 local on the day before the visit: the reminder and the host's visitor list."""
    return datetime.combine(offer.date - timedelta(days=1), DAY_BEFORE_AT, tzinfo=ZoneInfo(zone))


@dataclass(frozen=True)
class Planned:
    """A step to schedule at `due_at`, or to cancel (`due_at` None)."""

    kind: StepKind
    key: str
    due_at: datetime | None
    payload: dict[str, Any] = field(default_factory=dict)


def visit_key(signup_id: str, offer_id: str) -> str:
    """The key of a visit's reminder and feedback request."""
    return f"{signup_id}:{offer_id}"


def visit_steps(
    signup_id: str, offer: Offer, zone: str, now: datetime, correlation_id: uuid.UUID
) -> list[Planned]:
    """A current visit's steps: its reminder (09:00 the day before), its feedback request (at the
    visit's end) and its offer's visitor list (09:00 the day before). A step whose moment has passed
    `now` is cancelled instead (someone placed after 09:00 the day before gets no reminder; someone
    placed after the visit ended, no feedback request)."""
    key = visit_key(signup_id, offer.offer_id)
    payload = {"signup_id": signup_id, "offer_id": offer.offer_id, "region": offer.region,
               "edition": offer.edition, "correlation_id": str(correlation_id)}
    before, end = day_before(offer, zone), visit_window(offer, zone)[1]
    return [
        Planned("reminder", key, before if before > now else None, payload),
        Planned("feedback_request", key, end if end > now else None, payload),
        offer_steps(offer, zone, now, correlation_id),
    ]


def offer_steps(offer: Offer, zone: str, now: datetime, correlation_id: uuid.UUID) -> Planned:
    """The offer's visitor list, 09:00 the day before (cancelled when that moment has passed)."""
    before = day_before(offer, zone)
    payload = {"offer_id": offer.offer_id, "region": offer.region, "edition": offer.edition,
               "correlation_id": str(correlation_id)}
    return Planned("visitor_list", offer.offer_id, before if before > now else None, payload)


def ended_visit_steps(signup_id: str, offer_id: str) -> list[Planned]:
    """A visit that ended: its reminder and feedback request are cancelled."""
    key = visit_key(signup_id, offer_id)
    return [Planned("reminder", key, None), Planned("feedback_request", key, None)]


# --- ids: the same trigger always makes the same message ----------------------------------------------
def fanout_id(event_id: uuid.UUID, name: str) -> uuid.UUID:
    """One message per person of an event that tells several (`name`: a sign-up id)."""
    return uuid.uuid5(event_id, name)


def host_id(event_id: uuid.UUID, offer_id: str) -> uuid.UUID:
    """The message of an event to the host contact of `offer_id` (prefixed: never a sign-up's id)."""
    return uuid.uuid5(event_id, f"host:{offer_id}")


def step_id(kind: str, key: str, due_at: datetime) -> uuid.UUID:
    """The message of one occurrence of a scheduled step (a step moved to a new time is a new one)."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{key}:{due_at.astimezone(UTC).isoformat()}")


@dataclass(frozen=True)
class Occurrence:
    """A scheduled step as its message needs it (its id and correlation id)."""

    kind: StepKind
    key: str
    due_at: datetime
    correlation_id: uuid.UUID

    @property
    def id(self) -> uuid.UUID:
        return step_id(self.kind, self.key, self.due_at)


# --- the journey's messages --------------------------------------------------------------------------
def _to_participant(
    id: uuid.UUID, source: uuid.UUID, kind: Kind, region: str, edition: str, signup_id: str,
    correlation_id: uuid.UUID, data: dict[str, Any],
) -> NewNotification:
    return NewNotification(
        id=id, source_event_id=source, kind=kind, template=kind, region=region, edition=edition,
        signup_id=signup_id, correlation_id=correlation_id, name=None, email=None, language=None, data=data,
    )


def _to_host(
    id: uuid.UUID, source: uuid.UUID, kind: Kind, offer: Offer, correlation_id: uuid.UUID, data: dict[str, Any]
) -> NewNotification | None:
    """A message to the offer's host contact (its own recipient, in the contact's language; no sign-up:
    a participant's erasure never touches it). None when the offer has no host contact."""
    host = offer.host_contact
    if host is None:
        return None
    return NewNotification(
        id=id, source_event_id=source, kind=kind, template=kind, region=offer.region, edition=offer.edition,
        signup_id=None, correlation_id=correlation_id, name=host.name, email=host.email, language=host.language,
        data=data,
    )


def participant_calendar(signup_id: str, offer: Offer, zone: str, *, cancel: bool = False) -> dict[str, Any]:
    """The participant's calendar entry of a visit (UID `<signup_id>.<offer_id>@estafette`, SEQUENCE
    the offer's sequence); the renderer writes its description in the recipient's language."""
    return ics.calendar_entry(
        offer.data(), uid=ics.participant_uid(signup_id, offer.offer_id), timezone=zone, cancelled=cancel
    )


def host_calendar(offer: Offer, zone: str) -> dict[str, Any]:
    return ics.calendar_entry(offer.data(), uid=ics.host_uid(offer.offer_id), timezone=zone)


def signup_confirmed(
    event: SignupSubmitted, edition: Edition, choices: list[Offer], manage_url: str
) -> NewNotification:
    """The sign-up is received: the edition, the choices (those this service knows), the "my sign-up"
    link, and whether the employer's approval is awaited."""
    data = {
        "edition": edition.data(), "choices": [o.data() for o in choices], "manage_url": manage_url,
        "approval": event.approval,
    }
    return _to_participant(
        notification_id(event.event_id), event.event_id, "signup_confirmed", event.region, event.edition,
        event.signup_id, event.correlation_id, data,
    )


def goes_on(edition: Edition | None, signup: Signup | None) -> bool:
    """A match event read after its edition was cancelled or its sign-up ended changes nothing."""
    return not (edition is not None and edition.cancelled) and not (signup is not None and signup.ended)


def assignment_offer(
    event: MatchAssigned, edition: Edition | None, signup: Signup | None, known: Offer | None
) -> Offer | None:
    """The offer a MatchAssigned places its participant on (as kept, else as the event describes it),
    or None when nothing follows: the edition was cancelled, the sign-up ended, the offer cancelled."""
    if not goes_on(edition, signup):
        return None
    offer = known or offer_from_summary(event.offer, event.region, event.edition)
    return None if offer.cancelled else offer


def last_plans(steps: list[Planned]) -> list[Planned]:
    """What planning `steps` one after the other leaves: the last plan of each step (kind, key), in
    the order of (kind, key). A batch plans them at once (schedules and cancellations apart)."""
    last = {(step.kind, step.key): step for step in steps}
    return [last[k] for k in sorted(last)]


def from_assignment(event: MatchAssigned, offer: Offer, zone: str, manage_url: str) -> NewNotification:
    """Where to go, with the calendar entry and the "my sign-up" link."""
    data = {"offer": offer.data(), "rank": event.rank, "calendar": participant_calendar(event.signup_id, offer, zone),
            "manage_url": manage_url}
    return _participant_message(event, kind="assigned", template="match_assigned", data=data)


def reminder(step: Occurrence, signup_id: str, offer: Offer, zone: str, manage_url: str) -> NewNotification:
    data = {"offer": offer.data(), "calendar": participant_calendar(signup_id, offer, zone), "manage_url": manage_url}
    return _to_participant(step.id, step.id, "reminder", offer.region, offer.edition, signup_id, step.correlation_id, data)


def feedback_request(step: Occurrence, signup_id: str, offer: Offer, feedback_url: str) -> NewNotification:
    data = {"offer": offer.data(), "feedback_url": feedback_url}
    return _to_participant(
        step.id, step.id, "feedback_request", offer.region, offer.edition, signup_id, step.correlation_id, data
    )


def seen_changes(changed: list[str]) -> list[str]:
    """The changed fields the people placed on an offer are told about (none: no message)."""
    return [f for f in dict.fromkeys(changed) if f not in UNSEEN_CHANGES]


def offer_changed(
    event: OfferChanged, offer: Offer, signup_id: str, zone: str, manage_url: str
) -> NewNotification:
    """What changed, the offer as it is now, and the new calendar entry (same UID, higher SEQUENCE)."""
    data = {"offer": offer.data(), "changed": seen_changes(event.changed),
            "calendar": participant_calendar(signup_id, offer, zone), "manage_url": manage_url}
    return _to_participant(
        fanout_id(event.event_id, signup_id), event.event_id, "offer_changed", event.region, event.edition,
        signup_id, event.correlation_id, data,
    )


def offer_cancelled(
    event_id: uuid.UUID, correlation_id: uuid.UUID, offer: Offer, signup_id: str, zone: str, *, placed: bool
) -> NewNotification:
    """The offer is off, with the organiser's reason; a CANCEL calendar entry for those placed (someone
    who only held a seat offer on it has no entry: null)."""
    data = {"offer": offer.data(), "reason": offer.reason,
            "calendar": participant_calendar(signup_id, offer, zone, cancel=True) if placed else None}
    return _to_participant(
        fanout_id(event_id, signup_id), event_id, "offer_cancelled", offer.region, offer.edition, signup_id,
        correlation_id, data,
    )


def edition_cancelled(
    event: EditionCancelled, edition: Edition, signup_id: str, placed: tuple[Offer, str] | None
) -> NewNotification:
    """The whole edition is off, with the organiser's reason; for someone placed, a CANCEL calendar
    entry of their (first) visit (`placed`: the offer and the region's time zone)."""
    calendar = participant_calendar(signup_id, placed[0], placed[1], cancel=True) if placed else None
    data = {"edition": {"name": edition.name}, "reason": event.reason, "calendar": calendar}
    return _to_participant(
        fanout_id(event.event_id, signup_id), event.event_id, "edition_cancelled", event.region, event.edition,
        signup_id, event.correlation_id, data,
    )


def host_edition_cancelled(event: EditionCancelled, edition: Edition, offer: Offer) -> NewNotification | None:
    data = {"edition": {"name": edition.name}, "offer": offer.data(), "reason": event.reason}
    return _to_host(host_id(event.event_id, offer.offer_id), event.event_id, "host_edition_cancelled", offer,
                    event.correlation_id, data)


def approval_refused(event: SignupRefused, edition: Edition) -> NewNotification:
    data = {"edition": {"name": edition.name}, "reason": event.reason}
    return _to_participant(
        notification_id(event.event_id), event.event_id, "approval_refused", event.region, event.edition,
        event.signup_id, event.correlation_id, data,
    )


def visitor_list(step: Occurrence, offer: Offer, visitor_ids: list[str], zone: str) -> NewNotification | None:
    """Who is coming, to the host contact, with the host's calendar entry. The visitors are stored by
    sign-up id and named from their contacts when the message is sent (`with_visitors`): a visitor's
    personal data stays in one place, and an erasure takes it out of the list."""
    data = {"offer": offer.data(), "visitor_ids": visitor_ids, "calendar": host_calendar(offer, zone)}
    return _to_host(step.id, step.id, "visitor_list", offer, step.correlation_id, data)


def visitor_withdrew(event: SignupWithdrawn, offer: Offer, remaining: int) -> NewNotification | None:
    """Someone who was coming withdrew (named when the message is sent, see `visitor_list`)."""
    data = {"offer": offer.data(), "visitor_id": event.signup_id, "remaining": remaining}
    return _to_host(host_id(event.event_id, offer.offer_id), event.event_id, "visitor_withdrew", offer,
                    event.correlation_id, data)


def visit_not_started(offer: Offer, zone: str, now: datetime) -> bool:
    return visit_window(offer, zone)[0] > now


def names_visitors(data: dict[str, Any]) -> bool:
    """A host's message whose visitors are named when it is sent (`with_visitors`)."""
    return "visitor_ids" in data or "visitor_id" in data


def visitor_ids_of(data: dict[str, Any]) -> list[str]:
    """The sign-up ids a host's message names (to look up their contacts when it is sent)."""
    ids = list(data.get("visitor_ids") or ())
    if data.get("visitor_id"):
        ids.append(data["visitor_id"])
    return ids


def with_visitors(data: dict[str, Any], visitors: dict[str, Visitor]) -> dict[str, Any]:
    """The renderer's data of a host's message: the visitors' names, organisations and learning goals
    from their contacts as they are now (an erased visitor is left out of a list, and unnamed in a
    withdrawal notice)."""
    if not names_visitors(data):
        return data
    out = {k: v for k, v in data.items() if k not in ("visitor_ids", "visitor_id")}
    if "visitor_ids" in data:
        found = [visitors[i] for i in data["visitor_ids"] if i in visitors]
        out["visitors"] = [{"name": v.name, "org": v.org, "learning_goal": v.learning_goal}
                           for v in sorted(found, key=lambda v: (v.name.casefold(), v.signup_id))]
    if "visitor_id" in data:
        v = visitors.get(data["visitor_id"])
        out["visitor"] = {"name": v.name if v else "", "org": v.org if v else None}
    return out


# --- sending in batches (issue 13) ---------------------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    """A message claimed for sending (`sending`, under a lease), with its recipient as it is now;
    `erased`: a participant's message whose contact was erased (it is not sent)."""

    message: Due
    erased: bool = False


def unsendable(claimed: Claimed) -> Failure | None:
    """Why a claimed message cannot be sent at all (checked at claim time): its participant's contact
    was erased, or there is no address; None when it can be sent."""
    due = claimed.message
    if claimed.erased:
        return Failure(True, CONTACT_ERASED)
    if due.name is None or due.email is None or due.language is None:
        return Failure(True, NO_ADDRESS)
    return None


@dataclass(frozen=True)
class Outcome:
    """What sending one claimed message led to (`failure` None: the SMTP server accepted it), before
    it is recorded; `lease` is the claim it was sent under."""

    message: Due
    lease: uuid.UUID
    failure: Failure | None = None


@dataclass(frozen=True)
class Recording:
    """One outcome as it is recorded: the message's new status, its language when sent, the error and
    the seconds until the next attempt when it stays pending."""

    id: uuid.UUID
    lease: uuid.UUID
    status: Literal["sent", "pending", "failed"]
    language: str | None = None
    error: str | None = None
    retry_in: float | None = None


def recording(outcome: Outcome, policy: RetryPolicy) -> Recording:
    """Sent; or, after a failure, retried later or given up (`after_failure`)."""
    due = outcome.message
    if outcome.failure is None:
        return Recording(due.id, outcome.lease, "sent", language=due.language)
    decision = after_failure(outcome.failure, due.attempts + 1, policy)
    return Recording(due.id, outcome.lease, decision.status, error=outcome.failure.error, retry_in=decision.retry_in)


# --- webhooks for portals (issue 11) ----------------------------------------------------------------
# A region's organiser registers endpoints with the event types they want. Subscribable: every event
# type of the region's editions, offers, sign-ups and matches topics (WEBHOOK_EVENT_TYPES). Never the
# participants topic (contact details) nor notification requests (they carry a recipient's address).
from estafette.runtime.errors import RuleViolation  # noqa: E402
from schemas.topics import EDITIONS as _EDITIONS  # noqa: E402
from schemas.topics import MATCHES as _MATCHES  # noqa: E402
from schemas.topics import OFFERS as _OFFERS  # noqa: E402
from schemas.topics import SIGNUPS as _SIGNUPS  # noqa: E402

WEBHOOK_TOPICS = (_EDITIONS, _OFFERS, _SIGNUPS, _MATCHES)
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(e.__name__ for t in WEBHOOK_TOPICS for e in t.events)
WebhookStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class WebhookEndpoint:
    id: uuid.UUID
    region: str
    url: str
    event_types: list[str]
    description: str
    created_by: str
    created_at: datetime
    deleted_at: datetime | None = None
    secret: str = field(default="", repr=False)  # only for signing (and the one answer that shows it)


@dataclass(frozen=True)
class WebhookAttempt:
    number: int
    attempted_at: datetime
    status: Literal["succeeded", "failed"]
    response_code: int | None
    duration_ms: int
    error: str | None


@dataclass(frozen=True)
class WebhookDelivery:
    id: uuid.UUID  # the webhook-id header
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: WebhookStatus
    attempts: int
    next_attempt_at: datetime | None  # while pending
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: list[WebhookAttempt] = field(default_factory=list)


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for one attempt: what is sent, and where."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret: str = field(repr=False)
    body: str
    tries: int  # attempts since created or redelivered, before this one


@dataclass(frozen=True)
class WebhookPolicy:
    """Attempts per delivery (the first included) and the back-off: `base_seconds` after the first
    failure, doubled after each further one, at most `max_seconds`."""

    max_attempts: int
    base_seconds: float
    max_seconds: float


@dataclass(frozen=True)
class WebhookOutcome:
    """What one attempt led to: `status_code` None when no answer came (timeout, refused, ...)."""

    status_code: int | None
    duration_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class WebhookDecision:
    status: WebhookStatus
    retry_in: float | None  # seconds until the next attempt, while pending


def after_webhook_attempt(outcome: WebhookOutcome, tries: int, policy: WebhookPolicy) -> WebhookDecision:
    """A 2xx answer delivers; anything else (another status, no answer) is retried with exponential
    back-off until `policy.max_attempts` attempts were made, then the delivery failed (it can be
    redelivered by hand). `tries`: the attempts made so far, this one included."""
    if outcome.succeeded:
        return WebhookDecision("delivered", None)
    if tries >= policy.max_attempts:
        return WebhookDecision("failed", None)
    return WebhookDecision("pending", min(policy.base_seconds * 2 ** (tries - 1), policy.max_seconds))


def check_webhook(url: str, event_types: list[str]) -> None:
    """An http(s) URL with a host (422 `invalid_url`) and at least one known, subscribable event type
    (422 `unknown_event_type`)."""
    from urllib.parse import urlsplit  # pure parsing, no I/O

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuleViolation("invalid_url", "a webhook URL is an http:// or https:// URL with a host", "url")
    if not event_types:
        raise RuleViolation("unknown_event_type", "name at least one event type", "event_types")
    for i, name in enumerate(event_types):
        if name not in WEBHOOK_EVENT_TYPES:
            raise RuleViolation(
                "unknown_event_type", f"{name} is not an event type webhooks deliver ({', '.join(WEBHOOK_EVENT_TYPES)})",
                f"event_types.{i}",
            )


def webhook_region(role: str, own_region: str | None, asked: str | None) -> str:
    """Whose endpoint: an organiser's own region (another one named: 403 via `Forbidden` by the
    caller); an admin names the region (422 `region_required`)."""
    if role == "organiser":
        return own_region or ""
    if not asked:
        raise RuleViolation("region_required", "an admin names the region of the endpoint", "region")
    return asked
