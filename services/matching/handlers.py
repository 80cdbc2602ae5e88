"""Kafka subscribers: each event becomes one typed call of the service (the matching service's copy
of editions, offers and sign-ups, without personal data). Dispatch tables, one per kind of topic; the
runtime subscribes them in every region the instance serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from estafette.runtime.app import Runtime
from schemas import EditionClosed, EditionOpened, OfferCancelled, OfferPublished, SignupSubmitted, SignupWithdrawn
from schemas.topics import EDITIONS, OFFERS, SIGNUPS
from services.matching import domain, service

if TYPE_CHECKING:
    from estafette.runtime.uow import Tx
    from services.matching.repository import Repository


async def edition_opened(tx: Tx[Repository], e: EditionOpened) -> None:
    await service.open_edition(tx, domain.Edition(id=e.edition, region=e.region))


async def edition_closed(tx: Tx[Repository], e: EditionClosed) -> None:
    await service.close_edition(tx, e.edition)


async def offer_published(tx: Tx[Repository], e: OfferPublished) -> None:
    await service.publish_offer(tx, e.edition, domain.Offer(
        id=e.offer_id, host_org=e.host_org, title=e.title, date=e.date, capacity=e.capacity,
        max_per_org=e.max_per_org, format=e.format, location=e.location,
    ))


async def offer_cancelled(tx: Tx[Repository], e: OfferCancelled) -> None:
    await service.cancel_offer(tx, e.edition, e.offer_id)


async def signup_submitted(tx: Tx[Repository], e: SignupSubmitted) -> None:
    await service.add_participant(tx, e.edition, domain.Participant(
        signup_id=e.signup_id, org=e.org, language=e.language, choices=e.choices,
        available=e.available, max_visits=e.max_visits, signed_up_at=e.signed_up_at, correlation_id=e.correlation_id,
    ))


async def signup_withdrawn(tx: Tx[Repository], e: SignupWithdrawn) -> None:
    await service.withdraw_participant(tx, e.edition, e.signup_id)


def register(rt: Runtime) -> None:
    rt.subscribe(EDITIONS, "editions", {EditionOpened: edition_opened, EditionClosed: edition_closed})
    rt.subscribe(OFFERS, "offers", {OfferPublished: offer_published, OfferCancelled: offer_cancelled})
    rt.subscribe(SIGNUPS, "signups", {SignupSubmitted: signup_submitted, SignupWithdrawn: signup_withdrawn})
