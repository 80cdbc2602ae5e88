"""Kafka subscribers: decode → queue the message (inside the consumer's transaction, no SMTP)."""

from __future__ import annotations

from estafette.runtime.consumer import Handler
from estafette.runtime.uow import Transaction
from schemas import Event, MatchAssigned, MatchUnmatched, MatchWaitlisted, NotificationRequested, SeatOffered
from services.notifications import domain, service


def match_handler(matching_url: str) -> Handler:
    """Match events and seat offers (whose e-mail links to the matching service at `matching_url`)."""

    async def on_match(tx: Transaction, event: Event) -> None:
        if isinstance(event, MatchAssigned | MatchWaitlisted | MatchUnmatched):
            await service.record(tx, domain.from_match(event))
        elif isinstance(event, SeatOffered):
            await service.record(tx, domain.from_seat_offer(event, matching_url))

    return on_match


async def on_request(tx: Transaction, event: Event) -> None:
    if isinstance(event, NotificationRequested):
        await service.record(tx, domain.from_request(event))
