"""Registration use cases: each is one transaction that changes state and writes its events to the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from estafette.runtime.http import Conflict, NotFound
from estafette.runtime.uow import UnitOfWork
from schemas import (
    EditionClosed,
    EditionOpened,
    OfferCancelled,
    OfferPublished,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.registration import domain, repository as repo


def _now() -> datetime:
    return datetime.now(UTC)


async def _edition(conn: Any, edition_id: str, *, for_update: bool = False) -> domain.Edition:
    edition = await repo.get_edition(conn, edition_id, for_update=for_update)
    if edition is None:
        raise NotFound("unknown_edition", f"edition {edition_id} does not exist")
    return edition


async def open_edition(uow: UnitOfWork, edition: domain.Edition, correlation_id: uuid.UUID) -> domain.Edition:
    domain.check_edition_dates(edition.starts_on, edition.ends_on, edition.signup_deadline)
    async with uow.transaction() as tx:
        if not await repo.insert_edition(tx.conn, edition):
            raise Conflict("edition_exists", f"edition {edition.id} already exists")
        tx.publish(
            EditionOpened(
                region=edition.region, edition=edition.id, correlation_id=correlation_id, name=edition.name,
                signup_deadline=edition.signup_deadline, starts_on=edition.starts_on, ends_on=edition.ends_on,
                languages=edition.languages,
            )
        )
    return edition


async def close_edition(uow: UnitOfWork, edition_id: str, reason: str, correlation_id: uuid.UUID) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id, for_update=True)
        if edition.status == "closed":
            return
        await repo.close_edition(tx.conn, edition_id)
        tx.publish(EditionClosed(region=edition.region, edition=edition_id, correlation_id=correlation_id, reason=reason))


async def publish_offer(uow: UnitOfWork, edition_id: str, offer: dict[str, Any], correlation_id: uuid.UUID) -> dict[str, Any]:
    offer = {**offer, "edition_id": edition_id, "id": offer.get("id") or f"o-{uuid.uuid4().hex[:12]}"}
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id)
        domain.check_offer(edition, offer["date"])
        if not await repo.insert_offer(tx.conn, offer):
            raise Conflict("offer_exists", f"offer {offer['id']} already exists")
        tx.publish(
            OfferPublished(
                region=edition.region, edition=edition_id, correlation_id=correlation_id, offer_id=offer["id"],
                host_org=offer["host_org"], title=offer["title"], date=offer["date"], capacity=offer["capacity"],
                max_per_org=offer["max_per_org"], format=offer["format"], location=offer["location"],
            )
        )
    return offer


async def cancel_offer(uow: UnitOfWork, edition_id: str, offer_id: str, reason: str, correlation_id: uuid.UUID) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id)
        previous = await repo.cancel_offer(tx.conn, edition_id, offer_id)
        if previous is None:
            raise NotFound("unknown_offer", f"offer {offer_id} is not an offer of edition {edition_id}")
        if previous == "published":
            tx.publish(OfferCancelled(region=edition.region, edition=edition_id, correlation_id=correlation_id, offer_id=offer_id, reason=reason))


async def submit_signup(
    uow: UnitOfWork,
    edition_id: str,
    *,
    org: str,
    name: str,
    email: str,
    language: str,
    choices: list[str],
    available: list[date] | None,
    max_visits: int,
    correlation_id: uuid.UUID,
    now: datetime | None = None,
) -> SignupSubmitted:
    now = now or _now()
    signup_id = f"s-{uuid.uuid4().hex[:16]}"
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id)
        domain.check_signup(edition, now, org, choices, available, await repo.offer_refs(tx.conn, choices))
        if not await repo.insert_signup(
            tx.conn, signup_id, edition_id, org, name, email, language, choices, available, max_visits, now
        ):
            raise Conflict("already_signed_up", f"this e-mail address already signed up for edition {edition_id}", "email")
        event = SignupSubmitted(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id, org=org,
            name=name, email=email, language=language, choices=choices, available=available, max_visits=max_visits,
            signed_up_at=now,
        )
        tx.publish(event)
    return event


async def withdraw_signup(uow: UnitOfWork, edition_id: str, signup_id: str, correlation_id: uuid.UUID) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id)
        previous = await repo.withdraw_signup(tx.conn, edition_id, signup_id)
        if previous is None:
            raise NotFound("unknown_signup", f"sign-up {signup_id} is not a sign-up of edition {edition_id}")
        if previous == "submitted":
            tx.publish(SignupWithdrawn(region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id))


async def edition_overview(uow: UnitOfWork, edition_id: str) -> dict[str, Any]:
    async with uow.transaction() as tx:
        edition = await _edition(tx.conn, edition_id)
        return {**edition.__dict__, **await repo.counts(tx.conn, edition_id)}


async def offers(uow: UnitOfWork, edition_id: str) -> list[dict[str, Any]]:
    async with uow.transaction() as tx:
        await _edition(tx.conn, edition_id)
        return await repo.list_offers(tx.conn, edition_id)
