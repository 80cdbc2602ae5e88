"""Kafka subscribers: keep the matching service's copy of editions, offers and sign-ups current."""

from __future__ import annotations

from estafette.runtime.app import Runtime
from estafette.runtime.uow import Transaction
from schemas import (
    EditionClosed,
    EditionOpened,
    Event,
    OfferCancelled,
    OfferPublished,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.topics import EDITIONS, OFFERS, SIGNUPS
from services.matching import repository as repo


async def on_edition(tx: Transaction, event: Event) -> None:
    if isinstance(event, EditionOpened):
        await repo.upsert_edition(tx.conn, event.edition, event.region)
    elif isinstance(event, EditionClosed):
        await repo.close_edition(tx.conn, event.edition)


async def on_offer(tx: Transaction, event: Event) -> None:
    await repo.lock_edition(tx.conn, event.edition)  # a run writing its result waits, or we wait for it
    if isinstance(event, OfferPublished):
        await repo.upsert_offer(tx.conn, event)
        await repo.mark_dirty_if_published(tx.conn, event.edition)
    elif isinstance(event, OfferCancelled):
        if await repo.cancel_offer(tx.conn, event.offer_id):
            await repo.mark_dirty_if_published(tx.conn, event.edition)


async def on_signup(tx: Transaction, event: Event) -> None:
    await repo.lock_edition(tx.conn, event.edition)
    if isinstance(event, SignupSubmitted):
        await repo.insert_participant(tx.conn, event)
        await repo.mark_dirty_if_published(tx.conn, event.edition)
    elif isinstance(event, SignupWithdrawn):
        if await repo.withdraw_participant(tx.conn, event.signup_id):
            await repo.mark_dirty_if_published(tx.conn, event.edition)


def register(rt: Runtime) -> None:
    rt.subscribe(EDITIONS, "editions", on_edition)
    rt.subscribe(OFFERS, "offers", on_offer)
    rt.subscribe(SIGNUPS, "signups", on_signup)
