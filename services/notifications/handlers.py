"""Kafka subscribers: decode → queue the message (inside the consumer's transaction, no SMTP)."""

from __future__ import annotations

from estafette.runtime.uow import Transaction
from schemas import Event, MatchAssigned, MatchUnmatched, MatchWaitlisted, NotificationRequested
from services.notifications import domain, service


async def on_match(tx: Transaction, event: Event) -> None:
    if isinstance(event, MatchAssigned | MatchWaitlisted | MatchUnmatched):
        await service.record(tx, domain.from_match(event))


async def on_request(tx: Transaction, event: Event) -> None:
    if isinstance(event, NotificationRequested):
        await service.record(tx, domain.from_request(event))
