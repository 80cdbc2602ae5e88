"""Sending in batches (issue 13): claim under a lease, send with bounded concurrency outside any
transaction, record outcomes in batches — against a fake unit of work (no database, no SMTP)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from email.message import EmailMessage

import pytest
from aiosmtplib import SMTPRecipientRefused, SMTPRecipientsRefused
from prometheus_client import CollectorRegistry

from schemas import NotificationFailed, NotificationSent
from services.notifications import domain, service
from services.notifications.config import NotificationsSettings
from services.notifications.domain import Claimed, Due, Recording
from services.notifications.rendering import Renderer
from services.notifications.sender import Sender, SenderMetrics
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.notifications import builders
from tests.unit.notifications.fakes import FakeMailer, FakeRepository
from tests.unit.notifications.test_service import record, register

SENDER = "Estafette <no-reply@estafette.example>"
POLICY = domain.RetryPolicy(max_attempts=3, base_seconds=60, max_seconds=3600)
LEASE = 120.0
BOUNCE = SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 <anna@example.org>: mailbox unavailable", "anna@example.org")])
SOFT = SMTPRecipientsRefused([SMTPRecipientRefused(451, "4.3.0 try again later", "anna@example.org")])


class LeasingRepository(FakeRepository):
    """The fake repository plus the claim/record/release of issue 13 (leases kept beside the rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: dict[uuid.UUID, uuid.UUID] = {}

    async def claim_batch(
        self, lease: uuid.UUID, limit: int, lease_seconds: float, regions: tuple[str, ...] | None = None
    ) -> list[Claimed]:
        due = sorted(
            (r for r in self.rows.values()
             if r.status in ("pending", "sending") and r.next_attempt_at <= self.now
             and (regions is None or r.message.region in regions)),
            key=lambda r: (r.next_attempt_at, r.created_at),
        )[:limit]
        claimed = []
        for row in due:
            row.status, row.next_attempt_at = "sending", self.now + timedelta(seconds=lease_seconds)
            self.leases[row.message.id] = lease
            m = row.message
            contact = self.contacts.get(m.signup_id) if m.signup_id else None
            name, email, language = (contact.name, contact.email, contact.language) if contact else (m.name, m.email, row.language)
            erased = m.signup_id is not None and contact is None and m.email is None and m.signup_id in self.erased_ids
            fields = {**vars(m), "name": name, "email": email, "language": language}
            claimed.append(Claimed(Due(**fields, attempts=row.attempts), erased))
        return claimed

    async def record_outcomes(self, recordings: list[Recording]) -> set[uuid.UUID]:
        done = set()
        for rec in recordings:
            row = self.rows[rec.id]
            if row.status != "sending" or self.leases.get(rec.id) != rec.lease:
                continue
            row.status, row.attempts = rec.status, row.attempts + 1
            row.language = rec.language or row.language
            row.last_error = rec.error or row.last_error
            if rec.status == "sent":
                row.sent_at = self.now
            elif rec.status == "failed":
                row.failed_at = self.now
            else:
                assert rec.retry_in is not None
                row.next_attempt_at = self.now + timedelta(seconds=rec.retry_in)
            self.leases.pop(rec.id)
            done.add(rec.id)
        return done

    async def release(self, lease: uuid.UUID, ids: list[uuid.UUID]) -> int:
        released = 0
        for notification_id in ids:
            row = self.rows[notification_id]
            if row.status == "sending" and self.leases.get(notification_id) == lease:
                row.status, row.next_attempt_at = "pending", self.now
                self.leases.pop(notification_id)
                released += 1
        return released


@pytest.fixture
def uow() -> FakeUnitOfWork[LeasingRepository]:
    return FakeUnitOfWork(LeasingRepository())


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


async def queued(uow: FakeUnitOfWork[LeasingRepository], count: int) -> list[str]:
    signup_ids = [f"s-{i}" for i in range(count)]
    await register(uow, *signup_ids)  # type: ignore[arg-type]
    await record(uow, *(builders.assigned(s) for s in signup_ids))  # type: ignore[arg-type]
    return signup_ids


async def send_all(
    uow: FakeUnitOfWork[LeasingRepository], claim: service.Claim, mailer: FakeMailer, renderer: Renderer
) -> list[service.Attempt]:
    outcomes = [
        domain.Outcome(due, claim.lease, await service.send_claimed(due, mailer, renderer, SENDER))
        for due in claim.messages
    ]
    return await service.record_outcomes(uow, outcomes, POLICY)  # type: ignore[arg-type]


# --- claim ------------------------------------------------------------------------------------------
async def test_a_claim_takes_a_batch_under_a_lease_that_no_other_claim_takes(uow: FakeUnitOfWork[LeasingRepository]) -> None:
    await queued(uow, 5)

    first = await service.claim(uow, 3, LEASE, POLICY)  # type: ignore[arg-type]
    second = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    assert len(first.messages) == 3 and len(second.messages) == 2
    assert not {m.id for m in first.messages} & {m.id for m in second.messages}
    assert {r.status for r in uow.repo.rows.values()} == {"sending"}
    assert (await service.claim(uow, 10, LEASE, POLICY)).messages == []  # type: ignore[arg-type]


async def test_messages_of_a_dead_sender_are_claimed_again_after_the_lease(uow: FakeUnitOfWork[LeasingRepository]) -> None:
    await queued(uow, 2)
    dead = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    uow.repo.later(LEASE - 1)
    assert (await service.claim(uow, 10, LEASE, POLICY)).messages == []  # type: ignore[arg-type]
    uow.repo.later(2)
    again = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    assert sorted(m.id for m in again.messages) == sorted(m.id for m in dead.messages)
    assert again.lease != dead.lease


async def test_a_message_whose_contact_was_erased_fails_at_claim_time_and_is_never_sent(
    uow: FakeUnitOfWork[LeasingRepository], renderer: Renderer
) -> None:
    await queued(uow, 2)
    await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]  # the sender dies holding both
    async with uow.transaction() as tx:
        await service.participant_erased(tx, "s-0")  # type: ignore[arg-type]
    uow.repo.later(LEASE + 1)

    claim = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    assert [m.signup_id for m in claim.messages] == ["s-1"]
    assert [(a.message.signup_id, a.status) for a in claim.ended] == [("s-0", "failed")]
    failed = uow.of_type(NotificationFailed)
    assert [(e.signup_id, e.permanent, e.error) for e in failed] == [("s-0", True, domain.CONTACT_ERASED)]
    assert "anna" not in str(failed[0].model_dump()).lower()


# --- record -----------------------------------------------------------------------------------------
async def test_outcomes_are_recorded_in_one_transaction_with_their_events(
    uow: FakeUnitOfWork[LeasingRepository], renderer: Renderer
) -> None:
    await queued(uow, 3)
    claim = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]
    commits = uow.commits

    attempts = await send_all(uow, claim, FakeMailer(BOUNCE, SOFT), renderer)

    assert uow.commits == commits + 1
    assert sorted(a.status for a in attempts) == ["failed", "pending", "sent"]
    statuses = {r.message.signup_id: r.status for r in uow.repo.rows.values()}
    assert sorted(statuses.values()) == ["failed", "pending", "sent"]
    assert len(uow.of_type(NotificationSent)) == 1
    assert [e.permanent for e in uow.of_type(NotificationFailed)] == [True]
    retried = next(r for r in uow.repo.rows.values() if r.status == "pending")
    assert retried.attempts == 1 and retried.next_attempt_at == uow.repo.now + timedelta(seconds=60)


async def test_an_outcome_under_a_lease_that_ran_out_is_left_to_the_new_holder(
    uow: FakeUnitOfWork[LeasingRepository], renderer: Renderer
) -> None:
    await queued(uow, 1)
    slow = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]
    uow.repo.later(LEASE + 1)
    taker = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    assert await send_all(uow, slow, FakeMailer(), renderer) == []
    assert uow.of_type(NotificationSent) == []
    [attempt] = await send_all(uow, taker, FakeMailer(), renderer)
    assert attempt.status == "sent" and len(uow.of_type(NotificationSent)) == 1


async def test_the_message_id_is_the_same_at_every_attempt(uow: FakeUnitOfWork[LeasingRepository], renderer: Renderer) -> None:
    await queued(uow, 1)
    mailer = FakeMailer(SOFT)
    await send_all(uow, await service.claim(uow, 10, LEASE, POLICY), mailer, renderer)  # type: ignore[arg-type]
    uow.repo.later(61)
    first_try = FakeMailer()
    await send_all(uow, await service.claim(uow, 10, LEASE, POLICY), first_try, renderer)  # type: ignore[arg-type]
    uow.repo.later(LEASE + 1)  # as if that outcome had been lost: sent again under a new lease
    row = next(iter(uow.repo.rows.values()))
    row.status = "pending"
    again = FakeMailer()
    await send_all(uow, await service.claim(uow, 10, LEASE, POLICY), again, renderer)  # type: ignore[arg-type]

    [one], [two] = first_try.sent, again.sent
    assert one["Message-ID"] == two["Message-ID"] == domain.message_id(row.message.id, SENDER)


async def test_release_hands_back_unsent_messages_due_at_once(uow: FakeUnitOfWork[LeasingRepository]) -> None:
    await queued(uow, 2)
    claim = await service.claim(uow, 10, LEASE, POLICY)  # type: ignore[arg-type]

    assert await service.release(uow, claim.lease, [m.id for m in claim.messages]) == 2  # type: ignore[arg-type]
    assert len((await service.claim(uow, 10, LEASE, POLICY)).messages) == 2  # type: ignore[arg-type]


# --- the sender: bounded concurrency, every message once ---------------------------------------------
class GatedMailer(FakeMailer):
    """Holds every send until released; counts how many are in the server's hands at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.most = 0
        self.gate = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.gate.wait()
            await asyncio.sleep(0)
            self.sent.append(message)
        finally:
            self.now -= 1

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("concurrency", [1, 4, 10])
async def test_the_sender_sends_each_message_once_with_at_most_smtp_concurrency_unrecorded(
    uow: FakeUnitOfWork[LeasingRepository], concurrency: int
) -> None:
    await queued(uow, 37)
    settings = NotificationsSettings(smtp_concurrency=concurrency, send_batch_size=16, max_attempts=3)
    sender = Sender(uow, settings, SenderMetrics(CollectorRegistry()), Renderer())  # type: ignore[arg-type]
    mailer = GatedMailer()
    sender._pool = mailer  # type: ignore[assignment]
    stopping = asyncio.Event()
    recorder = asyncio.create_task(sender._record_loop(stopping))
    most_unrecorded = 0

    async def dispatch_all() -> None:
        while claimed := (await sender._claim()):
            if not claimed.messages:
                return
            await sender._dispatch(claimed, stopping)

    async def watch() -> None:
        nonlocal most_unrecorded
        while True:
            most_unrecorded = max(most_unrecorded, sender._unrecorded)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    dispatching = asyncio.create_task(dispatch_all())
    await asyncio.sleep(0.01)
    assert mailer.now == concurrency  # all slots busy, the rest waits
    mailer.gate.set()
    await asyncio.wait_for(dispatching, 5)
    while sender._unrecorded:
        await asyncio.sleep(0.001)
    watcher.cancel()
    recorder.cancel()

    assert mailer.most == concurrency and most_unrecorded <= concurrency
    assert sorted(m["Message-ID"] for m in mailer.sent) == sorted(
        domain.message_id(i, SENDER.replace("example", "local")) for i in uow.repo.rows
    )
    assert {r.status for r in uow.repo.rows.values()} == {"sent"}
    assert len(uow.of_type(NotificationSent)) == 37
    assert uow.commits < 37 + 10  # outcomes recorded in batches, not one transaction per message


def test_smtp_concurrency_is_at_most_ten() -> None:
    assert NotificationsSettings().smtp_concurrency == 8
    with pytest.raises(ValueError):
        NotificationsSettings(smtp_concurrency=11)
