"""Reporting in bulk (issue 13): a consumer batch's runs of SignupSubmitted, NotificationSent and
NotificationFailed reach the service in one call each (`many`), and leave exactly what the same events
leave one by one — a sign-up submitted twice, an answer or a withdrawal already known, outcomes out of
order, the same notification twice, an edition first named by the batch."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client import CollectorRegistry

from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, dispatch
from estafette.runtime.settings import ServiceSettings
from schemas import Event, topic_for
from services.reporting.handlers import SUBSCRIPTIONS
from tests.unit.fakes import FakeRecord, FakeUnitOfWork
from tests.unit.reporting import builders as b
from tests.unit.reporting.fakes import FakeRepository, handle

N1, N2, N3 = (uuid.UUID(int=i) for i in (11, 12, 13))


class ReportingSettings(ServiceSettings):
    model_config = {"env_prefix": "UNIT_REPORTING_"}
    service_name: str = "reporting"


SETUP: list[Event] = [b.opened(), b.withdrawn("s-2"), b.refused("s-3"), b.sent(N3, minutes=9, n=1)]
SIGNUPS: list[Event] = [
    b.signup("s-1", minutes=1), b.signup("s-2", minutes=1), b.signup("s-3", approval="pending"),
    b.signup("s-1", org="org-b", minutes=2), b.signup("s-4", approval="pending"),
]
OUTCOMES: list[Event] = [
    b.failed(N1, minutes=1, n=2), b.sent(N2, minutes=3, n=3), b.sent(N1, minutes=2, n=4), b.sent(N1, minutes=0, n=5),
    b.sent(N3, minutes=5, n=6),
]


def state(repo: FakeRepository) -> dict[str, Any]:
    return {"signups": dict(repo.signups), "notifications": dict(repo.notifications), "editions": dict(repo.editions)}


async def consume(uow: FakeUnitOfWork[FakeRepository], events: list[Event]) -> None:
    """One consumer batch per topic, as the runtime hands them over."""
    for topic in {topic_for(e) for e in events}:
        name, table = SUBSCRIPTIONS[topic]
        consumer = BatchConsumer(f"reporting.{name}", dispatch(table), uow, ReportingSettings(),
                                 ConsumerMetrics(CollectorRegistry()))
        mine = [e for e in events if topic_for(e) == topic]
        await consumer.handle([FakeRecord(topic.name_in(b.REGION), e.model_dump_json().encode(), offset=i)
                               for i, e in enumerate(mine)])


async def test_a_batch_leaves_what_the_events_leave_one_by_one():
    one_by_one, batched = FakeUnitOfWork(FakeRepository()), FakeUnitOfWork(FakeRepository())
    await handle(one_by_one, *SETUP, *SIGNUPS, *OUTCOMES)
    await handle(batched, *SETUP)
    await consume(batched, SIGNUPS + OUTCOMES)
    assert state(batched.repo) == state(one_by_one.repo)
    signups, outcomes = batched.repo.signups, batched.repo.notifications
    assert (signups["s-1"].org, signups["s-2"].withdrawn, signups["s-3"].approval, signups["s-4"].approval) == (
        "org-b", True, "refused", "pending")
    assert {n: (o.status, o.version) for n, o in outcomes.items()} == {
        N1: ("sent", b.version(2, 4)), N2: ("sent", b.version(3, 3)), N3: ("sent", b.version(9, 1))}
    assert batched.commits == len(SETUP) + 2, "one transaction per topic's batch"


async def test_an_edition_first_named_by_a_batch_is_known_once():
    uow = FakeUnitOfWork(FakeRepository())
    await consume(uow, [b.signup("s-1"), b.signup("s-2")])
    assert list(uow.repo.editions) == [b.EDITION] and set(uow.repo.signups) == {"s-1", "s-2"}
