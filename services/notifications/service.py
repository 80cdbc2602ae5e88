"""Notification use cases, the service's only door: record the message an event asks for and keep or
erase participants' contact details (inside the consumer's transaction), send the next due message,
read statuses."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import structlog

from estafette.runtime.access import Principal
from estafette.runtime.errors import Forbidden, NotFound
from estafette.runtime.uow import Tx, Uow
from schemas import NotificationFailed, NotificationRequested, NotificationSent, ParticipantRegistered, SeatOffered
from services.notifications import domain
from services.notifications.mail import build_message, classify
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
    contact, erased = None, False
    if notification.for_participant:
        assert notification.signup_id is not None
        await tx.repo.lock_participant(notification.signup_id)
        contact = await tx.repo.contact(notification.signup_id)
        erased = contact is None and await tx.repo.erased(notification.signup_id)
    start = domain.addressing(notification, contact, erased)
    if not await tx.repo.insert(notification, start.status, start.language, start.error):
        return
    if start.status == "pending":
        await tx.repo.wake_sender()
    elif start.status == "failed":
        assert start.error is not None
        tx.publish(_failed_event(_ended(notification), permanent=True, error=start.error))


async def match_decided(tx: Tx[Repository], event: domain.MatchEvent) -> None:
    """MatchAssigned, MatchWaitlisted or MatchUnmatched: tell the participant."""
    await record(tx, domain.from_match(event))


async def seat_offered(tx: Tx[Repository], event: SeatOffered, answer_link: domain.AnswerLink) -> None:
    """Offer the freed seat, with the signed links (`answer_link`) to accept or decline it."""
    await record(tx, domain.from_seat_offer(event, answer_link))


async def notification_requested(tx: Tx[Repository], event: NotificationRequested) -> None:
    await record(tx, domain.from_request(event))


# --- participants' contact details: inside the consumer's transaction -----------------------------------
async def participant_registered(tx: Tx[Repository], event: ParticipantRegistered) -> None:
    """Keep the participant's contact details (the latest ones count) and queue their messages that
    awaited them."""
    contact = domain.contact_from(event)
    await tx.repo.lock_participant(contact.signup_id)
    await tx.repo.save_contact(contact)
    if await tx.repo.release_awaiting(contact.signup_id, contact.language):
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
    try:
        rendered = renderer.render(due.kind, due.language, due.name, due.data)
        await mailer.send(build_message(due.id, sender, due.name, due.email, due.language, rendered))
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
