"""THE test data builders of the matching tests: domain types (the service's view), engine types
and instance documents (the engine's file format). Sensible defaults; name only what a test is about."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from estafette.runtime.access import Principal
from services.matching import domain, engine

EDITION = "twente-2027"  # of region twente
T0 = datetime(2027, 3, 1, tzinfo=UTC)  # sign-ups start here, one minute apart
DAY = date(2027, 6, 1)  # the visit day
RUN = uuid.UUID(int=1)  # the run that made a seat offer


# --- domain types (what matching keeps) --------------------------------------------------------
def offer(
    offer_id: str, host_org: str = "h1", capacity: int = 1, day: date = DAY, status: str = "published",
    max_per_org: int | None = None,
) -> domain.Offer:
    return domain.Offer(offer_id, host_org, f"Offer {offer_id}", day, capacity, max_per_org, "visit", "", status)


def participant(
    signup_id: str, choices: list[str], minutes: int = 0, org: str = "x", max_visits: int = 1,
    available: list[date] | None = None, status: str = "active", correlation_id: uuid.UUID | None = None,
) -> domain.Participant:
    return domain.Participant(
        signup_id, org, "nl", choices, available, max_visits,
        T0 + timedelta(minutes=minutes), status, correlation_id,
    )


def told(signup_id: str, state: str, reason_code: str | None = None, position: int | None = None) -> domain.MatchOutcome:
    """What a participant was last told."""
    return domain.MatchOutcome(signup_id, state, reason_code, position=position)


def previous(**states: tuple[str, str | None]) -> dict[str, domain.MatchOutcome]:
    """previous(p1=("waitlisted", "all_full")): signup_id -> what they were last told."""
    return {sid: told(sid, state, code) for sid, (state, code) in states.items()}


def held(signup_id: str, offer_id: str, status: str = "active", rank: int = 1) -> domain.Assignment:
    return domain.Assignment(signup_id, offer_id, rank, status, RUN)


def seat_offer(
    signup_id: str = "p1", offer_id: str = "a", status: str = "offered", expires_in: timedelta = timedelta(hours=1),
    now: datetime = T0,
) -> domain.SeatOffer:
    return domain.SeatOffer(signup_id, offer_id, 1, RUN, status, now - timedelta(hours=1), now + expires_in, None, now)


# --- who asks (estafette/runtime/access.py) -------------------------------------------------------
ADMIN = Principal("admin", subject="key:admin")
NATIONAL = Principal("national", subject="key:national")


def organiser(region: str = "twente") -> Principal:
    return Principal("organiser", region=region, subject=f"key:{region}")


def link_of(signup_id: str = "p1", edition_id: str = EDITION, offer_id: str | None = None) -> Principal:
    """The participant behind a link for `signup_id` (as `Links.principal` makes it), bound to the seat
    offer on `offer_id` when given (as the seat-offer e-mail's links are)."""
    return Principal("participant", signup_id=signup_id, edition_id=edition_id, link_ref=offer_id,
                     subject=f"link:{signup_id}")


# --- engine types ------------------------------------------------------------------------------
def engine_offer(offer_id: str, capacity: int = 1, day: str = "2027-05-31", host_org: str = "org-h", **extra) -> engine.Offer:
    return engine.Offer(offer_id, host_org, date.fromisoformat(day), capacity, **extra)


def engine_participant(signup_id: str, minute: int, choices: tuple[str, ...], org: str = "org-a", **extra) -> engine.Participant:
    return engine.Participant(signup_id, org, datetime(2027, 3, 1, 9, minute, tzinfo=UTC), choices, **extra)


# --- instance documents (the engine's file format) -----------------------------------------------
def offer_doc(offer_id: str, capacity: int = 1, host_org: str = "org-h") -> dict:
    """An offer record; written with `host`, the older name instance files still use."""
    return {"id": offer_id, "host": host_org, "date": "2027-05-31", "capacity": capacity}


def participant_doc(signup_id: str, minute: int, choices: list[str], org: str = "org-a") -> dict:
    return {"id": signup_id, "org": org, "signed_up_at": f"2027-03-01T09:{minute:02d}:00Z", "choices": choices}
