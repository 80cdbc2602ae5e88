"""THE builder module for reporting's test data: events as the other services publish them (contract
v2: no names, e-mail addresses or recipients), and figures as the repository aggregates them. Every
builder has defaults; pass only what a test is about."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from estafette.runtime.access import Principal
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    FeedbackSubmitted,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationFailed,
    NotificationSent,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    OfferSummary,
    RelayLegHandedOver,
    RelayLegStarted,
    SeatOfferEnded,
    SeatOffered,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.reporting.domain import DayFigures, EditionFigures, TemplateFigures, Version

REGION, EDITION = "twente", "wvdu-2027-twente"
T0 = datetime(2027, 5, 10, 9, 0, tzinfo=UTC)
VISIT_DAY = date(2027, 6, 8)


def at(minutes: float) -> datetime:
    """T0 plus `minutes`."""
    return T0 + timedelta(minutes=minutes)


def event_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def version(minutes: float = 0, n: int = 1) -> Version:
    return Version(at(minutes), event_id(n))


def _envelope(minutes: float, n: int | None, edition: str = EDITION, region: str = REGION) -> dict[str, Any]:
    envelope: dict[str, Any] = {"region": region, "edition": edition, "occurred_at": at(minutes)}
    if n is not None:
        envelope["event_id"] = event_id(n)
    return envelope


# --- editions, offers, sign-ups -----------------------------------------------------------------
def opened(edition: str = EDITION, region: str = REGION, name: str = "Week van de Uitwisseling Twente",
           starts_on: date = date(2027, 6, 7), minutes: float = 0, n: int | None = None) -> EditionOpened:
    return EditionOpened(**_envelope(minutes, n, edition, region), name=name,
                         signup_deadline=datetime(2027, 5, 20, tzinfo=UTC), starts_on=starts_on,
                         ends_on=starts_on + timedelta(days=4))


def closed(edition: str = EDITION, region: str = REGION, minutes: float = 0) -> EditionClosed:
    return EditionClosed(**_envelope(minutes, None, edition, region), reason="week over")


def cancelled(edition: str = EDITION, region: str = REGION, reason: str = "corona", minutes: float = 0
              ) -> EditionCancelled:
    return EditionCancelled(**_envelope(minutes, None, edition, region), reason=reason)


def offer(offer_id: str = "o-1", day: date = VISIT_DAY, capacity: int = 5, minutes: float = 0) -> OfferPublished:
    return OfferPublished(**_envelope(minutes, None), offer_id=offer_id, host_org="bakker-bart",
                          title="Een dag in de bakkerij", date=day, capacity=capacity)


def offer_changed(offer_id: str = "o-1", day: date = VISIT_DAY, capacity: int = 5, sequence: int = 1,
                  changed: tuple[str, ...] = ("capacity",), minutes: float = 0) -> OfferChanged:
    return OfferChanged(**_envelope(minutes, None), offer_id=offer_id, host_org="bakker-bart",
                        title="Een dag in de bakkerij", date=day, capacity=capacity, sequence=sequence,
                        changed=list(changed))


def offer_cancelled(offer_id: str = "o-1", minutes: float = 0) -> OfferCancelled:
    return OfferCancelled(**_envelope(minutes, None), offer_id=offer_id, reason="host ill")


def signup(signup_id: str = "s-1", org: str = "org-a", minutes: float = 0, approval: str = "not_required"
           ) -> SignupSubmitted:
    return SignupSubmitted(**_envelope(minutes, None), signup_id=signup_id, org=org, choices=["o-1"],
                           signed_up_at=at(minutes), approval=approval)


def signup_changed(signup_id: str = "s-1", choices: tuple[str, ...] = ("o-2", "o-1")) -> SignupChanged:
    return SignupChanged(**_envelope(0, None), signup_id=signup_id, choices=list(choices))


def approved(signup_id: str = "s-1", minutes: float = 0) -> SignupApproved:
    return SignupApproved(**_envelope(minutes, None), signup_id=signup_id)


def refused(signup_id: str = "s-1", minutes: float = 0) -> SignupRefused:
    return SignupRefused(**_envelope(minutes, None), signup_id=signup_id, reason="not this year")


def withdrawn(signup_id: str = "s-1", minutes: float = 0) -> SignupWithdrawn:
    return SignupWithdrawn(**_envelope(minutes, None), signup_id=signup_id)


# --- match events -------------------------------------------------------------------------------
def _summary(offer_id: str, day: date) -> OfferSummary:
    return OfferSummary(offer_id=offer_id, host_org="bakker-bart", title="Een dag in de bakkerij", date=day)


def assigned(signup_id: str = "s-1", offer_id: str = "o-1", rank: int = 1, minutes: float = 0, n: int | None = None,
             day: date = VISIT_DAY) -> MatchAssigned:
    return MatchAssigned(**_envelope(minutes, n), signup_id=signup_id, run_id=uuid.uuid4(), rank=rank,
                         offer=_summary(offer_id, day))


def seat_offered(signup_id: str = "s-1", offer_id: str = "o-1", rank: int = 1, minutes: float = 0,
                 n: int | None = None) -> SeatOffered:
    return SeatOffered(**_envelope(minutes, n), signup_id=signup_id, run_id=uuid.uuid4(), rank=rank,
                       offer=_summary(offer_id, VISIT_DAY), expires_at=at(minutes + 2 * 24 * 60))


def seat_offer_ended(signup_id: str = "s-1", offer_id: str = "o-1", minutes: float = 0, n: int | None = None,
                     reason: str = "declined") -> SeatOfferEnded:
    return SeatOfferEnded(**_envelope(minutes, n), signup_id=signup_id, run_id=uuid.uuid4(), offer_id=offer_id,
                          reason=reason)


def waitlisted(signup_id: str = "s-1", minutes: float = 0, n: int | None = None) -> MatchWaitlisted:
    return MatchWaitlisted(**_envelope(minutes, n), signup_id=signup_id, run_id=uuid.uuid4(), position=1,
                           reason_code="all_full")


def unmatched(signup_id: str = "s-1", minutes: float = 0, n: int | None = None) -> MatchUnmatched:
    return MatchUnmatched(**_envelope(minutes, n), signup_id=signup_id, run_id=uuid.uuid4(), reason_code="all_full",
                          reason="all chosen offers are full")


# --- notifications, feedback, relay ---------------------------------------------------------------
def sent(notification_id: uuid.UUID, minutes: float = 0, n: int | None = None, template: str = "match_assigned"
         ) -> NotificationSent:
    return NotificationSent(**_envelope(minutes, n), notification_id=notification_id, template=template,
                            signup_id="s-1")


def failed(notification_id: uuid.UUID, minutes: float = 0, n: int | None = None, template: str = "match_assigned"
           ) -> NotificationFailed:
    return NotificationFailed(**_envelope(minutes, n), notification_id=notification_id, template=template,
                              signup_id="s-1", permanent=False, error="451 try again later")


def feedback(feedback_id: str = "f-1", rating: int = 4, share_publicly: bool = False) -> FeedbackSubmitted:
    return FeedbackSubmitted(**_envelope(0, None), feedback_id=feedback_id, signup_id="s-1", offer_id="o-1",
                             rating=rating, learned="Veel geleerd.", share_publicly=share_publicly)


def leg_started(
    leg_id: str = "leg-1", starts_on: date = date(2027, 6, 7), edition: str = EDITION, region: str = REGION
) -> RelayLegStarted:
    return RelayLegStarted(**_envelope(0, None, edition, region), leg_id=leg_id, starts_on=starts_on)


def handed_over(leg_id: str = "leg-1", to_region: str = "achterhoek", minutes: float = 0) -> RelayLegHandedOver:
    return RelayLegHandedOver(**_envelope(minutes, None), leg_id=leg_id, to_region=to_region)


# --- figures --------------------------------------------------------------------------------------
COUNTS = (
    "offers", "seats", "offers_cancelled", "signups", "withdrawn", "organisations", "not_required",
    "pending_approval", "approved", "refused", "assigned", "first_choice", "waitlisted", "unmatched",
    "awaiting_rematch", "seat_offers_open", "emails_sent", "emails_failed", "feedback_count", "rating_total",
    "feedback_shareable",
)


def figures(edition_id: str = EDITION, region: str = REGION, **changes: Any) -> EditionFigures:
    """An edition's figures: all counts 0 unless given."""
    base: dict[str, Any] = {
        "edition_id": edition_id, "region": region, "name": f"Week {edition_id}", "status": "open",
        "starts_on": date(2027, 6, 7), "ends_on": date(2027, 6, 11), "cancellation_reason": None,
        "cancelled_at": None, **dict.fromkeys(COUNTS, 0),
    }
    return EditionFigures(**(base | changes))


def template(name: str, sent: int = 0, failed: int = 0) -> TemplateFigures:
    return TemplateFigures(template=name, sent=sent, failed=failed)


def day(d: date, signups: int = 0, offers: int = 0, seats: int = 0, assigned: int = 0) -> DayFigures:
    return DayFigures(date=d, signups=signups, offers=offers, seats=seats, assigned=assigned)


# --- who asks (runtime/access.py) -----------------------------------------------------------------
ADMIN = Principal("admin", subject="key:admin")
NATIONAL = Principal("national", subject="key:national")


def organiser(region: str = REGION) -> Principal:
    return Principal("organiser", region=region, subject=f"key:{region}")
