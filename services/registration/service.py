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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from estafette.runtime.access import Principal
from estafette.runtime.batching import Coalescer
from estafette.runtime.errors import Conflict, DomainError, Forbidden, NotFound
from estafette.runtime.uow import Tx, Uow
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    Event,
    FeedbackSubmitted,
    HostContact,
    NotificationRequested,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    ParticipantRegistered,
    Recipient,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from schemas.regions import RegionRecord
from schemas.topics import PARTICIPANTS
from schemas.events import (  # the relay (issue 10)
    KnowledgeItemApproved,
    KnowledgeItemRejected,
    RelayLegHandedOver,
    RelayLegPlanned,
    RelayLegStarted,
)
from services.registration import domain
from services.registration import people  # people, import, export (issue 11)
from services.registration.repository import Repository

T = TypeVar("T")
#: The event type named in the header of an erasure's tombstone (a null value: no event, no schema).
PARTICIPANT_ERASED = "ParticipantErased"


class Regions(Protocol):
    """The region registry as this service reads it (the runtime's `RegionBook`)."""

    @property
    def regions(self) -> Mapping[str, RegionRecord]: ...

    def get(self, region: str) -> RegionRecord | None: ...


#: Makes the approval link of a sign-up for its organisation: (signup_id, edition_id, org_id) -> URL.
ApprovalUrl = Callable[[str, str, str], str]
#: The template of the approval request (notifications renders it).
APPROVAL_TEMPLATE = "approval_requested"


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


async def _details(
    tx: Tx[Repository], edition: domain.Edition, signup: domain.Signup, now: dt.datetime | None = None
) -> domain.SignupDetails:
    """The sign-up as its page shows it; without `now` its choices count as not changeable."""
    offers = await tx.repo.offers_by_id(signup.choices)
    placement = await tx.repo.placement(signup.id)
    placed_ids = [i for i in (placement.offer_id, placement.seat_offer_id) if i] if placement else []
    placed = await tx.repo.offers_by_id(placed_ids) if placed_ids else {}
    refusal = domain.change_refusal(edition, signup, placement, now) if now is not None else "deadline_passed"
    choosable = (
        [o for o in await tx.repo.offers(edition.id) if o.status == "published" and o.host_org != signup.org]
        if refusal is None else []
    )
    return domain.SignupDetails(
        edition, signup, [offers[i] for i in signup.choices if i in offers], placement, placed, refusal, choosable
    )


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
    uow: Uow[Repository], edition: domain.Edition, *, registry: Regions, principal: Principal, correlation_id: uuid.UUID,
    now: dt.datetime | None = None, limits: domain.DateLimits | None = None,
) -> domain.Edition:
    """Open an edition: by an admin or its region's organiser, in a region of the registry, in
    languages that region offers; with `now` (the platform clock), only on possible dates within
    `limits` (`domain.check_edition_window`)."""
    domain.check_opening(principal, edition.region)
    domain.check_region(edition, registry.get(edition.region))
    domain.check_edition_dates(edition)
    if now is not None:
        domain.check_edition_window(edition, now, limits or domain.DateLimits())
    domain.check_themes(edition)
    async with uow.transaction() as tx:
        if not await tx.repo.insert_edition(edition):
            raise Conflict("edition_exists", f"edition {edition.id} already exists")
        tx.publish(
            EditionOpened(
                region=edition.region, edition=edition.id, correlation_id=correlation_id, name=edition.name,
                signup_deadline=edition.signup_deadline, starts_on=edition.starts_on, ends_on=edition.ends_on,
                languages=edition.languages, themes=edition.themes, requires_approval=edition.requires_approval,
                match_at_deadline=edition.match_at_deadline,
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


async def cancel_edition(
    uow: Uow[Repository], edition_id: str, *, principal: Principal, reason: str, correlation_id: uuid.UUID
) -> None:
    """Call off a whole edition (open or closed), with the organiser's reason: `EditionCancelled` once;
    again: nothing changes. Nothing of it changes afterwards (409 `edition_cancelled`)."""
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal, for_update=True)
        event = EditionCancelled(region=edition.region, edition=edition_id, correlation_id=correlation_id, reason=reason)
        await _end(tx, edition, domain.cancelling(edition), event)


def _offer_fields(offer: domain.Offer) -> dict[str, Any]:
    """An offer's fields as `OfferPublished` / `OfferChanged` carry them."""
    contact = offer.host_contact
    return dict(
        offer_id=offer.id, host_org=offer.host_org, title=offer.title, date=offer.date, capacity=offer.capacity,
        max_per_org=offer.max_per_org, format=offer.format, location=offer.location, themes=offer.themes,
        attendance=offer.attendance, part_of_day=offer.part_of_day, starts_at=offer.starts_at, ends_at=offer.ends_at,
        join_url=offer.join_url, what_to_bring=offer.what_to_bring, sequence=offer.sequence,
        host_contact=HostContact(name=contact.name, email=contact.email, language=contact.language) if contact else None,
    )


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
    now: dt.datetime | None = None,
    limits: domain.DateLimits | None = None,
    **details: Any,
) -> domain.Offer:
    """Publish an offer. `details`: the offer's other fields (themes, attendance, part_of_day, starts_at,
    ends_at, join_url, what_to_bring, host_contact: `domain.Offer`). With `now` (the platform clock),
    only on a possible date within `limits` (`domain.check_date_window`)."""
    offer = domain.Offer(
        id=offer_id or _new_id("o", 12), edition_id=edition_id, host_org=host_org, title=title, date=date,
        capacity=capacity, max_per_org=max_per_org, format=format, location=location, **details,
    )
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        domain.check_offer(edition, offer)
        if now is not None:
            domain.check_date_window(offer.date, now, limits or domain.DateLimits(), "date")
        if not await tx.repo.insert_offer(offer):
            raise Conflict("offer_exists", f"offer {offer.id} already exists")
        tx.publish(
            OfferPublished(region=edition.region, edition=edition_id, correlation_id=correlation_id, **_offer_fields(offer))
        )
    return offer


async def change_offer(
    uow: Uow[Repository], edition_id: str, offer_id: str, *, principal: Principal, changes: Mapping[str, Any],
    correlation_id: uuid.UUID,
) -> domain.Offer:
    """An organiser edits an offer (`changes`: new values of `domain.CHANGEABLE` fields): `OfferChanged`
    with the whole offer, its sequence one higher and the fields that differ; no difference: nothing."""
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        offer = await tx.repo.offer(edition_id, offer_id, for_update=True)
        offer = _found(offer, "unknown_offer", f"offer {offer_id} is not an offer of edition {edition_id}")
        change = domain.offer_change(edition, offer, changes)
        if change.changed:
            await tx.repo.update_offer(change.offer)
            tx.publish(OfferChanged(
                region=edition.region, edition=edition_id, correlation_id=correlation_id,
                changed=change.changed, **_offer_fields(change.offer),
            ))
        return change.offer


async def cancel_offer(
    uow: Uow[Repository], edition_id: str, offer_id: str, *, principal: Principal, reason: str = "",
    correlation_id: uuid.UUID,
) -> None:
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        offer = await tx.repo.offer(edition_id, offer_id, for_update=True)
        offer = _found(offer, "unknown_offer", f"offer {offer_id} is not an offer of edition {edition_id}")
        domain.check_not_cancelled(edition)
        event = OfferCancelled(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, offer_id=offer_id, reason=reason
        )
        await _end(tx, offer, domain.cancellation(offer), event)


async def register_organisation(
    uow: Uow[Repository], organisation: domain.Organisation, *, principal: Principal
) -> domain.Organisation:
    """Register a participating organisation with an edition (organiser): its contact approves its
    employees' sign-ups where the edition requires approval. 409 `organisation_exists`."""
    async with uow.transaction() as tx:
        edition = await _edition(tx, organisation.edition_id, principal)
        domain.check_not_cancelled(edition)
        if not await tx.repo.insert_organisation(organisation):
            raise Conflict(
                "organisation_exists",
                f"organisation {organisation.id} is already registered with edition {organisation.edition_id}", "id",
            )
    return organisation


async def organisations(uow: Uow[Repository], edition_id: str, *, principal: Principal) -> list[domain.Organisation]:
    """The participating organisations of an edition, by id (organiser: they name their contacts)."""
    async with uow.transaction() as tx:
        await _edition(tx, edition_id, principal)
        return await tx.repo.organisations(edition_id)


@dataclass(frozen=True)
class SignupRequest:
    """One public sign-up as asked for (`submit_signups`), at `now` (the platform clock)."""

    edition_id: str
    org: str
    name: str
    email: str
    choices: list[str]
    correlation_id: uuid.UUID
    now: dt.datetime
    language: str = "nl"
    available: list[dt.date] | None = None
    max_visits: int = 1
    learning_goal: str = ""
    consent: bool = False


async def submit_signup(
    uow: Uow[Repository], edition_id: str, *, org: str, name: str, email: str, language: str = "nl",
    choices: list[str], available: list[dt.date] | None = None, max_visits: int = 1, learning_goal: str = "",
    consent: bool = False, correlation_id: uuid.UUID, now: dt.datetime, approval_url: ApprovalUrl | None = None,
) -> domain.Signup:
    """Sign up (public): `submit_signups` of one, its refusal raised."""
    request = SignupRequest(
        edition_id=edition_id, org=org, name=name, email=email, language=language, choices=choices, available=available,
        max_visits=max_visits, learning_goal=learning_goal, consent=consent, correlation_id=correlation_id, now=now,
    )
    (result,) = await submit_signups(uow, [request], approval_url)
    if isinstance(result, DomainError):
        raise result
    return result


async def submit_signups(
    uow: Uow[Repository], requests: Sequence[SignupRequest], approval_url: ApprovalUrl | None = None,
) -> list[domain.Signup | DomainError]:
    """Public sign-ups, in one transaction: for each request in order its sign-up, or the refusal it
    gets alone (unknown edition, the rules of `domain.check_signup`, `already_signed_up` — also for a
    second request of one e-mail address within the batch). In an edition that requires approval the
    sign-up is `pending` and its organisation's contact gets an approval request
    (`NotificationRequested`, with the link `approval_url(signup_id, edition_id, org)`). Statements:
    the editions and the chosen offers read once each, the sign-ups inserted at once."""
    results: list[domain.Signup | DomainError] = []
    try:
        await _submit_all(uow, requests, approval_url, results)
    except _AllRefused:
        pass  # rolled back: nothing to commit
    return results


class _AllRefused(Exception):
    """Every request of a batch was refused: its transaction is rolled back, like a refused use case's."""


async def _submit_all(
    uow: Uow[Repository], requests: Sequence[SignupRequest], approval_url: ApprovalUrl | None,
    results: list[domain.Signup | DomainError],
) -> None:
    async with uow.transaction() as tx:
        editions = await tx.repo.editions_by_id(sorted({r.edition_id for r in requests}))
        offers = await tx.repo.offers_by_id(sorted({c for r in requests for c in r.choices}))
        accepted: list[tuple[int, domain.Signup, domain.Edition, domain.Organisation | None, SignupRequest]] = []
        for request in requests:
            try:
                edition = _found(editions.get(request.edition_id), "unknown_edition", f"edition {request.edition_id} does not exist")
                signup = domain.Signup(
                    id=_new_id("s", 16), edition_id=request.edition_id, org=request.org, name=request.name,
                    email=request.email, language=request.language, choices=request.choices, available=request.available,
                    max_visits=request.max_visits, signed_up_at=request.now, learning_goal=request.learning_goal,
                    consented_at=request.now if request.consent else None, approval=domain.approval_of(edition),
                )
                organisation = await tx.repo.organisation(edition.id, request.org) if edition.requires_approval else None
                chosen = {c: offers[c] for c in request.choices if c in offers}
                domain.check_signup(edition, signup, chosen, organisation)
            except DomainError as refusal:
                results.append(refusal)
                continue
            accepted.append((len(results), signup, edition, organisation, request))
            results.append(signup)
        inserted = await tx.repo.insert_signups([signup for _, signup, *_ in accepted])
        for position, signup, edition, organisation, request in accepted:
            if signup.id not in inserted:
                results[position] = Conflict(
                    "already_signed_up", f"this e-mail address already signed up for edition {edition.id}", "email"
                )
                continue
            _announce_signup(tx, signup, edition, organisation, request.correlation_id, approval_url)
        if not any(isinstance(result, domain.Signup) for result in results):
            raise _AllRefused


def _announce_signup(
    tx: Tx[Repository], signup: domain.Signup, edition: domain.Edition, organisation: domain.Organisation | None,
    correlation_id: uuid.UUID, approval_url: ApprovalUrl | None,
) -> None:
    envelope = dict(region=edition.region, edition=edition.id, correlation_id=correlation_id)
    tx.publish(
        SignupSubmitted(
            **envelope, signup_id=signup.id, org=signup.org, language=signup.language, choices=signup.choices,
            available=signup.available, max_visits=signup.max_visits, signed_up_at=signup.signed_up_at,
            approval="pending" if signup.approval == "pending" else "not_required",
        ),
        # The person's contact details: only on the region's (compacted) participants topic.
        ParticipantRegistered(
            **envelope, signup_id=signup.id, name=signup.name, email=signup.email, language=signup.language,
            org=signup.org, learning_goal=signup.learning_goal,
        ),
    )
    if organisation is not None:
        if approval_url is None:
            raise ValueError("an edition that requires approval needs approval links")
        contact = organisation.contact
        tx.publish(NotificationRequested(
            **envelope, notification_id=domain.approval_request_id(signup.id), template=APPROVAL_TEMPLATE,
            recipient=Recipient(name=contact.name, email=contact.email, language=contact.language),
            context={
                "participant_name": signup.name, "organisation_name": organisation.name, "edition_name": edition.name,
                "learning_goal": signup.learning_goal, "approval_url": approval_url(signup.id, edition.id, signup.org),
            },
        ))


class SignupIntake:
    """The door of public sign-ups under load: concurrent requests are committed together
    (`submit_signups` of a batch; runtime/batching.py: no waiting when idle, one transaction for the
    requests that arrived while the previous one committed), each request gets its own answer."""

    def __init__(self, uow: Uow[Repository], approval_url: ApprovalUrl | None = None) -> None:
        self._batches: Coalescer[SignupRequest, domain.Signup] = Coalescer(
            lambda requests: submit_signups(uow, requests, approval_url)
        )

    async def submit(self, request: SignupRequest) -> domain.Signup:
        """The request's sign-up, or its refusal raised (a DomainError)."""
        return await self._batches.submit(request)

    @property
    def batch_sizes(self) -> list[int]:
        return self._batches.sizes


async def withdraw_signup(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, reason: str = "",
    correlation_id: uuid.UUID, now: dt.datetime | None = None,
) -> domain.SignupDetails:
    """Withdraw a sign-up: by its region's organiser (on the participant's behalf, with an optional
    reason), an admin, or the participant through their link. Withdrawing again changes nothing.
    Returns the sign-up as it is now (`now`: for the page's "may the choices change")."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal, for_update=True)
        event = SignupWithdrawn(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id, reason=reason
        )
        ending = domain.withdrawal(signup)
        await _end(tx, signup, ending, event)
        return await _details(tx, edition, replace(signup, status=ending.status) if ending.announce else signup, now)


async def change_choices(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, choices: list[str],
    now: dt.datetime, correlation_id: uuid.UUID,
) -> domain.SignupDetails:
    """The participant changes their choices (their link): until the deadline, while the edition is open,
    the sign-up active and they are not placed (409 with the reason's code, `domain.change_refusal`);
    the choices follow the sign-up's rules. `SignupChanged` when they differ; the same choices: nothing."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal, for_update=True)
        placement = await tx.repo.placement(signup_id)
        offers = await tx.repo.offers_by_id(choices)
        if domain.check_choices_change(edition, signup, placement, choices, offers, now):
            signup = replace(signup, choices=list(choices))
            await tx.repo.set_choices(signup)
            tx.publish(SignupChanged(
                region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id,
                choices=signup.choices, available=signup.available, max_visits=signup.max_visits,
            ))
        return await _details(tx, edition, signup, now)


@dataclass(frozen=True)
class ApprovalOutcome:
    """An employer's answer as the approval page shows it: the sign-up now, and what the answer did."""

    details: domain.ApprovalDetails
    result: domain.ApprovalResult


async def _approval(
    tx: Tx[Repository], edition_id: str, signup_id: str, org_id: str, *, for_update: bool = False
) -> domain.ApprovalDetails:
    """The sign-up an approval link names, for its organisation only (anything else: 404, as unknown)."""
    unknown = ("unknown_signup", f"sign-up {signup_id} is not a sign-up of edition {edition_id}")
    edition = _found(await tx.repo.edition(edition_id), *unknown)
    signup = await tx.repo.signup(edition_id, signup_id, for_update=for_update)
    organisation = await tx.repo.organisation(edition_id, org_id)
    if signup is None or organisation is None or signup.org != org_id:
        raise NotFound(*unknown)
    offers = await tx.repo.offers_by_id(signup.choices)
    return domain.ApprovalDetails(edition, signup, organisation, [offers[i] for i in signup.choices if i in offers])


async def approval_details(uow: Uow[Repository], edition_id: str, signup_id: str, org_id: str) -> domain.ApprovalDetails:
    """What the approval link's page shows (the link is the capability; a GET changes nothing)."""
    async with uow.transaction() as tx:
        return await _approval(tx, edition_id, signup_id, org_id)


async def answer_approval(
    uow: Uow[Repository], edition_id: str, signup_id: str, org_id: str, *, answer: domain.Answer, reason: str = "",
    correlation_id: uuid.UUID,
) -> ApprovalOutcome:
    """The organisation's contact approves (`SignupApproved`) or refuses (`SignupRefused`, the sign-up
    ends) a pending sign-up; the same answer again changes nothing; the other answer after one was given
    changes nothing either (`already_answered`). Refused in a cancelled edition (409 `edition_cancelled`)."""
    async with uow.transaction() as tx:
        details = await _approval(tx, edition_id, signup_id, org_id, for_update=True)
        domain.check_not_cancelled(details.edition)
        result = domain.approval_answer(details.signup, answer)
        if result == "answer":
            signup = domain.answered(details.signup, answer)
            await tx.repo.set_approval(signup)
            envelope = dict(
                region=details.edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id
            )
            tx.publish(SignupApproved(**envelope) if answer == "approve" else SignupRefused(**envelope, reason=reason))
            details = replace(details, signup=signup)
        return ApprovalOutcome(details, result)


async def feedback_details(
    uow: Uow[Repository], edition_id: str, signup_id: str, offer_id: str, *, principal: Principal
) -> domain.FeedbackDetails:
    """What the feedback link's page shows: the visit, and the feedback if it was given."""
    async with uow.transaction() as tx:
        return await _feedback_details(tx, edition_id, signup_id, offer_id, principal)


async def _feedback_details(
    tx: Tx[Repository], edition_id: str, signup_id: str, offer_id: str, principal: Principal
) -> domain.FeedbackDetails:
    edition, signup = await _signup(tx, edition_id, signup_id, principal)
    offer = _found(await tx.repo.offer(edition_id, offer_id), "unknown_offer",
                   f"offer {offer_id} is not an offer of edition {edition_id}")
    return domain.FeedbackDetails(edition, signup, offer, await tx.repo.feedback(signup_id, offer_id))


async def submit_feedback(
    uow: Uow[Repository], edition_id: str, signup_id: str, offer_id: str, *, principal: Principal, rating: int,
    learned: str = "", share_publicly: bool = False, now: dt.datetime, correlation_id: uuid.UUID,
) -> tuple[domain.FeedbackDetails, bool]:
    """A participant's feedback on one visit (their feedback link), stored (the text is kept for the
    relay) and announced (`FeedbackSubmitted`) once per sign-up and offer; again: nothing changes
    (False). Refused in a cancelled edition (409 `edition_cancelled`)."""
    async with uow.transaction() as tx:
        details = await _feedback_details(tx, edition_id, signup_id, offer_id, principal)
        domain.check_not_cancelled(details.edition)
        if details.feedback is not None:
            return details, False
        signup = details.signup
        feedback = domain.Feedback(
            id=domain.feedback_id(signup_id, offer_id), signup_id=signup_id, offer_id=offer_id, rating=rating,
            learned=learned, share_publicly=share_publicly, language=signup.language, submitted_at=now,
        )
        if not await tx.repo.insert_feedback(feedback):
            return details, False
        tx.publish(FeedbackSubmitted(
            region=details.edition.region, edition=edition_id, correlation_id=correlation_id, feedback_id=feedback.id,
            signup_id=signup_id, offer_id=offer_id, rating=rating, learned=learned, share_publicly=share_publicly,
            language=signup.language, submitted_at=now,  # type: ignore[arg-type]
        ))
        return replace(details, feedback=feedback), True


async def erase_personal_data(
    uow: Uow[Repository], signup_id: str, *, principal: Principal, now: dt.datetime
) -> None:
    """Erase a participant's name, e-mail address and learning goal (an admin, or the organiser of the
    sign-up's region): blank them in this service's tables (and in their approval request in the
    outbox) and publish a tombstone under the sign-up id on the region's participants topic, so every
    service that keeps them forgets them. Again: nothing changes. Another region's sign-up is answered
    exactly like an unknown one (404 `unknown_signup`)."""
    unknown = ("unknown_signup", f"sign-up {signup_id} does not exist")
    async with uow.transaction() as tx:
        signup = _found(await tx.repo.signup_by_id(signup_id, for_update=True), *unknown)
        edition = _found(await tx.repo.edition(signup.edition_id), *unknown)
        decision = domain.access(principal, edition.region, signup_id=signup_id)
        if decision == "forbidden":
            raise Forbidden("forbidden", f"the {principal.role} role may not do this")
        _found(signup if decision == "granted" else None, *unknown)
        if domain.erasure(signup):
            await tx.repo.erase_personal_data(domain.erased(signup, now))
            await tx.repo.erase_approval_request(str(domain.approval_request_id(signup_id)))
            tx.publish_raw(PARTICIPANTS.name_in(edition.region), signup_id, PARTICIPANT_ERASED, None)


async def signup_details(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, now: dt.datetime | None = None
) -> domain.SignupDetails:
    """A sign-up with its edition, chosen offers and placement, for its participant (link) or its
    organisers; `now` (the platform clock) decides whether its choices may still change."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal)
        return await _details(tx, edition, signup, now)


async def edition_overview(uow: Uow[Repository], edition_id: str) -> domain.EditionOverview:
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id)
        return domain.EditionOverview(edition, await tx.repo.counts(edition_id))


async def offers(uow: Uow[Repository], edition_id: str) -> list[domain.Offer]:
    async with uow.transaction() as tx:
        await _edition(tx, edition_id)
        return await tx.repo.offers(edition_id)


# --- what matching told participants (the region's matches topic; in the consumer's transaction) ---
async def _place(tx: Tx[Repository], placement: domain.Placement | None) -> None:
    if placement is not None:
        await tx.repo.store_placement(placement)


async def placement_assigned(tx: Tx[Repository], signup_id: str, *, offer_id: str, rank: int, at: dt.datetime) -> None:
    await _place(tx, domain.placed_assigned(signup_id, offer_id, rank, at))


async def placement_waitlisted(
    tx: Tx[Repository], signup_id: str, *, position: int, reason_code: str, at: dt.datetime
) -> None:
    previous = await tx.repo.placement(signup_id, for_update=True)
    await _place(tx, domain.placed_waitlisted(previous, signup_id, position, reason_code, at))


async def placement_unmatched(tx: Tx[Repository], signup_id: str, *, reason_code: str, at: dt.datetime) -> None:
    await _place(tx, domain.placed_unmatched(signup_id, reason_code, at))


async def placement_seat_offered(
    tx: Tx[Repository], signup_id: str, *, offer_id: str, rank: int, expires_at: dt.datetime, at: dt.datetime
) -> None:
    previous = await tx.repo.placement(signup_id, for_update=True)
    await _place(tx, domain.seat_offered(previous, signup_id, offer_id, rank, expires_at, at))


async def placement_seat_offer_ended(tx: Tx[Repository], signup_id: str, *, offer_id: str, at: dt.datetime) -> None:
    previous = await tx.repo.placement(signup_id, for_update=True)
    await _place(tx, domain.seat_offer_ended(previous, signup_id, offer_id, at))


# --- relay (issue 10) ------------------------------------------------------------------------------
#: The scheduled steps of the baton, keyed by leg id: a leg starts at the start of its first day and
#: hands over at the end of its last day, in its region's time zone.
RELAY_LEG_START, RELAY_HANDOVER = "relay_leg_start", "relay_handover"


def _leg_envelope(leg: domain.RelayLeg, correlation_id: uuid.UUID | None, now: dt.datetime) -> dict[str, Any]:
    """What every relay event of `leg` carries: its region, its edition (or activity), the platform clock's time."""
    return dict(region=leg.region, edition=leg.edition, correlation_id=correlation_id or uuid.uuid4(), occurred_at=now)


async def relay_plan(uow: Uow[Repository]) -> list[domain.RelayLeg]:
    """The relay plan, in order (public)."""
    async with uow.transaction() as tx:
        return await tx.repo.relay_legs()


async def plan_relay_leg(
    uow: Uow[Repository], leg: domain.RelayLeg, *, registry: Regions, principal: Principal, now: dt.datetime,
    limits: domain.DateLimits, correlation_id: uuid.UUID,
) -> domain.RelayLeg:
    """The national coordinator (or an admin) plans or re-plans a leg (`domain.check_plan`) in a region
    of the registry (its time zone): `RelayLegPlanned`, and its start and hand-over are scheduled (moved
    when re-planned). The same plan again changes nothing."""
    domain.check_relay_planner(principal)
    leg = domain.leg_in_region(leg, registry.get(leg.region))
    domain.check_leg(leg, now, limits)
    async with uow.transaction() as tx:
        await tx.repo.lock_relay()
        legs = await tx.repo.relay_legs()
        current = next((x for x in legs if x.id == leg.id), None)
        domain.check_plan(current, leg, [x for x in legs if x.id != leg.id])
        if current is not None and current.planned_as(leg):
            return current
        await tx.repo.store_relay_leg(leg)
        await tx.repo.schedule(RELAY_LEG_START, leg.id, leg.starts_at)
        await tx.repo.schedule(RELAY_HANDOVER, leg.id, leg.ends_at)
        tx.publish(RelayLegPlanned(
            **_leg_envelope(leg, correlation_id, now), leg_id=leg.id, position=leg.position, first_day=leg.first_day,
            last_day=leg.last_day, activity=leg.activity,
        ))
    return leg


async def _move_baton(
    tx: Tx[Repository], move: domain.BatonMove | None, now: dt.datetime, correlation_id: uuid.UUID | None = None
) -> None:
    """Execute a baton decision: the holder hands over (with the approved knowledge items of its region
    that have not travelled yet), then the next leg starts."""
    if move is None:
        return
    if move.hand_over is not None:
        leg = domain.handed_over(move.hand_over, move.to, now, early=move.early)
        await tx.repo.store_relay_leg(leg)
        items = await tx.repo.carry_knowledge_items(leg.region, leg.id, now)
        tx.publish(RelayLegHandedOver(
            **_leg_envelope(leg, correlation_id, now), leg_id=leg.id, to_region=move.to.region if move.to else "",
            to_leg_id=leg.to_leg_id, early=move.early, knowledge_items=items,
        ))
    if move.start is not None:
        leg = domain.started(move.start, now)
        await tx.repo.store_relay_leg(leg)
        tx.publish(RelayLegStarted(**_leg_envelope(leg, correlation_id, now), leg_id=leg.id, starts_on=domain.local_day(leg, now)))


async def relay_leg_start(tx: Tx[Repository], leg_id: str, *, now: dt.datetime) -> None:
    """A leg's `relay_leg_start` step (in the scheduler's transaction): `domain.scheduled_start`."""
    await tx.repo.lock_relay()
    await _move_baton(tx, domain.scheduled_start(await tx.repo.relay_legs(), leg_id), now)


async def relay_handover(tx: Tx[Repository], leg_id: str, *, now: dt.datetime) -> None:
    """A leg's `relay_handover` step (in the scheduler's transaction): `domain.scheduled_handover`."""
    await tx.repo.lock_relay()
    await _move_baton(tx, domain.scheduled_handover(await tx.repo.relay_legs(), leg_id, now), now)


async def hand_over_early(
    uow: Uow[Repository], leg_id: str, *, principal: Principal, now: dt.datetime, correlation_id: uuid.UUID
) -> domain.RelayLeg:
    """The holding region's organiser (or an admin) hands the baton over now (`domain.early_handover`):
    `RelayLegHandedOver(early=true)` and the next leg starts now; the leg's scheduled hand-over then
    changes nothing. Returns the leg as handed over."""
    async with uow.transaction() as tx:
        await tx.repo.lock_relay()
        move = domain.early_handover(await tx.repo.relay_legs(), leg_id, principal)
        await _move_baton(tx, move, now, correlation_id)
        assert move.hand_over is not None
        return domain.handed_over(move.hand_over, move.to, now, early=True)


async def knowledge_items(
    uow: Uow[Repository], edition_id: str, *, principal: Principal, status: domain.KnowledgeStatus
) -> list[domain.KnowledgeItem]:
    """The edition's shareable feedback in one moderation state (its region's organiser, an admin)."""
    async with uow.transaction() as tx:
        await _edition(tx, edition_id, principal)
        return await tx.repo.knowledge_items(edition_id, status)


async def _knowledge_item(
    tx: Tx[Repository], edition_id: str, feedback_id: str, principal: Principal
) -> tuple[domain.Edition, domain.KnowledgeItem]:
    edition = await _edition(tx, edition_id, principal)
    item = await tx.repo.knowledge_item(edition_id, feedback_id, for_update=True)
    return edition, _found(item, "unknown_feedback", f"feedback {feedback_id} is not feedback of edition {edition_id}")


async def approve_knowledge_item(
    uow: Uow[Repository], edition_id: str, feedback_id: str, *, principal: Principal, text: str | None = None,
    now: dt.datetime, correlation_id: uuid.UUID,
) -> domain.KnowledgeItem:
    """The region's organiser approves shareable feedback as a knowledge item, optionally with an edited
    text (names removed): `KnowledgeItemApproved` (no personal data); again: nothing changes
    (`domain.moderation`: 409 `not_shareable`, `already_moderated`)."""
    async with uow.transaction() as tx:
        edition, item = await _knowledge_item(tx, edition_id, feedback_id, principal)
        if not domain.moderation(item, "approved"):
            return item
        item = domain.approved(item, text, now)
        await tx.repo.store_knowledge_decision(item)
        tx.publish(KnowledgeItemApproved(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, occurred_at=now,
            feedback_id=feedback_id, offer_id=item.feedback.offer_id, text=item.text,
            language=item.feedback.language, offer_title=item.offer_title, host_org=item.host_org,  # type: ignore[arg-type]
            approved_at=now,
        ))
        return item


async def reject_knowledge_item(
    uow: Uow[Repository], edition_id: str, feedback_id: str, *, principal: Principal, reason: str,
    now: dt.datetime, correlation_id: uuid.UUID,
) -> domain.KnowledgeItem:
    """The region's organiser rejects shareable feedback as a knowledge item, with a reason:
    `KnowledgeItemRejected`; again: nothing changes (`domain.moderation`)."""
    async with uow.transaction() as tx:
        edition, item = await _knowledge_item(tx, edition_id, feedback_id, principal)
        if not domain.moderation(item, "rejected"):
            return item
        item = domain.rejected(item, reason, now)
        await tx.repo.store_knowledge_decision(item)
        tx.publish(KnowledgeItemRejected(
            region=edition.region, edition=edition_id, correlation_id=correlation_id, occurred_at=now,
            feedback_id=feedback_id, reason=reason,
        ))
        return item


# --- people, import, export (issue 11) ---------------------------------------------------------------
# The organisers' tools: the people list and a sign-up with its history (`signup_history`, written by
# the same INSERT as every sign-up event: migration 005), edits on someone's behalf, late admissions
# (audited), visitor lists, bulk imports (whole file checked first, one transaction, idempotent by
# natural key), streamed exports and recommendations. Types and rules: `people.py`; SQL:
# `people_repository.py`.
def _signup_events(
    edition: domain.Edition, signup: domain.Signup, organisation: domain.Organisation | None,
    correlation_id: uuid.UUID, approval_url: ApprovalUrl | None,
) -> list[Event]:
    """The events of a new sign-up, as `submit_signup` publishes them: SignupSubmitted, the person's
    ParticipantRegistered and, where the edition requires it, the approval request."""
    envelope = dict(region=edition.region, edition=edition.id, correlation_id=correlation_id)
    events: list[Event] = [
        SignupSubmitted(
            **envelope, signup_id=signup.id, org=signup.org, language=signup.language, choices=signup.choices,
            available=signup.available, max_visits=signup.max_visits, signed_up_at=signup.signed_up_at,
            approval="pending" if signup.approval == "pending" else "not_required",
        ),
        ParticipantRegistered(
            **envelope, signup_id=signup.id, name=signup.name, email=signup.email, language=signup.language,
            org=signup.org, learning_goal=signup.learning_goal,
        ),
    ]
    if organisation is not None and edition.requires_approval:
        if approval_url is None:
            raise ValueError("an edition that requires approval needs approval links")
        contact = organisation.contact
        events.append(NotificationRequested(
            **envelope, notification_id=domain.approval_request_id(signup.id), template=APPROVAL_TEMPLATE,
            recipient=Recipient(name=contact.name, email=contact.email, language=contact.language),
            context={
                "participant_name": signup.name, "organisation_name": organisation.name, "edition_name": edition.name,
                "learning_goal": signup.learning_goal, "approval_url": approval_url(signup.id, edition.id, signup.org),
            },
        ))
    return events


async def people_list(
    uow: Uow[Repository], edition_id: str, *, principal: Principal, where: people.PeopleFilter,
    after: people.Cursor | None = None, limit: int = 50,
) -> people.PeoplePage:
    """The edition's sign-ups (organiser), by sign-up time, filtered, a page at a time."""
    async with uow.transaction() as tx:
        await _edition(tx, edition_id, principal)
        return people.page_of(await tx.repo.people(edition_id, where, after, limit + 1), limit)


async def person(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, now: dt.datetime
) -> people.PersonDetails:
    """One sign-up (organiser) with its choices, placement and history; whether its choices can change
    as an organiser may change them (`edit_signup`: the participant's rules but not the deadline)."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal)
        return people.PersonDetails(await _details(tx, edition, signup, min(now, edition.signup_deadline)),
                                    await tx.repo.history(signup_id))


_UNSET: Any = object()


async def edit_signup(
    uow: Uow[Repository], edition_id: str, signup_id: str, *, principal: Principal, now: dt.datetime,
    correlation_id: uuid.UUID, choices: list[str] | None = None, available: list[dt.date] | None = _UNSET,
    max_visits: int | None = None, learning_goal: str | None = None,
) -> people.PersonDetails:
    """An organiser edits a sign-up on the participant's behalf. Choices, available dates and visits:
    the participant's own rules (the edition open, the sign-up active, not placed; valid choices) but
    not the deadline → `SignupChanged`; the learning goal → `ParticipantRegistered` again (the
    participants topic is compacted: the newest record counts). Each edit is audited in the history
    (`ChangedOnBehalf`: who, which fields). No difference: nothing."""
    async with uow.transaction() as tx:
        edition, signup = await _signup(tx, edition_id, signup_id, principal, for_update=True)
        placement = await tx.repo.placement(signup_id)
        new = signup
        if choices is not None or available is not _UNSET or max_visits is not None:
            new_choices = list(choices) if choices is not None else list(signup.choices)
            domain.check_choices_change(edition, signup, placement, new_choices,
                                        await tx.repo.offers_by_id(new_choices), min(now, edition.signup_deadline))
            new = replace(new, choices=new_choices, available=signup.available if available is _UNSET else available,
                          max_visits=max_visits or signup.max_visits)
            people.check_available(edition, new.available)
        if learning_goal is not None:
            domain.check_not_cancelled(edition)
            if signup.erased_at is not None:
                raise Conflict("personal_data_erased", "this participant's personal data was erased", "learning_goal")
            new = replace(new, learning_goal=learning_goal)
        changed = people.differing(signup, new, ("choices", "available", "max_visits", "learning_goal"))
        if changed:
            await tx.repo.update_signup(new)
            envelope = dict(region=edition.region, edition=edition_id, correlation_id=correlation_id, signup_id=signup_id)
            if set(changed) - {"learning_goal"}:
                tx.publish(SignupChanged(**envelope, choices=new.choices, available=new.available, max_visits=new.max_visits))
            if "learning_goal" in changed:
                tx.publish(ParticipantRegistered(
                    **envelope, name=new.name, email=new.email, language=new.language, org=new.org,
                    learning_goal=new.learning_goal,
                ))
            await tx.repo.add_history(signup_id, edition_id, people.HistoryEntry(
                people.CHANGED_ON_BEHALF, now, principal.subject or principal.role, "", {"changed": changed},
            ))
        return people.PersonDetails(await _details(tx, edition, new, min(now, edition.signup_deadline)),
                                    await tx.repo.history(signup_id))


async def admit_signup(
    uow: Uow[Repository], edition_id: str, *, principal: Principal, org: str, name: str, email: str,
    language: str = "nl", choices: list[str], available: list[dt.date] | None = None, max_visits: int = 1,
    learning_goal: str = "", consent: bool = False, override_deadline: bool = False, reason: str = "",
    correlation_id: uuid.UUID, now: dt.datetime, approval_url: ApprovalUrl | None = None,
) -> domain.Signup:
    """An organiser signs someone up on their behalf. After the deadline only with `override_deadline`
    and a reason: a late admission, audited in the sign-up's history (`LateAdmission`: who, when, why);
    every other rule of a sign-up holds. Events as `submit_signup`."""
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal)
        signup = domain.Signup(
            id=_new_id("s", 16), edition_id=edition_id, org=org, name=name, email=email, language=language,
            choices=choices, available=available, max_visits=max_visits, signed_up_at=now,
            learning_goal=learning_goal, consented_at=now if consent else None, approval=domain.approval_of(edition),
        )
        organisation = await tx.repo.organisation(edition_id, org) if edition.requires_approval else None
        offers = await tx.repo.offers_by_id(choices)
        late = now > edition.signup_deadline
        if late and override_deadline:
            people.check_late_admission(edition, signup, offers, organisation, reason)
        else:
            domain.check_signup(edition, signup, offers, organisation)
        if not await tx.repo.insert_signup(signup):
            raise Conflict("already_signed_up", f"this e-mail address already signed up for edition {edition_id}", "email")
        tx.publish(*_signup_events(edition, signup, organisation, correlation_id, approval_url))
        if late:
            await tx.repo.add_history(signup.id, edition_id, people.HistoryEntry(
                people.LATE_ADMISSION, now, principal.subject or principal.role, reason,
                {"deadline": edition.signup_deadline.isoformat()},
            ))
        return signup


async def visitors(
    uow: Uow[Repository], edition_id: str, offer_id: str, *, principal: Principal
) -> tuple[domain.Offer, list[people.Visitor]]:
    """An offer's visitors (organiser): the participants matching assigned to it (name, organisation,
    learning goal), from the placements registration keeps of the matches topic."""
    async with uow.transaction() as tx:
        await _edition(tx, edition_id, principal)
        offer = _found(await tx.repo.offer(edition_id, offer_id), "unknown_offer",
                       f"offer {offer_id} is not an offer of edition {edition_id}")
        return offer, await tx.repo.visitors(offer_id)


def _check_importable(edition: domain.Edition, kind: people.ImportKind, now: dt.datetime) -> None:
    domain.check_not_cancelled(edition)
    if edition.status != "open":
        raise Conflict("edition_closed", f"edition {edition.id} is closed")
    if kind == "signups" and now > edition.signup_deadline:
        raise Conflict("deadline_passed", f"the sign-up deadline of edition {edition.id} has passed")


async def import_rows(
    uow: Uow[Repository], kind: people.ImportKind, edition_id: str, rows: list[tuple[int, Any]], *,
    principal: Principal, dry_run: bool, now: dt.datetime, correlation_id: uuid.UUID,
    approval_url: ApprovalUrl | None = None, shape_errors: Sequence[people.RowError] = (),
) -> people.ImportResult:
    """Import offers or sign-ups (rows already shaped: `imports.OfferRow` / `SignupRow` by row number):
    every row is checked against the edition and what exists first; any row error refuses the whole file
    (nothing stored). Otherwise — unless a dry run — every new row is stored and announced in this ONE
    transaction (as the single routes announce them), rows that exist identically are skipped
    (`unchanged`): uploading the same rows again creates nothing. `shape_errors`: the rows the reader
    refused already (they refuse the file too; the others are still checked). Ids derive from natural keys
    (`people.derived_offer_id`, `derived_signup_id`)."""
    async with uow.transaction() as tx:
        edition = await _edition(tx, edition_id, principal, for_update=not dry_run)
        _check_importable(edition, kind, now)
        plan = _plan_offers if kind == "offers" else _plan_signups
        outcomes, errors, new = await plan(tx, edition, rows, now)
        errors = sorted([*shape_errors, *errors], key=lambda e: e.row)  # the shapes' errors too: the whole file
        result = people.ImportResult(kind, dry_run, False, outcomes, errors)
        if errors or dry_run:
            return result
        if new and kind == "offers":
            await tx.repo.insert_offers(new)
            for offer in new:
                tx.publish(OfferPublished(
                    region=edition.region, edition=edition_id, correlation_id=correlation_id, **_offer_fields(offer)
                ))
        elif new:
            await tx.repo.insert_signups(new)
            orgs = {o.id: o for o in await tx.repo.organisations(edition_id)} if edition.requires_approval else {}
            for signup in new:
                tx.publish(*_signup_events(edition, signup, orgs.get(signup.org), correlation_id, approval_url))
        return replace(result, committed=True)


def _row_error(number: int, error: Any, columns: Mapping[str, str] | None = None) -> people.RowError:
    return people.RowError(number, people.column_of(error, columns), error.code, error.message)


async def _plan_offers(
    tx: Tx[Repository], edition: domain.Edition, rows: list[tuple[int, Any]], now: dt.datetime
) -> tuple[list[people.RowOutcome], list[people.RowError], list[domain.Offer]]:
    errors: list[people.RowError] = []
    planned: dict[str, tuple[int, domain.Offer]] = {}
    repeated: list[tuple[int, str]] = []
    for number, row in rows:
        offer = row.offer(edition.id, row.id or people.derived_offer_id(edition.id, row.host_org, row.title, row.date))
        try:
            domain.check_offer(edition, offer)
        except DomainError as refusal:
            errors.append(_row_error(number, refusal))
            continue
        if offer.id in planned:
            if people.differing(planned[offer.id][1], offer, people.OFFER_FIELDS):
                errors.append(people.RowError(number, "id", "duplicate_row", f"row {planned[offer.id][0]} has this key"))
            else:
                repeated.append((number, offer.id))
            continue
        planned[offer.id] = (number, offer)
    existing = await tx.repo.offers_by_id(list(planned))
    outcomes: list[people.RowOutcome] = []
    new: list[domain.Offer] = []
    for offer_id, (number, offer) in planned.items():
        found = existing.get(offer_id)
        if found is None:
            outcomes.append(people.RowOutcome(number, offer_id, "created"))
            new.append(offer)
        elif found.edition_id != edition.id:
            errors.append(people.RowError(number, "id", "offer_exists", f"offer {offer_id} is in another edition"))
        elif found.status != "published":
            errors.append(people.RowError(number, "id", "offer_cancelled", f"offer {offer_id} was cancelled"))
        elif differs := people.differing(found, offer, people.OFFER_FIELDS):
            errors.append(people.RowError(number, differs[0], "offer_differs", f"offer {offer_id} exists with another {differs[0]}"))
        else:
            outcomes.append(people.RowOutcome(number, offer_id, "unchanged"))
    outcomes += [people.RowOutcome(number, offer_id, "unchanged") for number, offer_id in repeated]
    return sorted(outcomes, key=lambda o: o.row), sorted(errors, key=lambda e: e.row), new


async def _plan_signups(
    tx: Tx[Repository], edition: domain.Edition, rows: list[tuple[int, Any]], now: dt.datetime
) -> tuple[list[people.RowOutcome], list[people.RowError], list[domain.Signup]]:
    errors: list[people.RowError] = []
    offers = {o.id: o for o in await tx.repo.offers(edition.id)}
    orgs = {o.id: o for o in await tx.repo.organisations(edition.id)} if edition.requires_approval else {}
    approval = domain.approval_of(edition)
    planned: dict[str, tuple[int, domain.Signup]] = {}
    repeated: list[tuple[int, str]] = []
    for number, row in rows:
        key = row.email.lower()
        signup = domain.Signup(
            id=people.derived_signup_id(edition.id, key), edition_id=edition.id, org=row.org, name=row.name,
            email=row.email, language=row.language, choices=row.choices, available=row.available,
            max_visits=row.max_visits, signed_up_at=now, learning_goal=row.learning_goal,
            consented_at=now if row.consent else None, approval=approval,
        )
        try:
            domain.check_signup(edition, signup, offers, orgs.get(row.org) if edition.requires_approval else None)
        except DomainError as refusal:
            errors.append(_row_error(number, refusal))
            continue
        if key in planned:
            if people.differing(planned[key][1], signup, people.SIGNUP_FIELDS):
                errors.append(people.RowError(number, "email", "duplicate_row", f"row {planned[key][0]} has this e-mail address"))
            else:
                repeated.append((number, planned[key][1].id))
            continue
        planned[key] = (number, signup)
    existing = await tx.repo.active_signups_by_email(edition.id, list(planned))
    taken = await tx.repo.signup_ids_taken([s.id for k, (_, s) in planned.items() if k not in existing])
    outcomes: list[people.RowOutcome] = []
    new: list[domain.Signup] = []
    for key, (number, signup) in planned.items():
        found = existing.get(key)
        if found is not None:
            if differs := people.differing(found, signup, people.SIGNUP_FIELDS):
                errors.append(people.RowError(number, differs[0], "signup_differs", f"{key} signed up with another {differs[0]}"))
            else:
                outcomes.append(people.RowOutcome(number, found.id, "unchanged"))
        elif signup.id in taken:
            errors.append(people.RowError(number, "email", "signup_ended", f"the imported sign-up of {key} has ended"))
        else:
            outcomes.append(people.RowOutcome(number, signup.id, "created"))
            new.append(signup)
    outcomes += [people.RowOutcome(number, signup_id, "unchanged") for number, signup_id in repeated]
    return sorted(outcomes, key=lambda o: o.row), sorted(errors, key=lambda e: e.row), new


async def export(
    uow: Uow[Repository], kind: people.ExportKind, edition_id: str, *, principal: Principal
) -> AsyncIterator[Sequence[Any]]:
    """An export of the edition (organiser; its region only), streamed from a server-side cursor in one
    read transaction: first the column names, then the rows. Iterate to the end or `aclose()` it."""
    async with uow.transaction() as tx:
        await _edition(tx, edition_id, principal)
        yield tx.repo.export_columns(kind)
        async for row in tx.repo.export_rows(kind, edition_id):
            yield row


async def recommendations(
    uow: Uow[Repository], edition_id: str, *, goal: str, themes: list[str], days: list[dt.date] | None,
    language: str, limit: int = 20,
) -> list[people.Recommendation]:
    """The edition's published offers that still have room (on one of `days`, if given), best first for
    the learning goal: PostgreSQL full-text search in the language's configuration (the goal's words
    as lexemes of its stemmer, OR-ed; `ts_rank_cd`) plus a bonus per theme asked for (public)."""
    config = people.TEXT_SEARCH[language]
    async with uow.transaction() as tx:
        await _edition(tx, edition_id)
        words = people.goal_words(await tx.repo.goal_tokens(config, goal)) if goal.strip() else {}
        found = await tx.repo.offers_with_room(edition_id, config, list(words), days)
    return people.ranked([people.recommendation(o, room, rank, matched, words, themes)
                          for o, room, rank, matched in found])[:limit]
