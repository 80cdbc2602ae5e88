"""Public sign-ups committed together (`service.submit_signups`, behind `SignupIntake`): a batch gives
every request the answer it would get alone, in order, in one transaction."""

from __future__ import annotations

import asyncio
import uuid

from estafette.runtime.errors import DomainError
from schemas import ParticipantRegistered, SignupSubmitted
from services.registration import service
from tests.unit.registration.builders import AFTER_DEADLINE, EDITION_ID, NOW, edition, offer, signup_request
from tests.unit.registration.fakes import FakeRegistrationUow, FakeRepository

CID = uuid.UUID("00000000-0000-4000-8000-000000000002")


def given() -> FakeRegistrationUow:
    return FakeRegistrationUow(FakeRepository(
        (edition(), edition(id="closed-1", status="closed")),
        (offer("o1"), offer("o2", status="cancelled"), offer("c1", edition_id="closed-1")),
    ))


def request(edition_id: str = EDITION_ID, now=NOW, **changes) -> service.SignupRequest:
    return service.SignupRequest(edition_id=edition_id, **signup_request(**changes), correlation_id=CID, now=now)


MIXED = [
    request(email="a@example.org"),
    request(email="b@example.org", choices=["o2"]),                # cancelled offer
    request("nope", email="c@example.org"),                         # unknown edition
    request(email="A@example.org"),                                 # the same address as the first
    request("closed-1", email="d@example.org", choices=["c1"]),     # closed edition
    request(email="e@example.org", now=AFTER_DEADLINE),             # too late
    request(email="f@example.org", language="de", choices=["o1"]),
]


def answer(result: object) -> str:
    return result.code if isinstance(result, DomainError) else f"signed up {result.email}"


async def test_a_batch_answers_each_request_as_it_would_be_answered_alone_in_order():
    batch_uow, alone_uow = given(), given()
    batch = await service.submit_signups(batch_uow, MIXED)
    alone = []
    for one in MIXED:
        alone.append(*(await service.submit_signups(alone_uow, [one])))
    assert [answer(r) for r in batch] == [answer(r) for r in alone] == [
        "signed up a@example.org", "offer_cancelled", "unknown_edition", "already_signed_up", "edition_closed",
        "deadline_passed", "signed up f@example.org",
    ]
    assert batch_uow.commits == 1 and alone_uow.commits == 2, "refused alone: rolled back"

    def stored(uow: FakeRegistrationUow) -> list[tuple]:
        return sorted((s.email, s.language, s.status) for s in uow.repo.signup_rows.values())

    def published(uow: FakeRegistrationUow) -> list[tuple]:
        return [(type(e).__name__, uow.repo.signup_rows[e.signup_id].email) for e in uow.published]

    assert stored(batch_uow) == stored(alone_uow) == [("a@example.org", "nl", "submitted"), ("f@example.org", "de", "submitted")]
    assert published(batch_uow) == published(alone_uow) == [
        ("SignupSubmitted", "a@example.org"), ("ParticipantRegistered", "a@example.org"),
        ("SignupSubmitted", "f@example.org"), ("ParticipantRegistered", "f@example.org"),
    ]
    ids = {r.id for r in batch if not isinstance(r, DomainError)}
    assert {e.signup_id for e in batch_uow.of_type(SignupSubmitted)} == ids == set(batch_uow.repo.signup_rows)
    assert {e.signup_id for e in batch_uow.of_type(ParticipantRegistered)} == ids


async def test_a_batch_of_refusals_only_commits_nothing():
    uow = given()
    results = await service.submit_signups(uow, [request("nope"), request(choices=["o2"])])
    assert [r.code for r in results] == ["unknown_edition", "offer_cancelled"]
    assert (uow.commits, uow.rollbacks, uow.published, uow.repo.signup_rows) == (0, 1, [], {})


async def test_the_intake_commits_concurrent_requests_together_and_answers_each():
    uow = given()
    intake = service.SignupIntake(uow)
    results = await asyncio.gather(
        *(intake.submit(request(email=f"p{i}@example.org")) for i in range(20)),
        intake.submit(request("nope")), return_exceptions=True,
    )
    assert [r.email for r in results[:20]] == [f"p{i}@example.org" for i in range(20)]
    assert isinstance(results[20], DomainError) and results[20].code == "unknown_edition"
    assert len(uow.repo.signup_rows) == 20
    assert max(intake.batch_sizes) > 1 and sum(intake.batch_sizes) == 21 and uow.commits < 21
