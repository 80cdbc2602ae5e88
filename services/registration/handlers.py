"""Kafka subscribers: what matching tells participants (the region's matches topic) becomes the
participant's placement, which "my sign-up" shows. Each event is one typed call of the service; the
runtime's inbox dedupes redelivered events, and a placement is one row per sign-up (replaced), so a
handler's effect is idempotent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from estafette.runtime.app import Runtime
from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, SeatOffered, SeatOfferEnded
from schemas.topics import MATCHES
from services.registration import service

if TYPE_CHECKING:
    from estafette.runtime.uow import Tx
    from services.registration.repository import Repository


async def match_assigned(tx: Tx[Repository], e: MatchAssigned) -> None:
    await service.placement_assigned(tx, e.signup_id, offer_id=e.offer.offer_id, rank=e.rank, at=e.occurred_at)


async def match_waitlisted(tx: Tx[Repository], e: MatchWaitlisted) -> None:
    await service.placement_waitlisted(tx, e.signup_id, position=e.position, reason_code=e.reason_code, at=e.occurred_at)


async def match_unmatched(tx: Tx[Repository], e: MatchUnmatched) -> None:
    await service.placement_unmatched(tx, e.signup_id, reason_code=e.reason_code, at=e.occurred_at)


async def seat_offered(tx: Tx[Repository], e: SeatOffered) -> None:
    await service.placement_seat_offered(
        tx, e.signup_id, offer_id=e.offer.offer_id, rank=e.rank, expires_at=e.expires_at, at=e.occurred_at
    )


async def seat_offer_ended(tx: Tx[Repository], e: SeatOfferEnded) -> None:
    await service.placement_seat_offer_ended(tx, e.signup_id, offer_id=e.offer_id, at=e.occurred_at)


def register(rt: Runtime) -> None:
    rt.subscribe(MATCHES, "matches", {
        MatchAssigned: match_assigned,
        MatchWaitlisted: match_waitlisted,
        MatchUnmatched: match_unmatched,
        SeatOffered: seat_offered,
        SeatOfferEnded: seat_offer_ended,
    })
