"""Every event of contract version 2. Field changes within v2 must be additive (new optional fields only).

v2 (regions): events travel on their region's topics (schemas/topics.py), and personal data travels
only on a region's compacted participants topic (`ParticipantRegistered`, keyed by sign-up id, removed
by a tombstone): `SignupSubmitted` no longer carries a name or an e-mail address, and match events no
longer carry a recipient. v1 is kept under schemas/jsonschema/v1 as it was.
"""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, TypeAdapter

from schemas.envelope import Event

Language = Literal["nl", "de", "en"]
OfferFormat = Literal["visit", "workshop", "webinar", "digital_tour"]
#: Where an offer happens: at the host's address, or online (a join link).
Attendance = Literal["on_site", "online"]
#: Which part of its day an offer takes (its times, when given, say exactly).
PartOfDay = Literal["morning", "afternoon", "whole_day"]
#: Whether a sign-up waits for its employer's approval before it can be matched.
Approval = Literal["not_required", "pending"]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


# --- editions ---------------------------------------------------------------------------------
class EditionOpened(Event):
    key_field: ClassVar[str] = "edition"
    event_type: Literal["EditionOpened"] = "EditionOpened"
    name: str
    signup_deadline: AwareDatetime
    starts_on: date
    ends_on: date
    languages: list[Language] = ["nl"]
    themes: list[str] = Field(default=[], description="The themes offers of this edition may have (added in v2.1).")
    requires_approval: bool = Field(
        default=False, description="Sign-ups wait for their employer's approval before they are matched (v2.1)."
    )
    match_at_deadline: bool = Field(
        default=False, description="Matching starts a run by itself at the sign-up deadline (v2.1)."
    )


class EditionClosed(Event):
    """Sign-ups ended early by the organiser; what was matched stands, but it is never matched again."""

    key_field: ClassVar[str] = "edition"
    event_type: Literal["EditionClosed"] = "EditionClosed"
    reason: str = ""


class EditionCancelled(Event):
    """The whole edition is called off (v2.1): nothing is matched any more, every participant, waiting or
    placed, and every host is told once, with the organiser's `reason`."""

    key_field: ClassVar[str] = "edition"
    event_type: Literal["EditionCancelled"] = "EditionCancelled"
    reason: str = ""


# --- offers -----------------------------------------------------------------------------------
class HostContact(BaseModel):
    """Who at the host organisation receives the visitor list and notices (a work contact the host gave
    for this purpose), in their language."""

    model_config = ConfigDict(frozen=True)
    name: str
    email: EmailStr
    language: Language = "nl"


class _OfferDetails(Event):
    """The fields of an offer as published and as changed (no event of its own)."""

    key_field: ClassVar[str] = "offer_id"
    offer_id: Id
    host_org: Id
    title: str
    date: date
    capacity: int = Field(ge=0)
    max_per_org: int | None = Field(default=None, ge=1)
    format: OfferFormat = "visit"
    location: str = Field(default="", description="The address (on site); blank when online or not yet known.")
    # --- added in v2.1 ---
    themes: list[str] = Field(default=[], description="Themes from the edition's list.")
    attendance: Attendance = "on_site"
    part_of_day: PartOfDay = "whole_day"
    starts_at: time | None = Field(default=None, description="Local time in the region's time zone.")
    ends_at: time | None = None
    join_url: str | None = Field(default=None, description="How to join an online offer.")
    what_to_bring: str = ""
    host_contact: HostContact | None = None
    sequence: int = Field(
        default=0, ge=0, description="0 when published, +1 with every change: the calendar entry's SEQUENCE."
    )


class OfferPublished(_OfferDetails):
    event_type: Literal["OfferPublished"] = "OfferPublished"


class OfferChanged(_OfferDetails):
    """An organiser edited an offer (v2.1): the whole offer as it is now, its `sequence` one higher, and
    which fields changed. People placed there are told."""

    event_type: Literal["OfferChanged"] = "OfferChanged"
    changed: list[str] = Field(description="Names of the fields that changed, e.g. ['date', 'starts_at'].")


class OfferCancelled(Event):
    key_field: ClassVar[str] = "offer_id"
    event_type: Literal["OfferCancelled"] = "OfferCancelled"
    offer_id: Id
    reason: str = ""


# --- sign-ups ---------------------------------------------------------------------------------
class SignupSubmitted(Event):
    """A participant signed up. No personal data: the name and e-mail address are in the
    `ParticipantRegistered` of the same sign-up id, on the region's participants topic."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SignupSubmitted"] = "SignupSubmitted"
    signup_id: Id
    org: Id
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1)
    available: list[date] | None = None
    max_visits: int = Field(default=1, ge=1)
    signed_up_at: AwareDatetime
    approval: Approval = Field(
        default="not_required", description="`pending`: not matched until SignupApproved (v2.1)."
    )


class SignupChanged(Event):
    """The participant (before the deadline) or an organiser changed a sign-up's choices (v2.1): the
    choices, dates and visits as they are now."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SignupChanged"] = "SignupChanged"
    signup_id: Id
    choices: list[Id] = Field(min_length=1)
    available: list[date] | None = None
    max_visits: int = Field(default=1, ge=1)


class SignupApproved(Event):
    """The participant's employer approved the sign-up (v2.1): it can be matched now."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SignupApproved"] = "SignupApproved"
    signup_id: Id


class SignupRefused(Event):
    """The participant's employer refused the sign-up (v2.1): it ends, like a withdrawal."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SignupRefused"] = "SignupRefused"
    signup_id: Id
    reason: str = ""


class ParticipantRegistered(Event):
    """A participant's contact details (personal data: never log it), on the region's compacted
    participants topic keyed by sign-up id. A tombstone (null value) under that key erases them."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["ParticipantRegistered"] = "ParticipantRegistered"
    signup_id: Id
    name: str
    email: EmailStr
    language: Language = "nl"
    # --- added in v2.1: what a host's visitor list shows ---
    org: str | None = Field(default=None, description="The participant's organisation.")
    learning_goal: str = ""


class SignupWithdrawn(Event):
    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SignupWithdrawn"] = "SignupWithdrawn"
    signup_id: Id
    reason: str = Field(default="", description="Given by an organiser withdrawing on someone's behalf (v2.1).")


# --- matches ----------------------------------------------------------------------------------
class Recipient(BaseModel):
    """Who to tell, for a `NotificationRequested` from another pipeline (participants of an edition are
    told through their sign-up id: notifications keeps their details from the participants topic)."""

    model_config = ConfigDict(frozen=True)
    name: str
    email: EmailStr
    language: Language = "nl"


class OfferSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    offer_id: Id
    host_org: Id
    title: str
    date: date
    format: OfferFormat = "visit"
    location: str = ""


class MatchAssigned(Event):
    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["MatchAssigned"] = "MatchAssigned"
    signup_id: Id
    run_id: uuid.UUID
    rank: int = Field(ge=1)
    offer: OfferSummary


class MatchWaitlisted(Event):
    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["MatchWaitlisted"] = "MatchWaitlisted"
    signup_id: Id
    run_id: uuid.UUID
    position: int = Field(ge=1)
    reason_code: str


class MatchUnmatched(Event):
    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["MatchUnmatched"] = "MatchUnmatched"
    signup_id: Id
    run_id: uuid.UUID
    reason_code: str = Field(description="Machine-readable, one of schemas/reasons.py: all_full, own_org, unavailable, org_cap, forbidden, no_choices, mixed, seat_offers_ended.")
    reason: str = Field(description="Short English explanation.")


class SeatOffered(Event):
    """A seat freed after publication is held for someone on the waiting list until `expires_at`.
    Accepting it publishes MatchAssigned; declining it or letting it expire publishes SeatOfferEnded."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SeatOffered"] = "SeatOffered"
    signup_id: Id
    run_id: uuid.UUID
    offer: OfferSummary
    rank: int = Field(ge=1)
    expires_at: AwareDatetime


class SeatOfferEnded(Event):
    """A seat offer was not taken: the participant declined it or let it expire. They stay on the
    waiting list for their other choices; the seat goes to the next person."""

    key_field: ClassVar[str] = "signup_id"
    event_type: Literal["SeatOfferEnded"] = "SeatOfferEnded"
    signup_id: Id
    run_id: uuid.UUID = Field(description="The run that made the offer.")
    offer_id: Id
    reason: Literal["declined", "expired"]


# --- notifications ----------------------------------------------------------------------------
class NotificationRequested(Event):
    key_field: ClassVar[str] = "notification_id"
    event_type: Literal["NotificationRequested"] = "NotificationRequested"
    notification_id: uuid.UUID
    template: str
    recipient: Recipient
    context: dict[str, str | int | None] = {}


class NotificationSent(Event):
    key_field: ClassVar[str] = "notification_id"
    event_type: Literal["NotificationSent"] = "NotificationSent"
    notification_id: uuid.UUID
    template: str
    signup_id: Id | None = None


class NotificationFailed(Event):
    key_field: ClassVar[str] = "notification_id"
    event_type: Literal["NotificationFailed"] = "NotificationFailed"
    notification_id: uuid.UUID
    template: str
    signup_id: Id | None = None
    permanent: bool
    error: str


# --- feedback and the national relay ---------------------------------------------------------
class FeedbackSubmitted(Event):
    key_field: ClassVar[str] = "feedback_id"
    event_type: Literal["FeedbackSubmitted"] = "FeedbackSubmitted"
    feedback_id: Id
    signup_id: Id
    offer_id: Id
    rating: int = Field(ge=1, le=5)
    learned: str = Field(default="", description="What the participant learned, in their words.")
    share_publicly: bool = Field(
        default=False, description="The participant agreed that `learned` may be published after moderation (v2.1)."
    )
    language: Language = Field(default="nl", description="The language `learned` is written in (v2.1).")
    submitted_at: AwareDatetime | None = None


class KnowledgeItemApproved(Event):
    """The region's organiser approved a participant's shareable feedback as a knowledge item (v2.2): its
    text may be published with the relay leg of its region. Keyed by the feedback's id."""

    key_field: ClassVar[str] = "feedback_id"
    event_type: Literal["KnowledgeItemApproved"] = "KnowledgeItemApproved"
    feedback_id: Id
    offer_id: Id
    text: str = Field(description="What the participant learned, as approved (no name, no e-mail address).")
    language: Language = "nl"
    offer_title: str = ""
    host_org: str = ""
    approved_at: AwareDatetime


class KnowledgeItemRejected(Event):
    """The region's organiser rejected a shareable feedback as a knowledge item, with a reason (v2.2)."""

    key_field: ClassVar[str] = "feedback_id"
    event_type: Literal["KnowledgeItemRejected"] = "KnowledgeItemRejected"
    feedback_id: Id
    reason: str


class RelayLegPlanned(Event):
    """The national coordinator planned (or re-planned) one leg of the relay (v2.2): `region` holds the
    baton from `first_day` to `last_day` (inclusive) with `activity`; `edition` is the edition or
    activity id the leg belongs to. Legs are ordered by `position`."""

    key_field: ClassVar[str] = "leg_id"
    event_type: Literal["RelayLegPlanned"] = "RelayLegPlanned"
    leg_id: Id
    position: int = Field(ge=1)
    first_day: date
    last_day: date
    activity: str = ""


class RelayLegStarted(Event):
    key_field: ClassVar[str] = "leg_id"
    event_type: Literal["RelayLegStarted"] = "RelayLegStarted"
    leg_id: Id
    starts_on: date


class RelayLegHandedOver(Event):
    key_field: ClassVar[str] = "leg_id"
    event_type: Literal["RelayLegHandedOver"] = "RelayLegHandedOver"
    leg_id: Id
    to_region: str
    # --- added in v2.2 ---
    to_leg_id: Id | None = Field(default=None, description="The leg that starts with the hand-over (none after the last).")
    early: bool = Field(default=False, description="Handed over by the holding region's organiser before the leg's last day.")
    knowledge_items: list[Id] = Field(
        default=[], description="The approved knowledge items (feedback ids) that travel with the baton from this leg."
    )


ALL_EVENTS: tuple[type[Event], ...] = (
    EditionOpened,
    EditionClosed,
    OfferPublished,
    OfferCancelled,
    SignupSubmitted,
    SignupWithdrawn,
    MatchAssigned,
    MatchWaitlisted,
    MatchUnmatched,
    NotificationRequested,
    NotificationSent,
    NotificationFailed,
    FeedbackSubmitted,
    RelayLegStarted,
    RelayLegHandedOver,
    SeatOffered,
    SeatOfferEnded,
    ParticipantRegistered,
    EditionCancelled,
    OfferChanged,
    SignupChanged,
    SignupApproved,
    SignupRefused,
    KnowledgeItemApproved,
    KnowledgeItemRejected,
    RelayLegPlanned,
)

AnyEvent = Annotated[
    EditionOpened
    | EditionClosed
    | OfferPublished
    | OfferCancelled
    | SignupSubmitted
    | SignupWithdrawn
    | MatchAssigned
    | MatchWaitlisted
    | MatchUnmatched
    | NotificationRequested
    | NotificationSent
    | NotificationFailed
    | FeedbackSubmitted
    | RelayLegStarted
    | RelayLegHandedOver
    | SeatOffered
    | SeatOfferEnded
    | ParticipantRegistered
    | EditionCancelled
    | OfferChanged
    | SignupChanged
    | SignupApproved
    | SignupRefused
    | KnowledgeItemApproved
    | KnowledgeItemRejected
    | RelayLegPlanned,
    Field(discriminator="event_type"),
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)


def decode_event(raw: bytes | str) -> Event:
    """Parse one Kafka message value into its event class (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_json(raw)


__all__ = [cls.__name__ for cls in ALL_EVENTS] + [
    "HostContact", "OfferSummary", "Recipient", "ALL_EVENTS", "decode_event",
]
