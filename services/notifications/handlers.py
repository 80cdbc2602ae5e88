"""Kafka subscribers and scheduled steps: each event type (and each step kind) is one call of the
service, inside the consumer's (or the step's) transaction."""

from __future__ import annotations

from estafette.runtime.consumer import EventHandler, many
from estafette.runtime.scheduler import Step, StepHandler
from estafette.runtime.uow import Tx
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    Event,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    ParticipantRegistered,
    SeatOffered,
    SeatOfferEnded,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.notifications import service
from services.notifications.domain import AnswerLink
from services.notifications.repository import Repository
from services.notifications.service import Journey


def editions(journey: Journey) -> dict[type[Event], EventHandler]:
    """The region's editions: kept (name, dates, status); a cancellation tells everyone once."""

    async def cancelled(tx: Tx[Repository], event: EditionCancelled) -> None:
        await service.edition_cancelled(tx, event, journey)

    return {EditionOpened: service.edition_opened, EditionClosed: service.edition_closed, EditionCancelled: cancelled}


def offers(journey: Journey) -> dict[type[Event], EventHandler]:
    """The region's offers: kept (with the host contact); a change or cancellation tells those placed."""

    async def published(tx: Tx[Repository], event: OfferPublished) -> None:
        await service.offer_published(tx, event, journey)

    async def changed(tx: Tx[Repository], event: OfferChanged) -> None:
        await service.offer_changed(tx, event, journey)

    async def cancelled(tx: Tx[Repository], event: OfferCancelled) -> None:
        await service.offer_cancelled(tx, event, journey)

    return {OfferPublished: published, OfferChanged: changed, OfferCancelled: cancelled}


def signups(journey: Journey) -> dict[type[Event], EventHandler]:
    """The region's sign-ups: kept (status, approval, choices); confirmation, refusal, withdrawal.
    SignupSubmitted is handled in bulk: a batch's consecutive ones in one call (a busy sign-up day)."""

    async def submitted(tx: Tx[Repository], events: list[SignupSubmitted]) -> None:
        await service.signups_submitted(tx, events, journey)

    async def withdrawn(tx: Tx[Repository], event: SignupWithdrawn) -> None:
        await service.signup_withdrawn(tx, event, journey)

    return {
        SignupSubmitted: many(submitted),
        SignupChanged: service.signup_changed,
        SignupApproved: service.signup_approved,
        SignupRefused: service.signup_refused,
        SignupWithdrawn: withdrawn,
    }


def matches(answer_link: AnswerLink, journey: Journey) -> dict[type[Event], EventHandler]:
    """Match events and seat offers (whose e-mail carries the signed links `answer_link` makes).
    SeatOfferEnded is not e-mailed (the seat offer is no longer held). MatchAssigned is handled in
    bulk: consecutive ones of a batch in one call (a match run publishes thousands at once)."""

    async def assigned(tx: Tx[Repository], events: list[MatchAssigned]) -> None:
        await service.matches_assigned(tx, events, journey)

    async def seat_offered(tx: Tx[Repository], event: SeatOffered) -> None:
        await service.seat_offered(tx, event, answer_link)

    return {
        MatchAssigned: many(assigned),
        MatchWaitlisted: service.match_decided,
        MatchUnmatched: service.match_decided,
        SeatOffered: seat_offered,
        SeatOfferEnded: service.seat_offer_ended,
    }


def steps(journey: Journey) -> dict[str, StepHandler]:
    """The scheduled steps (runtime/scheduler.py), by kind: the message is recorded in the transaction
    that marks the step done."""

    async def reminder(tx: Tx[Repository], step: Step) -> None:
        await service.reminder_due(tx, step, journey)

    async def visitor_list(tx: Tx[Repository], step: Step) -> None:
        await service.visitor_list_due(tx, step, journey)

    async def feedback_request(tx: Tx[Repository], step: Step) -> None:
        await service.feedback_due(tx, step, journey)

    return {"reminder": reminder, "visitor_list": visitor_list, "feedback_request": feedback_request}


REQUESTS: dict[type[Event], EventHandler] = {NotificationRequested: service.notification_requested}

#: The region's participants topic: a participant's contact details (kept until erased).
PARTICIPANTS: dict[type[Event], EventHandler] = {ParticipantRegistered: many(service.participants_registered)}


async def participant_erased(tx: Tx[Repository], signup_id: str) -> None:
    """A tombstone on the participants topic (a null value under the sign-up id): erase the person."""
    await service.participant_erased(tx, signup_id)
