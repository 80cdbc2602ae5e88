"""Kafka subscribers: one dispatch table per kind of topic, read in every region (the runtime
subscribes by pattern, so a region added later is read from its first event without a restart); each
handler is one typed call of the service.

Contract v2: sign-up and match events carry no personal data (names and e-mail addresses travel only on
the regions' participants topics, which reporting does not read); only ids, the organisation, the
moment, the offer and the rank are passed on.
"""

from __future__ import annotations

from collections.abc import Mapping

from estafette.runtime.app import Runtime
from estafette.runtime.consumer import EventHandler
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
    OfferPublished,
    RelayLegHandedOver,
    RelayLegStarted,
    SeatOfferEnded,
    SeatOffered,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.topics import EDITIONS, FEEDBACK, MATCHES, NOTIFICATIONS, OFFERS, RELAY, SIGNUPS, Topic
from services.reporting import service
from services.reporting.domain import Placement, Version
from services.reporting.repository import Repository

Tx = Transaction[Repository]


def _version(e: Event) -> Version:
    return Version(e.occurred_at, e.event_id)


def _placement(e: MatchAssigned | SeatOffered) -> Placement:
    return Placement(e.offer.offer_id, e.offer.date, e.rank)


async def edition_opened(tx: Tx, e: EditionOpened) -> None:
    await service.edition_opened(tx, e.region, e.edition, e.name, e.starts_on, e.ends_on)


async def edition_closed(tx: Tx, e: EditionClosed) -> None:
    await service.edition_closed(tx, e.region, e.edition)


async def offer_published(tx: Tx, e: OfferPublished) -> None:
    await service.offer_published(tx, e.region, e.edition, e.offer_id, e.date, e.capacity)


async def offer_cancelled(tx: Tx, e: OfferCancelled) -> None:
    await service.offer_cancelled(tx, e.region, e.edition, e.offer_id)


async def signup_submitted(tx: Tx, e: SignupSubmitted) -> None:
    await service.signup_submitted(tx, e.region, e.edition, e.signup_id, e.org, e.signed_up_at)


async def signup_withdrawn(tx: Tx, e: SignupWithdrawn) -> None:
    await service.signup_withdrawn(tx, e.region, e.edition, e.signup_id)


async def match_assigned(tx: Tx, e: MatchAssigned) -> None:
    await service.match_assigned(tx, e.region, e.edition, e.signup_id, _version(e), _placement(e))


async def seat_offered(tx: Tx, e: SeatOffered) -> None:
    await service.seat_offered(tx, e.region, e.edition, e.signup_id, _version(e), _placement(e))


async def seat_offer_ended(tx: Tx, e: SeatOfferEnded) -> None:
    await service.seat_offer_ended(tx, e.region, e.edition, e.signup_id, _version(e))


async def match_waitlisted(tx: Tx, e: MatchWaitlisted) -> None:
    await service.match_waitlisted(tx, e.region, e.edition, e.signup_id, _version(e))


async def match_unmatched(tx: Tx, e: MatchUnmatched) -> None:
    await service.match_unmatched(tx, e.region, e.edition, e.signup_id, _version(e))


async def notification_sent(tx: Tx, e: NotificationSent) -> None:
    await service.notification_sent(tx, e.region, e.edition, e.notification_id, _version(e))


async def notification_failed(tx: Tx, e: NotificationFailed) -> None:
    await service.notification_failed(tx, e.region, e.edition, e.notification_id, _version(e))


async def feedback_submitted(tx: Tx, e: FeedbackSubmitted) -> None:
    await service.feedback_submitted(tx, e.region, e.edition, e.feedback_id, e.rating)


async def relay_leg_started(tx: Tx, e: RelayLegStarted) -> None:
    await service.relay_leg_started(tx, e.region, e.edition, e.leg_id, e.starts_on)


async def relay_leg_handed_over(tx: Tx, e: RelayLegHandedOver) -> None:
    await service.relay_leg_handed_over(tx, e.region, e.edition, e.leg_id, e.to_region, e.occurred_at)


#: Per consumed topic: the consumer's name and its dispatch table {event class: handler}.
SUBSCRIPTIONS: dict[Topic, tuple[str, Mapping[type[Event], EventHandler]]] = {
    EDITIONS: ("editions", {EditionOpened: edition_opened, EditionClosed: edition_closed}),
    OFFERS: ("offers", {OfferPublished: offer_published, OfferCancelled: offer_cancelled}),
    SIGNUPS: ("signups", {SignupSubmitted: signup_submitted, SignupWithdrawn: signup_withdrawn}),
    MATCHES: ("matches", {
        MatchAssigned: match_assigned, SeatOffered: seat_offered, SeatOfferEnded: seat_offer_ended,
        MatchWaitlisted: match_waitlisted, MatchUnmatched: match_unmatched,
    }),
    NOTIFICATIONS: ("notifications", {NotificationSent: notification_sent, NotificationFailed: notification_failed}),
    FEEDBACK: ("feedback", {FeedbackSubmitted: feedback_submitted}),
    RELAY: ("relay", {RelayLegStarted: relay_leg_started, RelayLegHandedOver: relay_leg_handed_over}),
}


def register(rt: Runtime) -> None:
    for topic, (name, table) in SUBSCRIPTIONS.items():
        rt.subscribe(topic, name, table)
