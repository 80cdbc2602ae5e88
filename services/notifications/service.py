"""Notification use cases, the service's only door: keep the region's editions, offers, sign-ups,
visits and participants' contact details, record the messages of the journey an event or a scheduled
step asks for (inside the consumer's or the step's transaction), erase a participant, send the next
due message, read statuses."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Protocol

import structlog

from estafette.runtime.access import Principal
from estafette.runtime.clock import Now
from estafette.runtime.errors import Forbidden, NotFound
from estafette.runtime.scheduler import Step
from estafette.runtime.uow import Tx, Uow
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationFailed,
    NotificationRequested,
    NotificationSent,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    ParticipantRegistered,
    SeatOffered,
    SeatOfferEnded,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.notifications import domain
from services.notifications.mail import build_message, classify, raw_message, raw_ok
from services.notifications.rendering import Renderer
from services.notifications.repository import Repository

log = structlog.get_logger(__name__)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """What one send attempt led to (returned after its transaction committed)."""

    message: domain.Due
    number: int
    status: domain.Status
    failure: domain.Failure | None = None
    retry_in: float | None = None


# --- recording: inside the consumer's transaction, no SMTP ------------------------------------------
async def record(tx: Tx[Repository], notification: domain.NewNotification) -> None:
    """Record a message once per notification id: pending (the sender is woken at commit), awaiting
    the participant's contact, or failed at once when that contact was erased (NotificationFailed)."""
    await record_all(tx, [notification])


async def record_all(tx: Tx[Repository], notifications: list[domain.NewNotification]) -> None:
    """`record` for each message, in order, with a constant number of statements: the participants'
    locks in one statement (sorted sign-up ids), their contacts and erasures read at once, one insert,
    one wake-up."""
    participants = sorted({n.signup_id for n in notifications if n.for_participant and n.signup_id is not None})
    contacts: dict[str, domain.Contact] = {}
    erased: set[str] = set()
    if participants:
        await tx.repo.lock_participants(participants)
        contacts = await tx.repo.contacts_of(participants)
        erased = await tx.repo.erased_among([s for s in participants if s not in contacts])
    starts = []
    for notification in notifications:
        if notification.for_participant:
            assert notification.signup_id is not None
            signup_id = notification.signup_id
            starts.append(domain.addressing(notification, contacts.get(signup_id), signup_id in erased))
        else:
            starts.append(domain.addressing(notification, None, False))
    inserted = await tx.repo.insert_all(
        [(n, a.status, a.language, a.error) for n, a in zip(notifications, starts, strict=True)]
    )
    recorded = []
    for notification, start in zip(notifications, starts, strict=True):
        if notification.id in inserted:
            inserted.discard(notification.id)  # the same id twice: the first one was recorded
            recorded.append((notification, start))
    if any(start.status == "pending" for _, start in recorded):
        await tx.repo.wake_sender()
    for notification, start in recorded:
        if start.status == "failed":
            assert start.error is not None
            tx.publish(_failed_event(_ended(notification), permanent=True, error=start.error))


@dataclass(frozen=True)
class Journey:
    """What the journey's use cases need besides their transaction: the platform clock (every "now"),
    the time zone of a region (its visits' local times), and the participants' links."""

    clock: Now
    #: region id -> IANA time zone name (the region registry's, else the service's TIMEZONE).
    zone: Callable[[str], str]
    #: (signup_id, edition) -> the "my sign-up" page (registration), signed.
    signup_url: domain.SignupLink
    #: (signup_id, edition, offer_id) -> the feedback page of one visit (registration), signed.
    feedback_url: domain.FeedbackLink


# --- editions ---------------------------------------------------------------------------------------------
async def edition_opened(tx: Tx[Repository], event: EditionOpened) -> None:
    await tx.repo.save_edition(domain.edition_from(event))


async def edition_closed(tx: Tx[Repository], event: EditionClosed) -> None:
    await tx.repo.set_edition_status(event.edition, event.region, "closed", event.reason)


async def edition_cancelled(tx: Tx[Repository], event: EditionCancelled, journey: Journey) -> None:
    """The whole edition is off: every participant whose sign-up is not withdrawn or refused (placed,
    holding a seat offer, waiting or not matched yet) gets one `edition_cancelled` (a CANCEL calendar
    entry for those placed), each offer's host contact one `host_edition_cancelled`; every visit ends
    and every step of the edition is cancelled. An edition cancelled already: nothing."""
    await tx.repo.lock_edition(event.edition)
    known = await tx.repo.edition(event.edition)
    if known is not None and known.cancelled:
        return
    await tx.repo.set_edition_status(event.edition, event.region, "cancelled", event.reason)
    edition = await tx.repo.edition(event.edition) or domain.unknown_edition(event.edition, event.region)
    zone, now = journey.zone(event.region), journey.clock.now()
    offers = {o.offer_id: o for o in await tx.repo.offers_of(event.edition)}
    signups = {s.signup_id: s for s in await tx.repo.signups_of(event.edition)}
    visits = await tx.repo.visits(edition=event.edition)
    placed: dict[str, list[domain.Offer]] = {}
    for visit in visits:
        if visit.status == "current" and visit.offer_id in offers:
            placed.setdefault(visit.signup_id, []).append(offers[visit.offer_id])
    people = {s.signup_id for s in signups.values() if not s.ended}
    people |= {v.signup_id for v in visits if (v.status == "current" or v.holds_seat_offer(now))
               and not (v.signup_id in signups and signups[v.signup_id].ended)}
    for signup_id in sorted(people):
        first = min(placed[signup_id], key=lambda o: (o.date, o.offer_id)) if signup_id in placed else None
        await record(tx, domain.edition_cancelled(event, edition, signup_id, (first, zone) if first else None))
    for offer in offers.values():
        host = domain.host_edition_cancelled(event, edition, offer) if not offer.cancelled else None
        if host is not None:
            await record(tx, host)
    for visit in visits:
        await _end_visit(tx, visit)
    for offer_id in offers:
        await tx.repo.plan(domain.Planned("visitor_list", offer_id, None))
    log.info("edition cancelled", edition=event.edition, participants=len(people), offers=len(offers))


# --- offers ---------------------------------------------------------------------------------------------
async def offer_published(tx: Tx[Repository], event: OfferPublished, journey: Journey) -> None:
    """Keep the offer; visits placed on it before it arrived (topics are read apart) get its times."""
    await tx.repo.lock_edition(event.edition)
    await tx.repo.save_offer(domain.offer_from(event))
    offer = await tx.repo.offer(event.offer_id)
    if offer is not None and not offer.cancelled:
        await _move_steps(tx, journey, offer, event.correlation_id)


async def offer_changed(tx: Tx[Repository], event: OfferChanged, journey: Journey) -> None:
    """Keep the offer as it is now, move its visits' steps to its new times, and tell everyone placed
    there what changed (one `offer_changed` each, with the new calendar entry), unless only fields they
    do not see changed (`domain.UNSEEN_CHANGES`), the offer was cancelled or the edition was."""
    await tx.repo.lock_edition(event.edition)
    await tx.repo.save_offer(domain.offer_from(event))
    offer = await tx.repo.offer(event.offer_id)
    edition = await tx.repo.edition(event.edition)
    if offer is None or offer.cancelled or (edition is not None and edition.cancelled):
        return
    placed = await _move_steps(tx, journey, offer, event.correlation_id)
    if not domain.seen_changes(event.changed):
        return
    zone = journey.zone(offer.region)
    for visit in placed:
        manage_url = journey.signup_url(visit.signup_id, visit.edition)
        await record(tx, domain.offer_changed(event, offer, visit.signup_id, zone, manage_url))


async def offer_cancelled(tx: Tx[Repository], event: OfferCancelled, journey: Journey) -> None:
    """Tell everyone placed on the offer (with a CANCEL calendar entry) or holding an open seat offer
    on it, once each, with the reason; their visits end and their steps and the visitor list are
    cancelled. Nobody is told when the edition was cancelled (they were told that)."""
    await tx.repo.lock_edition(event.edition)
    await tx.repo.cancel_offer(event.offer_id, event.reason)
    offer = await tx.repo.offer(event.offer_id)
    edition = await tx.repo.edition(event.edition)
    tell = offer is not None and not (edition is not None and edition.cancelled)
    zone, now = journey.zone(event.region), journey.clock.now()
    for visit in await tx.repo.visits(offer_id=event.offer_id):
        placed = visit.status == "current"
        if tell and (placed or visit.holds_seat_offer(now)):
            assert offer is not None
            await record(tx, domain.offer_cancelled(
                event.event_id, event.correlation_id, offer, visit.signup_id, zone, placed=placed
            ))
        await _end_visit(tx, visit)
    await tx.repo.plan(domain.Planned("visitor_list", event.offer_id, None))


async def _move_steps(
    tx: Tx[Repository], journey: Journey, offer: domain.Offer, correlation_id: uuid.UUID
) -> list[domain.Visit]:
    """Schedule (or move) the steps of the offer's current visits and its visitor list at the offer's
    times; the current visits."""
    placed = [v for v in await tx.repo.visits(offer_id=offer.offer_id) if v.status == "current"]
    zone, now = journey.zone(offer.region), journey.clock.now()
    for visit in placed:
        await tx.repo.plan_all(domain.visit_steps(visit.signup_id, offer, zone, now, visit.correlation_id or correlation_id))
    return placed


async def _end_visit(tx: Tx[Repository], visit: domain.Visit) -> None:
    await tx.repo.end_visit(visit.signup_id, visit.offer_id)
    await tx.repo.plan_all(domain.ended_visit_steps(visit.signup_id, visit.offer_id))


# --- sign-ups -------------------------------------------------------------------------------------------
async def signup_submitted(tx: Tx[Repository], event: SignupSubmitted, journey: Journey) -> None:
    """Keep the sign-up and confirm it: the edition, the choices, the "my sign-up" link, and whether
    the employer's approval is awaited."""
    await signups_submitted(tx, [event], journey)


async def signups_submitted(tx: Tx[Repository], events: list[SignupSubmitted], journey: Journey) -> None:
    """`signup_submitted` for each event, in order, with the same result, in a constant number of
    statements for the batch: each edition locked once (sorted), the sign-ups kept with one statement,
    their offers read at once, the confirmations recorded by `record_all`."""
    if not events:
        return
    edition_ids = sorted({e.edition for e in events})
    for edition_id in edition_ids:
        await tx.repo.lock_edition(edition_id)
    await tx.repo.save_signups([domain.signup_from(e) for e in events])
    editions = {edition_id: await tx.repo.edition(edition_id) for edition_id in edition_ids}
    offers = await tx.repo.offers_by_id(sorted({c for e in events for c in e.choices}))
    confirmations = []
    for event in events:
        edition = editions[event.edition] or domain.unknown_edition(event.edition, event.region)
        if edition.cancelled:
            continue
        choices = [offer for offer in (offers[c] for c in event.choices) if offer is not None]
        manage_url = journey.signup_url(event.signup_id, event.edition)
        confirmations.append(domain.signup_confirmed(event, edition, choices, manage_url))
    await record_all(tx, confirmations)


async def signup_changed(tx: Tx[Repository], event: SignupChanged) -> None:
    await tx.repo.change_signup(event.signup_id, choices=list(event.choices))


async def signup_approved(tx: Tx[Repository], event: SignupApproved) -> None:
    await tx.repo.change_signup(event.signup_id, approval="approved")


async def signup_refused(tx: Tx[Repository], event: SignupRefused) -> None:
    """The employer refused: the sign-up ends (like a withdrawal, without a host notice: it was never
    placed) and the participant is told, with the reason."""
    await tx.repo.lock_edition(event.edition)
    await tx.repo.change_signup(event.signup_id, status="refused", approval="refused")
    for visit in await tx.repo.visits(signup_id=event.signup_id):
        await _end_visit(tx, visit)
    edition = await tx.repo.edition(event.edition) or domain.unknown_edition(event.edition, event.region)
    if not edition.cancelled:
        await record(tx, domain.approval_refused(event, edition))


async def signup_withdrawn(tx: Tx[Repository], event: SignupWithdrawn, journey: Journey) -> None:
    """The sign-up ends: its visits end and their steps are cancelled; the host contact of each visit
    that had not started yet gets `visitor_withdrew` (not when the offer or the edition was cancelled)."""
    await tx.repo.lock_edition(event.edition)
    await tx.repo.change_signup(event.signup_id, status="withdrawn")
    edition = await tx.repo.edition(event.edition)
    zone, now = journey.zone(event.region), journey.clock.now()
    for visit in await tx.repo.visits(signup_id=event.signup_id):
        await _end_visit(tx, visit)
        if visit.status != "current" or (edition is not None and edition.cancelled):
            continue
        offer = await tx.repo.offer(visit.offer_id)
        if offer is None or offer.cancelled or not domain.visit_not_started(offer, zone, now):
            continue
        remaining = sum(v.status == "current" for v in await tx.repo.visits(offer_id=offer.offer_id))
        notice = domain.visitor_withdrew(event, offer, remaining)
        if notice is not None:
            await record(tx, notice)


# --- matches --------------------------------------------------------------------------------------------
async def _goes_on(tx: Tx[Repository], edition_id: str, signup_id: str) -> bool:
    """Neither the edition is cancelled nor the sign-up ended (a match event read after those)."""
    return domain.goes_on(await tx.repo.edition(edition_id), await tx.repo.signup(signup_id))


async def match_decided(tx: Tx[Repository], event: MatchWaitlisted | MatchUnmatched) -> None:
    """MatchWaitlisted or MatchUnmatched: tell the participant."""
    await tx.repo.lock_edition(event.edition)
    if await _goes_on(tx, event.edition, event.signup_id):
        await record(tx, domain.from_match(event))


async def match_assigned(tx: Tx[Repository], event: MatchAssigned, journey: Journey) -> None:
    """Tell the participant where to go (with the calendar entry); the visit starts, with its reminder,
    feedback request and the offer's visitor list scheduled (`matches_assigned` of one event)."""
    await matches_assigned(tx, [event], journey)


async def matches_assigned(tx: Tx[Repository], events: list[MatchAssigned], journey: Journey) -> None:
    """`match_assigned` for each event, in order, with the same result, in a constant number of
    statements for the batch: each edition locked once (sorted; then the participants, sorted, in
    `record_all`: the order every use case takes them in), the sign-ups and offers read at once, the
    visits, steps and messages written at once."""
    if not events:
        return
    edition_ids = sorted({e.edition for e in events})
    for edition_id in edition_ids:
        await tx.repo.lock_edition(edition_id)
    editions = {edition_id: await tx.repo.edition(edition_id) for edition_id in edition_ids}
    signups = await tx.repo.signups_by_id(sorted({e.signup_id for e in events}))
    offers = await tx.repo.offers_by_id(sorted({e.offer.offer_id for e in events}))
    now = journey.clock.now()
    visits: list[domain.Visit] = []
    steps: list[domain.Planned] = []
    messages: list[domain.NewNotification] = []
    for event in events:
        offer = domain.assignment_offer(
            event, editions[event.edition], signups.get(event.signup_id), offers[event.offer.offer_id]
        )
        if offer is None:
            continue
        zone = journey.zone(event.region)
        visits.append(domain.Visit(
            event.signup_id, offer.offer_id, event.region, event.edition, "current", correlation_id=event.correlation_id
        ))
        steps += domain.visit_steps(event.signup_id, offer, zone, now, event.correlation_id)
        messages.append(domain.from_assignment(event, offer, zone, journey.signup_url(event.signup_id, event.edition)))
    await tx.repo.save_visits(visits)
    await tx.repo.plan_all(steps)
    await record_all(tx, messages)


async def seat_offered(tx: Tx[Repository], event: SeatOffered, answer_link: domain.AnswerLink) -> None:
    """Offer the freed seat, with the signed links (`answer_link`) to accept or decline it; the seat
    offer is kept (an offer cancelled meanwhile tells its holder)."""
    await tx.repo.lock_edition(event.edition)
    if not await _goes_on(tx, event.edition, event.signup_id):
        return
    offer = await tx.repo.offer(event.offer.offer_id)
    current = await tx.repo.visits(signup_id=event.signup_id, offer_id=event.offer.offer_id)
    if not any(v.status == "current" for v in current):
        await tx.repo.save_visit(domain.Visit(
            event.signup_id, event.offer.offer_id, event.region, event.edition, "seat_offered",
            expires_at=event.expires_at, correlation_id=event.correlation_id,
        ))
    await record(tx, domain.from_seat_offer(event, answer_link, offer))


async def seat_offer_ended(tx: Tx[Repository], event: SeatOfferEnded) -> None:
    """Declined or expired: not e-mailed; the seat offer is no longer held."""
    await tx.repo.end_visit(event.signup_id, event.offer_id, only="seat_offered")


# --- scheduled steps: each in the transaction that marks it done --------------------------------------
def _occurrence(step: Step) -> domain.Occurrence:
    return domain.Occurrence(step.kind, step.key, step.due_at, uuid.UUID(step.payload["correlation_id"]))  # type: ignore[arg-type]


async def _still_on(tx: Tx[Repository], offer_id: str, signup_id: str | None, journey: Journey) -> domain.Offer | None:
    """The offer, if its visit (of `signup_id`; else any) still goes ahead: the offer and the edition
    are not cancelled, the visit is current, and (for what is sent before it) it has not started yet."""
    offer = await tx.repo.offer(offer_id)
    if offer is None or offer.cancelled:
        return None
    edition = await tx.repo.edition(offer.edition)
    if edition is not None and edition.cancelled:
        return None
    if signup_id is not None:
        visits = await tx.repo.visits(signup_id=signup_id, offer_id=offer_id)
        if not any(v.status == "current" for v in visits):
            return None
    return offer


async def reminder_due(tx: Tx[Repository], step: Step, journey: Journey) -> None:
    """The day before the visit: the `reminder` with the calendar entry (not for a visit that ended
    or has started already)."""
    signup_id = step.payload["signup_id"]
    offer = await _still_on(tx, step.payload["offer_id"], signup_id, journey)
    zone = journey.zone(offer.region) if offer else ""
    if offer is None or not domain.visit_not_started(offer, zone, journey.clock.now()):
        log.info("reminder not sent: the visit is off or has started", key=step.key)
        return
    manage_url = journey.signup_url(signup_id, offer.edition)
    await record(tx, domain.reminder(_occurrence(step), signup_id, offer, zone, manage_url))


async def feedback_due(tx: Tx[Repository], step: Step, journey: Journey) -> None:
    """After the visit: the `feedback_request` with the feedback link (not for a visit that ended)."""
    signup_id = step.payload["signup_id"]
    offer = await _still_on(tx, step.payload["offer_id"], signup_id, journey)
    if offer is None:
        log.info("feedback request not sent: the visit is off", key=step.key)
        return
    feedback_url = journey.feedback_url(signup_id, offer.edition, offer.offer_id)
    await record(tx, domain.feedback_request(_occurrence(step), signup_id, offer, feedback_url))


async def visitor_list_due(tx: Tx[Repository], step: Step, journey: Journey) -> None:
    """The day before: the host contact gets who is coming (in the contact's language) and the host's
    calendar entry. No host contact, nobody coming, or the visit off or started: no message."""
    offer = await _still_on(tx, step.key, None, journey)
    zone = journey.zone(offer.region) if offer else ""
    if offer is None or not domain.visit_not_started(offer, zone, journey.clock.now()):
        log.info("visitor list not sent: the offer is off or has started", key=step.key)
        return
    visitors = [v.signup_id for v in await tx.repo.visits(offer_id=offer.offer_id) if v.status == "current"]
    message = domain.visitor_list(_occurrence(step), offer, visitors, zone) if visitors else None
    if message is None:
        log.info("visitor list not sent: no host contact or nobody coming", key=step.key)
        return
    await record(tx, message)


async def notification_requested(tx: Tx[Repository], event: NotificationRequested) -> None:
    await record(tx, domain.from_request(event))


# --- participants' contact details: inside the consumer's transaction -----------------------------------
async def participant_registered(tx: Tx[Repository], event: ParticipantRegistered) -> None:
    """Keep the participant's contact details (the latest ones count) and queue their messages that
    awaited them."""
    await participants_registered(tx, [event])


async def participants_registered(tx: Tx[Repository], events: list[ParticipantRegistered]) -> None:
    """`participant_registered` for each event, in one statement each for the batch: the participants'
    locks (sorted), the contacts kept (the last of a sign-up registered twice counts), and their awaiting
    messages queued in the language of that contact."""
    contacts = {c.signup_id: c for c in map(domain.contact_from, events)}
    if not contacts:
        return
    await tx.repo.lock_participants(sorted(contacts))
    await tx.repo.save_contacts(list(contacts.values()))
    if await tx.repo.release_awaiting_all({c.signup_id: c.language for c in contacts.values()}):
        await tx.repo.wake_sender()


async def participant_erased(tx: Tx[Repository], signup_id: str) -> None:
    """A tombstone on the participants topic: delete the contact and every copy of the person's name
    and address in this service's tables; their messages not sent yet end as failed
    (`domain.CONTACT_ERASED`), each with a NotificationFailed that holds no personal data."""
    await tx.repo.lock_participant(signup_id)
    await tx.repo.erase_contact(signup_id)
    ended = await tx.repo.end_unsent(signup_id, domain.CONTACT_ERASED)
    await tx.repo.clear_recipients(signup_id)
    await tx.repo.forget_dead_letters(signup_id)
    for message in ended:
        tx.publish(_failed_event(message, permanent=True, error=domain.CONTACT_ERASED))
    log.info("participant's contact erased", signup_id=signup_id, messages_ended=len(ended))


# --- sending ------------------------------------------------------------------------------------------
async def send_next(
    uow: Uow[Repository], mailer: Mailer, renderer: Renderer, sender: str, policy: domain.RetryPolicy,
    regions: tuple[str, ...] | None = None,
) -> Attempt | None:
    """Send the oldest due message of `regions` (the regions this instance serves; None: every region),
    if any, and record the result with its event, in one transaction. A participant's message goes to
    their contact details as they are now.

    The row stays locked while the SMTP server answers, so no other sender takes it. If the process dies
    after the server accepted the message and before the commit, the message is sent again later: the
    one duplicate window (see README); the Message-ID is the same both times. Every log line written
    while the message is handled carries its notification id and correlation id.
    """
    with ExitStack() as bound:
        async with uow.transaction() as tx:
            due = await tx.repo.claim_due(regions)
            if due is None:
                return None
            bound.enter_context(
                structlog.contextvars.bound_contextvars(
                    notification_id=str(due.id), correlation_id=str(due.correlation_id)
                )
            )
            attempt = await _attempt(tx, due, mailer, renderer, sender, policy)
        _log(attempt)  # after the commit: the outcome is recorded
        return attempt


async def _attempt(
    tx: Tx[Repository], due: domain.Due, mailer: Mailer, renderer: Renderer, sender: str, policy: domain.RetryPolicy
) -> Attempt:
    number = due.attempts + 1
    if due.name is None or due.email is None or due.language is None:
        return await _failed(tx, due, number, domain.Failure(True, domain.NO_ADDRESS), policy)
    data = due.data
    if domain.names_visitors(data):  # a host's message names its visitors as they are now
        data = domain.with_visitors(data, await tx.repo.visitors(domain.visitor_ids_of(data)))
    try:
        rendered = renderer.render(due.kind, due.language, due.name, data)
        await mailer.send(build_message(due.id, sender, due.name, due.email, due.language, rendered, due.kind))
    except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
        return await _failed(tx, due, number, classify(exc), policy)
    await tx.repo.mark_sent(due.id, due.language)
    tx.publish(
        NotificationSent(
            region=due.region, edition=due.edition, correlation_id=due.correlation_id,
            notification_id=due.id, template=due.template, signup_id=due.signup_id,
        )
    )
    return Attempt(due, number, "sent")


async def _failed(
    tx: Tx[Repository], due: domain.Due, number: int, failure: domain.Failure, policy: domain.RetryPolicy
) -> Attempt:
    decision = domain.after_failure(failure, number, policy)
    if decision.status == "pending":
        assert decision.retry_in is not None
        await tx.repo.mark_retry(due.id, failure.error, decision.retry_in)
        return Attempt(due, number, "pending", failure, decision.retry_in)
    await tx.repo.mark_failed(due.id, failure.error)
    tx.publish(_failed_event(_ended(due), permanent=failure.permanent, error=failure.error))
    return Attempt(due, number, "failed", failure)


def _ended(message: domain.NewNotification) -> domain.Ended:
    return domain.Ended(
        id=message.id, template=message.template, region=message.region, edition=message.edition,
        signup_id=message.signup_id, correlation_id=message.correlation_id,
    )


def _failed_event(message: domain.Ended, *, permanent: bool, error: str) -> NotificationFailed:
    """Ids, template and the (redacted) reason: nothing personal."""
    return NotificationFailed(
        region=message.region, edition=message.edition, correlation_id=message.correlation_id,
        notification_id=message.id, template=message.template, signup_id=message.signup_id,
        permanent=permanent, error=error,
    )


def _log(attempt: Attempt) -> None:
    """Ids, template and error only: never a name or an e-mail address."""
    fields = {"template": attempt.message.template, "attempt": attempt.number}
    if attempt.status == "sent":
        log.info("e-mail sent", **fields)
    elif attempt.status == "pending":
        assert attempt.failure is not None
        log.warning("e-mail not sent, will retry", error=attempt.failure.error, retry_in=attempt.retry_in, **fields)
    else:
        assert attempt.failure is not None
        log.warning("e-mail failed", error=attempt.failure.error, permanent=attempt.failure.permanent, **fields)


# --- sending in batches (issue 13): claim, send outside any transaction, record --------------------
@dataclass(frozen=True)
class Claim:
    """Messages claimed by one short transaction: those to send under `lease`, and the attempts that
    ended at claim time (a participant's contact erased, no address: failed, never sent)."""

    lease: uuid.UUID
    messages: list[domain.Due]
    ended: list[Attempt]


async def claim(
    uow: Uow[Repository], limit: int, lease_seconds: float, policy: domain.RetryPolicy,
    regions: tuple[str, ...] | None = None,
) -> Claim:
    """Claim up to `limit` due messages of `regions` (None: every region) for `lease_seconds`, in one
    transaction: they become `sending`, so no other sender takes them until the lease runs out; a
    message whose sender died is due again after its lease. A message that cannot be sent (its
    participant's contact was erased, or no address) fails here, with its NotificationFailed. A host's
    message gets its visitors as they are now."""
    lease = uuid.uuid4()
    async with uow.transaction() as tx:
        claimed = await tx.repo.claim_batch(lease, limit, lease_seconds, regions)
        messages, unsendable = [], []
        for item in claimed:
            failure = domain.unsendable(item)
            if failure is not None:
                unsendable.append(domain.Outcome(item.message, lease, failure))
                continue
            due = item.message
            if domain.names_visitors(due.data):
                visitors = await tx.repo.visitors(domain.visitor_ids_of(due.data))
                due = replace(due, data=domain.with_visitors(due.data, visitors))
            messages.append(due)
        ended = await _record_outcomes(tx, unsendable, policy) if unsendable else []
    _log_all(ended)
    return Claim(lease, messages, ended)


async def send_claimed(due: domain.Due, mailer: Mailer, renderer: Renderer, sender: str) -> domain.Failure | None:
    """Render and send one claimed message (no transaction): None when the SMTP server accepted it,
    else the classified failure. Its Message-ID is the same at every attempt (`domain.message_id`).
    A mailer that sends bytes (`mail.SmtpPool.send_raw`) gets the message built straight to bytes
    (`mail.raw_message`, the cheaper way), unless an address needs SMTPUTF8."""
    try:
        assert due.name is not None and due.email is not None and due.language is not None
        rendered = renderer.render(due.kind, due.language, due.name, due.data)
        send_raw = getattr(mailer, "send_raw", None)
        if send_raw is not None and raw_ok(sender, due.email):
            await send_raw(sender, due.email, raw_message(
                due.id, sender, due.name, due.email, due.language, rendered, due.kind))
        else:
            await mailer.send(build_message(due.id, sender, due.name, due.email, due.language, rendered, due.kind))
    except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
        return classify(exc)
    return None


async def record_outcomes(
    uow: Uow[Repository], outcomes: list[domain.Outcome], policy: domain.RetryPolicy
) -> list[Attempt]:
    """Record a batch of outcomes in one transaction, each with its NotificationSent or
    NotificationFailed (a retry publishes nothing); the attempts recorded. An outcome whose lease ran
    out and whose message another sender took is not recorded (that sender records it)."""
    async with uow.transaction() as tx:
        attempts = await _record_outcomes(tx, outcomes, policy)
    _log_all(attempts)
    return attempts


async def release(uow: Uow[Repository], lease: uuid.UUID, ids: list[uuid.UUID]) -> int:
    """Hand back claimed messages that were not sent (the sender is stopping): due again at once."""
    if not ids:
        return 0
    async with uow.transaction() as tx:
        return await tx.repo.release(lease, ids)


async def _record_outcomes(
    tx: Tx[Repository], outcomes: list[domain.Outcome], policy: domain.RetryPolicy
) -> list[Attempt]:
    recordings = [domain.recording(o, policy) for o in outcomes]
    recorded = await tx.repo.record_outcomes(recordings)
    attempts = []
    for outcome, rec in zip(outcomes, recordings, strict=True):
        due = outcome.message
        if rec.id not in recorded:
            with structlog.contextvars.bound_contextvars(notification_id=str(due.id), correlation_id=str(due.correlation_id)):
                log.warning("e-mail outcome not recorded: its lease ran out and another sender holds it",
                            template=due.template, sent=outcome.failure is None)
            continue
        if rec.status == "sent":
            tx.publish(NotificationSent(
                region=due.region, edition=due.edition, correlation_id=due.correlation_id,
                notification_id=due.id, template=due.template, signup_id=due.signup_id,
            ))
        elif rec.status == "failed":
            assert outcome.failure is not None and rec.error is not None
            tx.publish(_failed_event(_ended(due), permanent=outcome.failure.permanent, error=rec.error))
        attempts.append(Attempt(due, due.attempts + 1, rec.status, outcome.failure, rec.retry_in))
    return attempts


def _log_all(attempts: list[Attempt]) -> None:
    """After the commit: each outcome with its notification id and correlation id bound."""
    for attempt in attempts:
        due = attempt.message
        with structlog.contextvars.bound_contextvars(notification_id=str(due.id), correlation_id=str(due.correlation_id)):
            _log(attempt)


# --- status ---------------------------------------------------------------------------------------
async def backlog(uow: Uow[Repository], regions: tuple[str, ...] | None = None) -> domain.Backlog:
    """The queue of the regions this instance serves (None: every region)."""
    async with uow.transaction() as tx:
        return await tx.repo.backlog(regions)


def _personal_data_guard(principal: Principal) -> None:
    """Messages are personal data: only admins and organisers see them (the routes' policy `Organiser`
    refuses the other roles before a use case is called; this keeps the use cases safe on their own)."""
    if not principal.sees_personal_data:
        raise Forbidden("forbidden", f"the {principal.role} role may not see notifications")


def _region_scope(principal: Principal) -> str | None:
    """The region a caller's list is limited to (`Principal.region_filter`; None: every region)."""
    _personal_data_guard(principal)
    if principal.region_filter == "":  # an organiser without a region: refused rather than shown nothing
        raise Forbidden("forbidden", "an organiser needs a region")
    return principal.region_filter


async def notification(
    uow: Uow[Repository], principal: Principal, notification_id: uuid.UUID
) -> domain.NotificationView:
    """One message; NotFound `unknown_notification` when it does not exist or belongs to a region the
    caller does not see (the same answer, so other regions' ids cannot be probed)."""
    _personal_data_guard(principal)
    async with uow.transaction() as tx:
        found = await tx.repo.get(notification_id)
    if found is None or not principal.sees(found.region):
        raise NotFound("unknown_notification", f"notification {notification_id} does not exist")
    return found


async def notifications(
    uow: Uow[Repository],
    principal: Principal,
    *,
    edition: str | None = None,
    signup_id: str | None = None,
    status: domain.Status | None = None,
    after: uuid.UUID | None = None,
    limit: int = 200,
) -> domain.NotificationPage:
    """Oldest first, `limit` at a time, only of the regions the caller sees (an organiser: their own, so
    an `edition` of another region gives an empty page); pass the page's `next_after` as `after` for
    the next one."""
    region = _region_scope(principal)
    async with uow.transaction() as tx:
        items = await tx.repo.search(
            region=region, edition=edition, signup_id=signup_id, status=status, after=after, limit=limit
        )
    return domain.page(items, limit)


# --- webhooks for portals (issue 11) ------------------------------------------------------------------
# Endpoints are a region's (`Principal.sees`); another region's endpoint is a 404 like an unknown one.
# Deliveries are recorded in the consumer's transaction (`webhook_event`); the delivery loop
# (webhooks.py) claims them and records each attempt (`claim_webhook_deliveries`, `webhook_attempted`).
from datetime import datetime  # noqa: E402

from schemas import Event  # noqa: E402

async def webhook_event(tx: Tx[Repository], event: Event, now: datetime) -> None:
    """A delivery per live endpoint of the event's region subscribed to its type (once per endpoint
    and event id). Only the types of `domain.WEBHOOK_EVENT_TYPES` are ever recorded."""
    if event.event_type in domain.WEBHOOK_EVENT_TYPES:
        await tx.repo.record_deliveries(event.region, event.event_id, event.event_type, event.model_dump_json(), now)


async def add_webhook(
    uow: Uow[Repository], principal: Principal, url: str, event_types: list[str], description: str,
    region: str | None, secret: str, now: datetime,
) -> domain.WebhookEndpoint:
    """Register an endpoint of the caller's region (an admin names it); `secret` is shown once."""
    _personal_data_guard(principal)
    domain.check_webhook(url, event_types)
    own = domain.webhook_region(principal.role, principal.region, region)
    if region and not principal.sees(region):
        raise Forbidden("forbidden_region", f"an organiser of {principal.region} registers webhooks of {principal.region} only", "region")
    made = domain.WebhookEndpoint(
        id=uuid.uuid4(), region=own, url=url, event_types=list(dict.fromkeys(event_types)), description=description,
        created_by=principal.subject or principal.role, created_at=now, secret=secret,
    )
    async with uow.transaction() as tx:
        await tx.repo.add_webhook(made)
    log.info("webhook endpoint registered", endpoint_id=str(made.id), region=own)
    return made


async def webhooks(uow: Uow[Repository], principal: Principal) -> list[domain.WebhookEndpoint]:
    region = _region_scope(principal)
    async with uow.transaction() as tx:
        return await tx.repo.webhooks(region)


async def _visible_webhook(tx: Tx[Repository], principal: Principal, endpoint_id: uuid.UUID) -> domain.WebhookEndpoint:
    _personal_data_guard(principal)
    found = await tx.repo.webhook(endpoint_id)
    if found is None or found.deleted_at is not None or not principal.sees(found.region):
        raise NotFound("unknown_webhook", f"webhook endpoint {endpoint_id} does not exist")
    return found


async def delete_webhook(uow: Uow[Repository], principal: Principal, endpoint_id: uuid.UUID, now: datetime) -> None:
    """Nothing more is delivered to it; its pending deliveries end as failed."""
    async with uow.transaction() as tx:
        await _visible_webhook(tx, principal, endpoint_id)
        await tx.repo.delete_webhook(endpoint_id, now)


async def webhook_deliveries(
    uow: Uow[Repository], principal: Principal, endpoint_id: uuid.UUID, limit: int = 100
) -> list[domain.WebhookDelivery]:
    async with uow.transaction() as tx:
        await _visible_webhook(tx, principal, endpoint_id)
        return await tx.repo.deliveries(endpoint_id, limit)


async def redeliver_webhook(
    uow: Uow[Repository], principal: Principal, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> domain.WebhookDelivery:
    """Send a delivery again (delivered or failed ones too): pending, due now, a fresh round of
    attempts, the same webhook-id. 404 `unknown_delivery`."""
    async with uow.transaction() as tx:
        await _visible_webhook(tx, principal, endpoint_id)
        if await tx.repo.delivery(endpoint_id, delivery_id) is None:
            raise NotFound("unknown_delivery", f"delivery {delivery_id} does not exist")
        await tx.repo.redeliver(delivery_id, now)
        found = await tx.repo.delivery(endpoint_id, delivery_id)
    assert found is not None
    return found


async def claim_webhook_deliveries(
    uow: Uow[Repository], now: datetime, lease_seconds: float, limit: int, busy: list[uuid.UUID],
    regions: tuple[str, ...] | None = None,
) -> list[domain.DueDelivery]:
    async with uow.transaction() as tx:
        return await tx.repo.claim_deliveries(now, lease_seconds, limit, busy, regions)


async def webhook_attempted(
    uow: Uow[Repository], due: domain.DueDelivery, outcome: domain.WebhookOutcome, policy: domain.WebhookPolicy,
    now: datetime,
) -> domain.WebhookDecision:
    """Log the attempt and decide what follows (`domain.after_webhook_attempt`), in one transaction."""
    decision = domain.after_webhook_attempt(outcome, due.tries + 1, policy)
    async with uow.transaction() as tx:
        await tx.repo.record_attempt(
            due.id, now, outcome.status_code, outcome.duration_ms, outcome.error, decision.status, decision.retry_in
        )
    return decision
