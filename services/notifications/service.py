"""Notification use cases: queue a message (inside the consumer's transaction), send one, read status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from estafette.runtime.http import NotFound
from estafette.runtime.uow import Transaction, UnitOfWork
from schemas import NotificationFailed, NotificationSent
from services.notifications import domain, repository as repo
from services.notifications.mail import build_message
from services.notifications.rendering import Renderer


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """What one send attempt led to (returned after its transaction committed)."""

    message: repo.Due
    number: int
    status: domain.Status
    failure: domain.Failure | None = None
    retry_in: float | None = None


async def record(tx: Transaction, notification: domain.NewNotification) -> None:
    """Queue a message as pending; no SMTP here. The sender is woken when the transaction commits."""
    if await repo.insert(tx.conn, notification):
        await repo.wake_sender(tx.conn)


async def send_next(
    uow: UnitOfWork, mailer: Mailer, renderer: Renderer, sender: str, policy: domain.RetryPolicy
) -> Attempt | None:
    """Send the oldest due message, if any, and record the result with its event, in one transaction.

    The row stays locked while the SMTP server answers, so no other sender takes it. If the process dies
    after the server accepted the message and before the commit, the message is sent again later: the
    one duplicate window (see README); the Message-ID is the same both times.
    """
    async with uow.transaction() as tx:
        due = await repo.claim_due(tx.conn)
        if due is None:
            return None
        number = due.attempts + 1
        try:
            rendered = renderer.render(due.kind, due.language, due.name, due.data)
            await mailer.send(build_message(due.id, sender, due.name, due.email, due.language, rendered))
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            return await _record_failure(tx, due, number, domain.classify(exc), policy)
        await repo.mark_sent(tx.conn, due.id)
        tx.publish(
            NotificationSent(
                region=due.region, edition=due.edition, correlation_id=due.correlation_id,
                notification_id=due.id, template=due.template, signup_id=due.signup_id,
            )
        )
        return Attempt(due, number, "sent")


async def _record_failure(
    tx: Transaction, due: repo.Due, number: int, failure: domain.Failure, policy: domain.RetryPolicy
) -> Attempt:
    outcome = domain.after_failure(failure, number, policy)
    if outcome.status == "pending":
        assert outcome.retry_in is not None
        await repo.mark_retry(tx.conn, due.id, failure.error, outcome.retry_in)
        return Attempt(due, number, "pending", failure, outcome.retry_in)
    await repo.mark_failed(tx.conn, due.id, failure.error)
    tx.publish(
        NotificationFailed(
            region=due.region, edition=due.edition, correlation_id=due.correlation_id, notification_id=due.id,
            template=due.template, signup_id=due.signup_id, permanent=failure.permanent, error=failure.error,
        )
    )
    return Attempt(due, number, "failed", failure)


async def pending_stats(uow: UnitOfWork) -> tuple[int, float]:
    async with uow.transaction() as tx:
        return await repo.pending_stats(tx.conn)


async def notification(uow: UnitOfWork, notification_id: uuid.UUID) -> dict[str, Any]:
    async with uow.transaction() as tx:
        found = await repo.get(tx.conn, notification_id)
    if found is None:
        raise NotFound("unknown_notification", f"notification {notification_id} does not exist")
    return found


async def notifications(
    uow: UnitOfWork,
    *,
    edition: str | None,
    signup_id: str | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    async with uow.transaction() as tx:
        return await repo.search(tx.conn, edition=edition, signup_id=signup_id, status=status, after=after, limit=limit)
