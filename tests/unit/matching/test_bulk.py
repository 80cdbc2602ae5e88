"""SignupSubmitted in bulk: `service.add_participants` with a consumer batch's sign-ups gives what
`add_participant` one at a time gives — the same participants kept, an id given twice kept once (the
first), the same editions marked for re-match — and the handler dispatches a batch in one call."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, dispatch
from estafette.runtime.settings import ServiceSettings
from schemas import SignupSubmitted
from schemas.topics import SIGNUPS
from services.matching import domain, handlers, service
from tests.unit.fakes import FakeRecord, FakeUnitOfWork

from .builders import RUN, T0, offer, participant
from .fakes import EDITION, FakeRepository, given

OTHER = "other-2027"  # an edition without a finished run: a sign-up there marks nothing


def two_editions(published: bool) -> FakeUnitOfWork[FakeRepository]:
    uow = given(offers=(offer("a"), offer("b")), published=published)
    uow.repo.editions[OTHER] = domain.Edition(OTHER, "twente")
    return uow


def pending(p: domain.Participant) -> domain.Participant:
    return dataclasses.replace(p, approval="pending")


BATCH = [
    (EDITION, participant("p1", ["a"])),
    (OTHER, participant("q1", ["b"], minutes=1)),
    (EDITION, participant("p1", ["b"], minutes=2)),  # redelivered within the batch: the first one stays
    (EDITION, participant("p2", ["b", "a"], minutes=3)),
    ("unknown-2027", participant("u1", ["a"])),  # an edition not received (yet): kept, marks nothing
]


async def one_by_one(uow: FakeUnitOfWork[FakeRepository], batch: list[tuple[str, domain.Participant]]) -> None:
    for edition_id, p in batch:
        async with uow.transaction() as tx:
            await service.add_participant(tx, edition_id, p)


async def at_once(uow: FakeUnitOfWork[FakeRepository], batch: list[tuple[str, domain.Participant]]) -> None:
    async with uow.transaction() as tx:
        await service.add_participants(tx, batch)


@pytest.mark.parametrize("published", [False, True])
async def test_a_batch_has_the_effect_of_its_signups_one_by_one(published: bool) -> None:
    alone, bulk = two_editions(published), two_editions(published)
    await one_by_one(alone, BATCH)
    await at_once(bulk, BATCH)
    assert bulk.repo.participants == alone.repo.participants
    assert bulk.repo.rematch_since.keys() == alone.repo.rematch_since.keys() == ({EDITION} if published else set())
    assert bulk.repo.participants["p1"][1].choices == ["a"]
    assert set(bulk.repo.participants) == {"p1", "p2", "q1", "u1"}


async def test_a_redelivered_batch_changes_nothing_and_marks_nothing() -> None:
    uow = two_editions(published=True)
    await at_once(uow, BATCH)
    before = copy.deepcopy(uow.repo.participants)
    uow.repo.rematch_since.clear()
    await at_once(uow, BATCH)
    assert uow.repo.participants == before and not uow.repo.rematch_since


async def test_a_batch_of_signups_waiting_for_approval_marks_nothing() -> None:
    uow = two_editions(published=True)
    await at_once(uow, [(EDITION, pending(participant("w1", ["a"]))), (EDITION, pending(participant("w2", ["b"])))])
    assert set(uow.repo.participants) == {"w1", "w2"} and not uow.repo.rematch_since
    await at_once(uow, [(EDITION, pending(participant("w3", ["a"]))), (EDITION, participant("p9", ["a"]))])
    assert EDITION in uow.repo.rematch_since  # one of the batch may be matched: the edition is marked once


async def test_the_published_run_is_what_marks() -> None:
    uow = two_editions(published=False)
    uow.repo.runs[RUN] = dataclasses.replace(uow.repo.runs.get(RUN) or domain.MatchRun(RUN, OTHER, "full", "done", "done", 1.0, T0),
                                             edition_id=OTHER)
    await at_once(uow, BATCH)
    assert set(uow.repo.rematch_since) == {OTHER}


class MatchingSettings(ServiceSettings):
    model_config = {"env_prefix": "UNIT_MATCHING_"}
    service_name: str = "matching"


def submitted(signup_id: str, edition: str = EDITION) -> SignupSubmitted:
    return SignupSubmitted(region="twente", edition=edition, signup_id=signup_id, org="org-x", language="nl",
                           choices=["a"], max_visits=1, signed_up_at=T0, correlation_id=uuid.uuid4())


async def test_the_handler_hands_a_consumer_batch_to_the_service_in_one_call() -> None:
    uow = two_editions(published=True)
    calls: list[list[str]] = []
    add = uow.repo.add_participants

    async def counted(signups: Sequence[tuple[str, domain.Participant]]) -> set[str]:
        calls.append([p.signup_id for _, p in signups])
        return await add(signups)

    uow.repo.add_participants = counted  # type: ignore[method-assign]
    consumer = BatchConsumer("matching.signups", dispatch({SignupSubmitted: handlers.signup_submitted}), uow,
                             MatchingSettings(), ConsumerMetrics(CollectorRegistry()))
    events = [submitted("s1"), submitted("s2", OTHER), submitted("s1"), submitted("s3")]
    await consumer.handle([FakeRecord(SIGNUPS.name_in("twente"), e.model_dump_json().encode(), offset=i)
                           for i, e in enumerate(events)])
    assert calls == [["s1", "s2", "s1", "s3"]]
    assert set(uow.repo.participants) == {"s1", "s2", "s3"} and set(uow.repo.rematch_since) == {EDITION}
