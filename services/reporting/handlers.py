"""Kafka subscribers: one dispatch table per kind of topic, read in every region (the runtime
subscribes by pattern, so a region added later is read from its first event without a restart); each
handler is one typed call of the service.

Contract v2: sign-up and match events carry no personal data (names and e-mail addresses travel only on
the regions' participants topics, which reporting does not read); only ids, the organisation, the
moment, the offer and the rank are passed on; of the journey's events (contract v2.1) also an edition's
cancellation reason, a sign-up's approval, an offer's date, capacity and sequence, a feedback's rating
and whether it may be shared, and an e-mail's template.

Every event type of a consumed topic is in its table: handled, or explicitly `ignored` (SignupChanged:
reporting does not report choices). tests/unit/reporting/test_handlers.py checks it.

In bulk (runtime/consumer.py `many`): a consumer batch's consecutive SignupSubmitted, NotificationSent
or NotificationFailed reach the service in one call (a burst of sign-ups, a match run's e-mails), with
the same result as one by one in a constant number of statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from estafette.runtime.app import Runtime
from estafette.runtime.consumer import EventHandler, many
from estafette.runtime.uow import Transaction
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    Event,
    FeedbackSubmitted,
    KnowledgeItemApproved,
    KnowledgeItemRejected,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationFailed,
    NotificationSent,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    RelayLegHandedOver,
    RelayLegPlanned,
    RelayLegStarted,
    SeatOfferEnded,
    SeatOffered,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.topics import EDITIONS, FEEDBACK, MATCHES, NOTIFICATIONS, OFFERS, RELAY, SIGNUPS, Topic
from services.reporting import service
from services.reporting.domain import KnowledgeItem, NotificationOutcome, Placement, SubmittedSignup, Version
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


async def edition_cancelled(tx: Tx, e: EditionCancelled) -> None:
    await service.edition_cancelled(tx, e.region, e.edition, e.reason, e.occurred_at)


async def offer_published(tx: Tx, e: OfferPublished) -> None:
    await service.offer_published(tx, e.region, e.edition, e.offer_id, e.date, e.capacity, e.sequence)


async def offer_changed(tx: Tx, e: OfferChanged) -> None:
    await service.offer_changed(tx, e.region, e.edition, e.offer_id, e.date, e.capacity, e.sequence)


async def offer_cancelled(tx: Tx, e: OfferCancelled) -> None:
    await service.offer_cancelled(tx, e.region, e.edition, e.offer_id)


async def signups_submitted(tx: Tx, events: list[SignupSubmitted]) -> None:
    """In bulk (`many`): a consumer batch's run of SignupSubmitted in one call."""
    await service.signups_submitted(tx, [
        SubmittedSignup(e.region, e.edition, e.signup_id, e.org, e.signed_up_at, e.approval) for e in events
    ])


async def signup_approved(tx: Tx, e: SignupApproved) -> None:
    await service.signup_approved(tx, e.region, e.edition, e.signup_id)


async def signup_refused(tx: Tx, e: SignupRefused) -> None:
    await service.signup_refused(tx, e.region, e.edition, e.signup_id)


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


async def notifications_sent(tx: Tx, events: list[NotificationSent]) -> None:
    """In bulk (`many`): one e-mail per participant of a burst of sign-ups or of a match run."""
    await service.notification_outcomes(tx, [
        (e.region, NotificationOutcome(e.notification_id, e.edition, "sent", _version(e), e.template)) for e in events
    ])


async def notifications_failed(tx: Tx, events: list[NotificationFailed]) -> None:
    await service.notification_outcomes(tx, [
        (e.region, NotificationOutcome(e.notification_id, e.edition, "failed", _version(e), e.template)) for e in events
    ])


async def feedback_submitted(tx: Tx, e: FeedbackSubmitted) -> None:
    await service.feedback_submitted(tx, e.region, e.edition, e.feedback_id, e.rating, e.share_publicly,
                                     e.submitted_at or e.occurred_at)


async def knowledge_item_approved(tx: Tx, e: KnowledgeItemApproved) -> None:
    await service.knowledge_item_decided(tx, KnowledgeItem(
        e.feedback_id, e.region, e.edition, "approved", _version(e), e.offer_id, e.text, e.language,
        e.offer_title, e.host_org, e.approved_at))


async def knowledge_item_rejected(tx: Tx, e: KnowledgeItemRejected) -> None:
    await service.knowledge_item_decided(tx, KnowledgeItem(e.feedback_id, e.region, e.edition, "rejected", _version(e)))


async def relay_leg_planned(tx: Tx, e: RelayLegPlanned) -> None:
    await service.relay_leg_planned(tx, e.region, e.edition, e.leg_id, _version(e), e.position, e.first_day,
                                    e.last_day, e.activity)


async def relay_leg_started(tx: Tx, e: RelayLegStarted) -> None:
    await service.relay_leg_started(tx, e.region, e.edition, e.leg_id, e.starts_on)


async def relay_leg_handed_over(tx: Tx, e: RelayLegHandedOver) -> None:
    await service.relay_leg_handed_over(tx, e.region, e.edition, e.leg_id, e.to_region, e.occurred_at,
                                        e.to_leg_id, e.early, tuple(e.knowledge_items))


async def ignored(tx: Tx, e: Event) -> None:
    """An event type of a consumed topic that reporting does not need (recorded in the inbox, nothing else)."""


#: Per consumed topic: the consumer's name and its dispatch table {event class: handler}, with every event
#: type of the topic (the ones reporting does not need map to `ignored`).
SUBSCRIPTIONS: dict[Topic, tuple[str, Mapping[type[Event], EventHandler]]] = {
    EDITIONS: ("editions", {
        EditionOpened: edition_opened, EditionClosed: edition_closed, EditionCancelled: edition_cancelled,
    }),
    OFFERS: ("offers", {OfferPublished: offer_published, OfferChanged: offer_changed, OfferCancelled: offer_cancelled}),
    SIGNUPS: ("signups", {
        SignupSubmitted: many(signups_submitted), SignupApproved: signup_approved, SignupRefused: signup_refused,
        SignupWithdrawn: signup_withdrawn, SignupChanged: ignored,
    }),
    MATCHES: ("matches", {
        MatchAssigned: match_assigned, SeatOffered: seat_offered, SeatOfferEnded: seat_offer_ended,
        MatchWaitlisted: match_waitlisted, MatchUnmatched: match_unmatched,
    }),
    NOTIFICATIONS: ("notifications", {NotificationSent: many(notifications_sent), NotificationFailed: many(notifications_failed)}),
    FEEDBACK: ("feedback", {
        FeedbackSubmitted: feedback_submitted, KnowledgeItemApproved: knowledge_item_approved,
        KnowledgeItemRejected: knowledge_item_rejected,
    }),
    RELAY: ("relay", {
        RelayLegPlanned: relay_leg_planned, RelayLegStarted: relay_leg_started,
        RelayLegHandedOver: relay_leg_handed_over,
    }),
}


def register(rt: Runtime, changed: Callable[[], object] | None = None) -> None:
    """Subscribe every table; `changed` (the dashboard feed's wake-up) runs after each commit of a handler."""
    for topic, (name, table) in SUBSCRIPTIONS.items():
        rt.subscribe(topic, name, _waking(table, changed) if changed else table)


def _waking(table: Mapping[type[Event], EventHandler], changed: Callable[[], object]) -> dict[type[Event], EventHandler]:
    def wrap(handler: EventHandler) -> EventHandler:
        async def handle(tx: Tx, e: Event) -> None:
            await handler(tx, e)
            tx.after_commit(changed)
        return handle
    return {cls: wrap(handler) for cls, handler in table.items()}
