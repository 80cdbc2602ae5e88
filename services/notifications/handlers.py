"""Kafka subscribers: each event type is one call of the service (inside the consumer's transaction)."""

from __future__ import annotations

from estafette.runtime.consumer import EventHandler
from estafette.runtime.uow import Tx
from schemas import (
    Event,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    ParticipantRegistered,
    SeatOffered,
)
from services.notifications import service
from services.notifications.domain import AnswerLink
from services.notifications.repository import Repository


def matches(answer_link: AnswerLink) -> dict[type[Event], EventHandler]:
    """Match events and seat offers (whose e-mail carries the signed links `answer_link` makes).
    SeatOfferEnded is not e-mailed."""

    async def seat_offered(tx: Tx[Repository], event: SeatOffered) -> None:
        await service.seat_offered(tx, event, answer_link)

    return {
        MatchAssigned: service.match_decided,
        MatchWaitlisted: service.match_decided,
        MatchUnmatched: service.match_decided,
        SeatOffered: seat_offered,
    }


REQUESTS: dict[type[Event], EventHandler] = {NotificationRequested: service.notification_requested}

#: The region's participants topic: a participant's contact details (kept until erased).
PARTICIPANTS: dict[type[Event], EventHandler] = {ParticipantRegistered: service.participant_registered}


async def participant_erased(tx: Tx[Repository], signup_id: str) -> None:
    """A tombstone on the participants topic (a null value under the sign-up id): erase the person."""
    await service.participant_erased(tx, signup_id)
