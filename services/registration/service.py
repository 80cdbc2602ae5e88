"""Registration use cases, the only door to the service: each is one transaction that asks `domain`
for the decision, stores it through the repository and writes its events to the outbox. Refusals are
domain errors (`estafette.runtime.errors`); a refused request stores nothing and publishes nothing.

Access: use cases that change an edition's things or show a sign-up take the caller's `Principal`
and ask `domain.access` (built on `Principal.sees`, the one scoping rule): another region's edition is
answered exactly like an unknown one (404 `unknown_edition`), the national role gets 403. Reading an
edition and its offers, the region registry, and signing up, are public.

Regions: editions are opened in regions of the region registry (`Regions`: the runtime's `RegionBook`,
kept current from the registry topic), in languages their region offers. Personal data: a sign-up's
name and e-mail address are published only on its region's participants topic (`ParticipantRegistered`),
and erasing them publishes a tombstone there.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, TypeVar

from estafette.runtime.access import Principal
from estafette.runtime.errors import Conflict, Forbidden, NotFound
from estafette.runtime.uow import Tx, Uow
from schemas import (
    EditionClosed,
    EditionOpened,
    Event,
    OfferCancelled,
    OfferPublished,
    ParticipantRegistered,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.regions import RegionRecord
from schemas.topics import PARTICIPANTS
from services.registration import domain
from services.registration.repository import Repository

T = TypeVar("T")
#: The event type named in the header of an erasure's tombstone (a null value: no event, no schema).
PARTICIPANT_ERASED = "ParticipantErased"


class Regions(Protocol):
    """The region registry as this service reads it (the runtime's `RegionBook`)."""

    @property
    def regions(self) -> Mapping[str, RegionRecord]: ...

    def get(self, region: str) -> RegionRecord | None: ...


def _new_id(prefix: str, hex_digits: int) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:hex_digits]}"


def _found(thing: T | None, code: str, message: str) -> T:
    if thing is None:
        raise NotFound(code, message)
    return thing


async def _edition(
    tx: Tx[Repository], edition_id: str, principal: Principal | None = None, *, signup_id: str | None = None,
    for_update: bool = False,
) -> domain.Edition:
    """The edition; with a `principal`, only if they may act on it (or on its sign-up `signup_id`): an
    edition of a region the caller may not see is answered exactly like an unknown one (404
    `unknown_edition`), one they see but may not act on (the national role) is a 403."""
    unknown = ("unknown_edition", f"edition {edition_id} does not exist")
    edition = _found(await tx.repo.edition(edition_id, for_update=for_update), *unknown)
    if principal is None:
        return edition
    decision = domain.access(principal, edition.region, signup_id=signup_id)
    if decision == "forbidden":
        raise Forbidden("forbidden", f"the {principal.role} role may not do this")
    return _found(edition if decision == "granted" else None, *unknown)


async def _signup(
    tx: Tx[Repository], edition_id: str, signup_id: str, principal: Principal, *, for_update: bool = False
) -> tuple[domain.Edition, domain.Signup]:
    edition = await _edition(tx, edition_id, principal, signup_id=signup_id)
    signup = await tx.repo.signup(edition_id, signup_id, for_update=for_update)
    return edition, _found(signup, "unknown_signup", f"sign-up {signup_id} is not a sign-up of edition {edition_id}")


async def _details(tx: Tx[Repository], edition: domain.Edition, signup: domain.Signup) -> domain.SignupDetails:
    offers = await tx.repo.offers_by_id(signup.choices)
    return domain.SignupDetails(edition, signup, [offers[i] for i in signup.choices if i in offers])


async def _end(
    tx: Tx[Repository], thing: domain.Edition | domain.Offer | domain.Signup, ending: domain.Ending, event: Event
) -> None:
    """Execute an ending decision: store the new status and publish `event`, or — already ended — nothing."""
    if ending.announce:
        await tx.repo.set_status(thing, ending.status)
        tx.publish(event)


def regions(registry: Regions) -> list[RegionRecord]:
    """The regions of the registry, by id (public: what portals offer)."""
    return sorted(registry.regions.values(), key=lambda r: r.id)


async def open_edition(
    uow: Uow[Repository], edition: domain.Edition, *, registry: Regions, principal: Principal, correlation_id: uuid.UUID
) -> domain.Edition:
    """Open an edition: by an admin or its region's organiser, in a region of the registry, in
    languages that region offers."""
    domain.check_opening(principal, edition.region)
    domain.check_region(edition, registry.get(edition.region))
    domain.check_edition_dates(edition)
    async with uow.transaction() as tx:
        if not await tx.repo.insert_edition(edition):
            raise Conflict("edition_exists", f"edition {edition.id} already exists")
        tx.publish(
            EditionOpened(
                region=edition.region, edition=edition.id, correlation_id=correlation_id, name=edition.name,
                signup_deadline=edition.signup_deadline, starts_on=edition.starts_on, ends_on=edition.ends_on,
                languages=edition.languages,
            )
        )
    return edition


async def close_edition(
    uow: Uow[Repository], edition_id: str, *, principal: Principal, reason: str = "", correlation_id: uuid.UUID
) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal, for_update=True)
        event = EditionClosed(region=edition.region, edition=edition_id, correlation_id=correlation_id, reason=reason)
        await _end(tx, edition, domain.closing(edition), event)


async def publish_offer(
    uow: Uow[Repository],
    edition_id: str,
    *,
    principal: Principal,
    offer_id: str | None = None,
    host_org: str,
    title: str,
    date: dt.date,
    capacity: int,
    max_per_org: int | None = None,
    format: str = "visit",  # noqa: A002 - the field's name in the API and the event
    location: str = "",
    correlation_id: uuid.UUID,
) -> domain.Offer:
    offer = domain.Offer(
        id=offer_id or _new_id("o", 12), edition_id=edition_id, host_org=host_org, title=title, date=date,
        capacity=capacity, max_per_org=max_per_org, format=format, location=location,
    )
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        domain.check_offer(edition, offer)
        if not await tx.repo.insert_offer(offer):
            raise Conflict("offer_exists", f"offer {offer.id} already exists")
        tx.publish(
            OfferPublished(
                region=edition.region, edition=edition_id, correlation_id=correlation_id, offer_id=offer.id,
                host_org=offer.host_org, title=offer.title, date=offer.date, capacity=offer.capacity,
                max_per_org=offer.max_per_org, format=offer.format, location=offer.location,
            )
        )
    return offer


async def cancel_offer(
    uow: Uow[Repository], edition_id: str, offer_id: str, *, principal: Principal, reason: str = "",
    correlation_id: uuid.UUID,
) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        offer = await tx.repo.offer(edition_id, offer_id, for_update=True)
        offer = _found(offer, "unknown_offer", f"offer {offer_id} is not an offer of edition {edition_id}")
        event = OfferCancelled(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, offer_id=offer_id, reason=reason
        )
        await _end(tx, offer, domain.cancellation(offer), event)


async def submit_signup(
    uow: Uow[Repository],
    edition_id: str,
    *,
    org: str,
    name: str,
    email: str,
    language: str = "nl",
    choices: list[str],
    available: list[dt.date] | None = None,
    max_visits: int = 1,
    correlation_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> domain.Signup:
    signup = domain.Signup(
        id=_new_id("s", 16), edition_id=edition_id, org=org, name=name, email=email, language=language,
        choices=choices, available=available, max_visits=max_visits, signed_up_at=now or dt.datetime.now(dt.UTC),
    )
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id)
        domain.check_signup(edition, signup, await tx.repo.offers_by_id(choices))
        if not await tx.repo.insert_signup(signup):
            raise Conflict("already_signed_up", f"this e-mail address already signed up for edition {edition_id}", "email")
        tx.publish(
            SignupSubmitted(
                region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup.id,
                org=org, language=language, choices=choices, available=available, max_visits=max_visits,
                signed_up_at=signup.signed_up_at,
            ),
            # The person's contact details: only on the region's (compacted) participants topic.
            ParticipantRegistered(
                region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup.id,
                name=name, email=email, language=language,
            ),
        )
    return signup


async def withdraw_signup(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, correlation_id: uuid.UUID
) -> domain.SignupDetails:
    """Withdraw a sign-up: by its region's organiser (on the participant's behalf), an admin, or the
    participant through their link. Withdrawing again changes nothing. Returns the sign-up as it is now."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal, for_update=True)
        event = SignupWithdrawn(region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id)
        ending = domain.withdrawal(signup)
        await _end(tx, signup, ending, event)
        return await _details(tx, edition, replace(signup, status=ending.status))


async def erase_personal_data(
    uow: Uow[Repository], signup_id: str, *, principal: Principal, now: dt.datetime | None = None
) -> None:
    """Erase a participant's name and e-mail address (an admin, or the organiser of the sign-up's
    region): blank them in this service's tables and publish a tombstone under the sign-up id on the
    region's participants topic, so every service that keeps them forgets them. Again: nothing changes.
    Another region's sign-up is answered exactly like an unknown one (404 `unknown_signup`)."""
    unknown = ("unknown_signup", f"sign-up {signup_id} does not exist")
    async with uow.transaction() as tx:
        signup = _found(await tx.repo.signup_by_id(signup_id, for_update=True), *unknown)
        edition = _found(await tx.repo.edition(signup.edition_id), *unknown)
        decision = domain.access(principal, edition.region, signup_id=signup_id)
        if decision == "forbidden":
            raise Forbidden("forbidden", f"the {principal.role} role may not do this")
        _found(signup if decision == "granted" else None, *unknown)
        if domain.erasure(signup):
            await tx.repo.erase_personal_data(domain.erased(signup, now or dt.datetime.now(dt.UTC)))
            tx.publish_raw(PARTICIPANTS.name_in(edition.region), signup_id, PARTICIPANT_ERASED, None)


async def signup_details(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal
) -> domain.SignupDetails:
    """A sign-up with its edition and chosen offers, for its participant (link) or its organisers."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal)
        return await _details(tx, edition, signup)


async def edition_overview(uow: Uow[Repository], edition_id: str) -> domain.EditionOverview:
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id)
        return domain.EditionOverview(edition, await tx.repo.counts(edition_id))


async def offers(uow: Uow[Repository], edition_id: str) -> list[domain.Offer]:
    async with uow.transaction() as tx:
        await _edition(tx, edition_id)
        return await tx.repo.offers(edition_id)
