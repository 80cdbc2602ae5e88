"""Kafka subscribers: each event becomes one typed call of the service (the matching service's copy
of editions, offers and sign-ups, without personal data). Dispatch tables, one per kind of topic; the
runtime subscribes them in every region the instance serves. Scheduled steps (`match_at_deadline`)
are handled here too: a step becomes one typed call of the service, in the step's transaction.
SignupSubmitted is handled in bulk (runtime/consumer.py `many`): a batch's consecutive ones in one call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from estafette.runtime.app import Runtime
from estafette.runtime.consumer import many
from estafette.runtime.scheduler import Step
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.topics import EDITIONS, OFFERS, SIGNUPS
from services.matching import domain, service

if TYPE_CHECKING:
    from estafette.runtime.uow import Tx
    from services.matching.repository import Repository


async def edition_opened(tx: Tx[Repository], e: EditionOpened) -> None:
    await service.open_edition(tx, domain.Edition(
        id=e.edition, region=e.region, requires_approval=e.requires_approval, match_at_deadline=e.match_at_deadline,
        signup_deadline=e.signup_deadline,
    ))


async def edition_closed(tx: Tx[Repository], e: EditionClosed) -> None:
    await service.close_edition(tx, e.edition)


async def edition_cancelled(tx: Tx[Repository], e: EditionCancelled) -> None:
    await service.cancel_edition(tx, e.edition)


def _offer(e: OfferPublished | OfferChanged) -> domain.Offer:
    return domain.Offer(
        id=e.offer_id, host_org=e.host_org, title=e.title, date=e.date, capacity=e.capacity,
        max_per_org=e.max_per_org, format=e.format, location=e.location, sequence=e.sequence,
    )


async def offer_published(tx: Tx[Repository], e: OfferPublished) -> None:
    await service.publish_offer(tx, e.edition, _offer(e))


async def offer_changed(tx: Tx[Repository], e: OfferChanged) -> None:
    await service.change_offer(tx, e.edition, _offer(e))


async def offer_cancelled(tx: Tx[Repository], e: OfferCancelled) -> None:
    await service.cancel_offer(tx, e.edition, e.offer_id)


async def signups_submitted(tx: Tx[Repository], events: list[SignupSubmitted]) -> None:
    """In bulk (`many`): a consumer batch's run of SignupSubmitted in one call."""
    await service.add_participants(tx, [(e.edition, domain.Participant(
        signup_id=e.signup_id, org=e.org, language=e.language, choices=e.choices,
        available=e.available, max_visits=e.max_visits, signed_up_at=e.signed_up_at, correlation_id=e.correlation_id,
        approval=e.approval,
    )) for e in events])


#: SignupSubmitted, one event at a time outside a consumer's batch (a list of one).
signup_submitted = many(signups_submitted)


async def signup_changed(tx: Tx[Repository], e: SignupChanged) -> None:
    await service.change_participant(tx, e.edition, e.signup_id, e.choices, e.available, e.max_visits)


async def signup_approved(tx: Tx[Repository], e: SignupApproved) -> None:
    await service.approve_participant(tx, e.edition, e.signup_id)


async def signup_refused(tx: Tx[Repository], e: SignupRefused) -> None:
    await service.refuse_participant(tx, e.edition, e.signup_id)


async def signup_withdrawn(tx: Tx[Repository], e: SignupWithdrawn) -> None:
    await service.withdraw_participant(tx, e.edition, e.signup_id)


# --- scheduled steps (runtime/scheduler.py) --------------------------------------------------------
async def match_at_deadline(tx: Tx[Repository], step: Step) -> None:
    """Step `match_at_deadline`, key = the edition id, due at its sign-up deadline."""
    await service.match_at_deadline(tx, step.key, step.due_at)


#: The scheduler's handlers, by step kind.
STEPS = {service.MATCH_AT_DEADLINE: match_at_deadline}


def register(rt: Runtime) -> None:
    rt.subscribe(EDITIONS, "editions", {
        EditionOpened: edition_opened, EditionClosed: edition_closed, EditionCancelled: edition_cancelled,
    })
    rt.subscribe(OFFERS, "offers", {
        OfferPublished: offer_published, OfferChanged: offer_changed, OfferCancelled: offer_cancelled,
    })
    rt.subscribe(SIGNUPS, "signups", {
        SignupSubmitted: signup_submitted, SignupChanged: signup_changed, SignupApproved: signup_approved,
        SignupRefused: signup_refused, SignupWithdrawn: signup_withdrawn,
    })
