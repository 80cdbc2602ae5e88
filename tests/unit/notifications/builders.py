"""THE builder module for the notifications tests: events that ask for a message, and template data."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from estafette.runtime.access import Principal
from estafette.runtime.auth import Links
from estafette.runtime.clock import Clock
from estafette.runtime.scheduler import Step
from schemas import (
    EditionCancelled,
    EditionOpened,
    HostContact,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    OfferSummary,
    ParticipantRegistered,
    Recipient,
    SeatOffered,
    SeatOfferEnded,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.notifications.domain import Answer
from services.notifications.links import ParticipantLinks, SeatOfferLinks
from services.notifications.service import Journey

EDITION = "wvdu-2026-twente"
RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
MATCHING_URL = "https://matching.example.org/"
LANGUAGES = ("nl", "de", "en")
#: Signs the participant links of the unit tests (the services get ESTAFETTE_LINK_SECRET).
LINKS = Links("unit-test-link-secret")


REGISTRATION_URL = "https://registration.example.org/"
#: The journey's "now" in the unit tests: well before the visits (15 September 2026).
NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


def journey(clock: Clock | None = None, zone: str = "Europe/Amsterdam") -> Journey:
    """The journey's dependencies as main.py wires them: the clock (fixed at NOW unless given), one
    time zone for every region, and the participant links signed with LINKS."""
    links = ParticipantLinks(LINKS, REGISTRATION_URL)
    return Journey(clock or Clock(fixed_now=NOW), lambda region: zone, links.signup, links.feedback)


def answer_links(matching_url: str = MATCHING_URL) -> SeatOfferLinks:
    """The seat offer e-mail's links, as main.py wires them (signed with LINKS)."""
    return SeatOfferLinks(LINKS, matching_url)


def plain_answer_link(answer: Answer, signup_id: str, edition_id: str, offer_id: str) -> str:
    """An unsigned stand-in for `domain.AnswerLink` (for the pure rules)."""
    return f"https://answer.example.org/{answer}/{edition_id}/{signup_id}/{offer_id}"


# --- who asks (runtime/access.py) ---------------------------------------------------------------------
ADMIN = Principal("admin", subject="key:admin")
NATIONAL = Principal("national", subject="key:national")


def organiser(region: str = "twente") -> Principal:
    return Principal("organiser", region=region, subject=f"key:{region}")


def recipient(name: str = "Anna", email: str = "anna@example.org", language: str = "de") -> Recipient:
    """A requested message's own recipient (NotificationRequested)."""
    return Recipient(name=name, email=email, language=language)


def participant(
    signup_id: str = "s-1", *, name: str = "Anna", email: str = "anna@example.org", language: str = "de",
    region: str = "twente", edition: str = EDITION,
) -> ParticipantRegistered:
    """A participant's contact details, as registration publishes them on the participants topic."""
    return ParticipantRegistered(
        region=region, edition=edition, signup_id=signup_id, name=name, email=email, language=language
    )


def offer_summary(**changes: Any) -> OfferSummary:
    fields: dict[str, Any] = {"offer_id": "o-1", "host_org": "acme", "title": "Visit", "date": date(2026, 9, 15)}
    return OfferSummary(**{**fields, **changes})


def _envelope(
    signup_id: str, correlation_id: uuid.UUID | None, region: str = "twente", edition: str = EDITION
) -> dict[str, Any]:
    """A match event's fields: ids only (contract v2: no recipient)."""
    envelope: dict[str, Any] = {"region": region, "edition": edition, "signup_id": signup_id, "run_id": RUN_ID}
    if correlation_id is not None:
        envelope["correlation_id"] = correlation_id
    return envelope


def assigned(
    signup_id: str = "s-1", *, rank: int = 1, correlation_id: uuid.UUID | None = None,
    region: str = "twente", edition: str = EDITION,
) -> MatchAssigned:
    return MatchAssigned(**_envelope(signup_id, correlation_id, region, edition), rank=rank, offer=offer_summary())


def waitlisted(signup_id: str = "s-1", *, position: int = 3) -> MatchWaitlisted:
    return MatchWaitlisted(**_envelope(signup_id, None), position=position, reason_code="all_full")


def unmatched(signup_id: str = "s-1", *, reason_code: str = "own_org") -> MatchUnmatched:
    return MatchUnmatched(**_envelope(signup_id, None), reason_code=reason_code, reason="x")


def seat_offered(signup_id: str = "s-1", *, rank: int = 2) -> SeatOffered:
    return SeatOffered(
        **_envelope(signup_id, None), rank=rank, offer=offer_summary(),
        expires_at=datetime(2026, 9, 14, 21, 59, tzinfo=UTC),
    )


def seat_offer_ended(signup_id: str = "s-1", *, reason: str = "declined") -> SeatOfferEnded:
    return SeatOfferEnded(region="twente", edition=EDITION, signup_id=signup_id, run_id=RUN_ID, offer_id="o-1", reason=reason)


def request(notification_id: uuid.UUID | None = None, **context: Any) -> NotificationRequested:
    return NotificationRequested(
        region="twente", edition=EDITION, notification_id=notification_id or uuid.uuid4(),
        template="feedback_reminder", recipient=recipient(), context=context or {"message": "Hi", "days": 3},
    )


# --- template data (what domain.from_* stores for the renderer) -----------------------------------------
OFFER: dict[str, Any] = {
    "offer_id": "o-1",
    "host_org": "bakkerij-van-dam",
    "title": "Een dag in de bakkerij",
    "date": "2026-09-15",
    "format": "visit",
    "location": "Marktstraat 1, Enschede",
}
ACCEPT = answer_links("http://127.0.0.1:8002")("accept", "s-1", "e-1", "o-1")
DECLINE = answer_links("http://127.0.0.1:8002")("decline", "s-1", "e-1", "o-1")


def offer(**changes: Any) -> dict[str, Any]:
    return {**OFFER, **changes}


def seat_offer_data(**changes: Any) -> dict[str, Any]:
    data = {"offer": OFFER, "rank": 1, "expires_at": "2026-09-14T21:59:00+00:00", "accept_url": ACCEPT,
            "decline_url": DECLINE}
    return {**data, **changes}


# --- the journey's events --------------------------------------------------------------------------------
def host_contact(name: str = "Henk Host", email: str = "henk@bakkerij.example.org", language: str = "en") -> HostContact:
    return HostContact(name=name, email=email, language=language)


def edition_opened(edition: str = EDITION, **changes: Any) -> EditionOpened:
    fields: dict[str, Any] = {
        "region": "twente", "edition": edition, "name": "Week van de Uitwisseling 2026",
        "signup_deadline": datetime(2026, 8, 31, 22, 0, tzinfo=UTC), "starts_on": date(2026, 9, 14),
        "ends_on": date(2026, 9, 18), "languages": ["nl", "de", "en"],
    }
    return EditionOpened(**{**fields, **changes})


def _offer_fields(offer_id: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "region": "twente", "edition": EDITION, "offer_id": offer_id, "host_org": "bakkerij-van-dam",
        "title": "Een dag in de bakkerij", "date": date(2026, 9, 15), "capacity": 3, "location": "Marktstraat 1",
        "part_of_day": "morning", "starts_at": time(9, 30), "ends_at": time(12, 0), "what_to_bring": "Schoenen",
        "host_contact": host_contact(),
    }
    return {**fields, **changes}


def offer_published(offer_id: str = "o-1", **changes: Any) -> OfferPublished:
    return OfferPublished(**_offer_fields(offer_id, **changes))


def offer_changed(offer_id: str = "o-1", *, changed: list[str], sequence: int = 1, **changes: Any) -> OfferChanged:
    return OfferChanged(**_offer_fields(offer_id, **changes), changed=changed, sequence=sequence)


def offer_cancelled(offer_id: str = "o-1", reason: str = "De bakker is ziek") -> OfferCancelled:
    return OfferCancelled(region="twente", edition=EDITION, offer_id=offer_id, reason=reason)


def edition_cancelled(reason: str = "Corona") -> EditionCancelled:
    return EditionCancelled(region="twente", edition=EDITION, reason=reason)


def signup_submitted(signup_id: str = "s-1", *, choices: tuple[str, ...] = ("o-1",), **changes: Any) -> SignupSubmitted:
    fields: dict[str, Any] = {
        "region": "twente", "edition": EDITION, "signup_id": signup_id, "org": "gemeente", "language": "nl",
        "choices": list(choices), "signed_up_at": NOW,
    }
    return SignupSubmitted(**{**fields, **changes})


def signup_withdrawn(signup_id: str = "s-1") -> SignupWithdrawn:
    return SignupWithdrawn(region="twente", edition=EDITION, signup_id=signup_id)


def signup_refused(signup_id: str = "s-1", reason: str = "Te druk") -> SignupRefused:
    return SignupRefused(region="twente", edition=EDITION, signup_id=signup_id, reason=reason)


def assigned_to(signup_id: str, offer_id: str = "o-1", **summary: Any) -> MatchAssigned:
    """An assignment to `offer_id` (the summary as matching publishes it)."""
    return MatchAssigned(**_envelope(signup_id, None), rank=1, offer=offer_summary(offer_id=offer_id, **summary))


def seat_offered_on(signup_id: str, offer_id: str = "o-1", expires_at: datetime | None = None) -> SeatOffered:
    return SeatOffered(
        **_envelope(signup_id, None), rank=1, offer=offer_summary(offer_id=offer_id),
        expires_at=expires_at or datetime(2026, 9, 5, 21, 59, tzinfo=UTC),
    )


def step(kind: str, key: str, due_at: datetime, payload: dict[str, Any]) -> Step:
    """A due step as the scheduler hands it to its handler."""
    return Step(id=1, kind=kind, key=key, due_at=due_at, payload=payload)
