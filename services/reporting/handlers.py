"""Kafka subscribers: turn each new event into the reporting state it implies.

Sign-up events carry personal data: only ids, the organisation and the moment are taken from them.
"""

from __future__ import annotations

from estafette.runtime.app import Runtime
from estafette.runtime.uow import Transaction
from schemas import (
    EditionClosed,
    EditionOpened,
    Event,
    FeedbackSubmitted,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationFailed,
    NotificationSent,
    OfferCancelled,
    SeatOfferEnded,
    SeatOffered,
    OfferPublished,
    RelayLegHandedOver,
    RelayLegStarted,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.topics import EDITIONS, FEEDBACK, MATCHES, NOTIFICATIONS, OFFERS, RELAY, SIGNUPS
from services.reporting import service
from services.reporting.domain import MatchState, NotificationOutcome, Version


def _version(event: Event) -> Version:
    return Version(event.occurred_at, event.event_id)


async def on_edition(tx: Transaction, event: Event) -> None:
    if isinstance(event, EditionOpened):
        await service.edition_opened(tx.conn, event.region, event.edition, event.name, event.starts_on, event.ends_on)
    elif isinstance(event, EditionClosed):
        await service.edition_closed(tx.conn, event.region, event.edition)


async def on_offer(tx: Transaction, event: Event) -> None:
    if isinstance(event, OfferPublished):
        await service.offer_published(tx.conn, event.region, event.edition, event.offer_id, event.date, event.capacity)
    elif isinstance(event, OfferCancelled):
        await service.offer_cancelled(tx.conn, event.region, event.edition, event.offer_id)


async def on_signup(tx: Transaction, event: Event) -> None:
    if isinstance(event, SignupSubmitted):
        await service.signup_submitted(tx.conn, event.region, event.edition, event.signup_id, event.org, event.signed_up_at)
    elif isinstance(event, SignupWithdrawn):
        await service.signup_withdrawn(tx.conn, event.region, event.edition, event.signup_id)


def match_state(event: Event) -> MatchState | None:
    """The outcome a match event records for its sign-up (None for other events)."""
    if isinstance(event, MatchAssigned):
        return MatchState(
            event.signup_id, event.edition, "assigned", _version(event),
            offer_id=event.offer.offer_id, offer_date=event.offer.date, rank=event.rank,
        )
    if isinstance(event, SeatOffered):
        return MatchState(
            event.signup_id, event.edition, "offered", _version(event),
            offer_id=event.offer.offer_id, offer_date=event.offer.date, rank=event.rank,
        )
    if isinstance(event, MatchWaitlisted | SeatOfferEnded):  # a declined or expired offer: back to waiting
        return MatchState(event.signup_id, event.edition, "waitlisted", _version(event))
    if isinstance(event, MatchUnmatched):
        return MatchState(event.signup_id, event.edition, "unmatched", _version(event))
    return None


async def on_match(tx: Transaction, event: Event) -> None:
    if (state := match_state(event)) is not None:
        await service.match_changed(tx.conn, event.region, state)


async def on_notification(tx: Transaction, event: Event) -> None:
    if isinstance(event, NotificationSent | NotificationFailed):
        status = "sent" if isinstance(event, NotificationSent) else "failed"
        outcome = NotificationOutcome(event.notification_id, event.edition, status, _version(event))
        await service.notification_outcome(tx.conn, event.region, outcome)


async def on_feedback(tx: Transaction, event: Event) -> None:
    if isinstance(event, FeedbackSubmitted):
        await service.feedback_submitted(tx.conn, event.region, event.edition, event.feedback_id, event.rating)


async def on_relay(tx: Transaction, event: Event) -> None:
    if isinstance(event, RelayLegStarted):
        await service.relay_leg_started(tx.conn, event.region, event.edition, event.leg_id, event.starts_on)
    elif isinstance(event, RelayLegHandedOver):
        await service.relay_leg_handed_over(
            tx.conn, event.region, event.edition, event.leg_id, event.to_region, event.occurred_at
        )


def register(rt: Runtime) -> None:
    rt.subscribe(EDITIONS, "editions", on_edition)
    rt.subscribe(OFFERS, "offers", on_offer)
    rt.subscribe(SIGNUPS, "signups", on_signup)
    rt.subscribe(MATCHES, "matches", on_match)
    rt.subscribe(NOTIFICATIONS, "notifications", on_notification)
    rt.subscribe(FEEDBACK, "feedback", on_feedback)
    rt.subscribe(RELAY, "relay", on_relay)
