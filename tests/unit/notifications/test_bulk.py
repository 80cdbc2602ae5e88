"""MatchAssigned in bulk (issue 13): `service.matches_assigned` over a batch leaves exactly what
`service.match_assigned` leaves event by event, with a constant number of repository calls; and the
consumer hands notifications' consecutive MatchAssigned over in one call (`handlers.matches`)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from estafette.runtime.clock import Clock
from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, dispatch
from estafette.runtime.settings import ServiceSettings
from schemas import Event, MatchAssigned, NotificationFailed
from schemas.topics import MATCHES
from services.notifications import handlers, service
from tests.unit.fakes import FakeRecord, FakeUnitOfWork
from tests.unit.notifications import builders
from tests.unit.notifications.fakes import FakeRepository

OTHER_EDITION = "wvdu-2026-groningen"  # never opened here: its events are handled as the edition is unknown


class NotificationsSettings(ServiceSettings):
    model_config = {"env_prefix": "UNIT_NOTIFICATIONS_"}
    service_name: str = "notifications"


def mixed_batch() -> list[MatchAssigned]:
    return [
        builders.assigned_to("s-1", "o-1"),
        builders.assigned_to("s-2", "o-3"),  # a cancelled offer: nothing
        builders.assigned_to("s-3", "o-1"),  # a withdrawn sign-up: nothing
        builders.assigned_to("s-4", "o-2"),  # an erased contact: failed at once, NotificationFailed
        builders.assigned_to("s-1", "o-2"),  # the same sign-up again, another offer
        builders.assigned_to("s-6", "o-1"),  # no contact yet: awaiting it
        builders.assigned_to("s-5", "o-9"),  # an offer not seen yet: as the event describes it
        builders.assigned("s-7", edition=OTHER_EDITION),
        builders.assigned_to("s-1", "o-1"),  # the same sign-up and offer again (a new event)
    ]


def setup_events() -> list[Any]:
    """An edition with offers o-1, o-2 (no host contact) and o-3 (cancelled), sign-ups s-1..s-3 (s-3
    withdrawn), contacts of s-1..s-5 and s-7 (s-4's erased by `world`)."""
    return [
        builders.edition_opened(), builders.offer_published("o-1"),
        builders.offer_published("o-2", title="Webinar", host_contact=None), builders.offer_published("o-3"),
        builders.offer_cancelled("o-3"),
        *(builders.signup_submitted(s) for s in ("s-1", "s-2", "s-3")), builders.signup_withdrawn("s-3"),
        *(builders.participant(s, language="nl") for s in ("s-1", "s-2", "s-3", "s-4", "s-5")),
        builders.participant("s-7", language="en", edition=OTHER_EDITION),
    ]


async def world(clock: Clock, setup: list[Any]) -> tuple[FakeUnitOfWork[FakeRepository], service.Journey]:
    """A fresh fake database after `setup` (the same events in every world: the same ids)."""
    uow = FakeUnitOfWork(FakeRepository())
    journey = builders.journey(clock)
    handle = dispatch({
        **handlers.editions(journey), **handlers.offers(journey), **handlers.signups(journey), **handlers.PARTICIPANTS,
    })
    async with uow.transaction() as tx:
        for event in setup:
            await handle(tx, event)
        await handlers.participant_erased(tx, "s-4")
    return uow, journey


def state(uow: FakeUnitOfWork[FakeRepository]) -> dict[str, Any]:
    """What the database and the outbox hold afterwards (published events without their own ids)."""
    repo = uow.repo
    return {
        "messages": {i: (r.message, r.status, r.language, r.last_error) for i, r in repo.rows.items()},
        "visits": dict(repo.visit_rows),
        "steps": dict(repo.steps),
        "published": [e.model_dump(exclude={"event_id", "occurred_at"}) for e in uow.published],
    }


def reset_counters(repo: FakeRepository) -> None:
    repo.locks, repo.lock_calls, repo.insert_calls, repo.edition_locks, repo.wakes = [], [], [], [], 0


async def test_a_batch_leaves_what_its_events_leave_one_by_one_with_a_constant_number_of_calls() -> None:
    clock = Clock(fixed_now=builders.NOW)
    events, setup = mixed_batch(), setup_events()

    one_by_one, journey = await world(clock, setup)
    async with one_by_one.transaction() as tx:  # one consumer batch
        for event in events:
            await service.match_assigned(tx, event, journey)

    bulk, journey = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.matches_assigned(tx, events, journey)

    assert state(bulk) == state(one_by_one)
    # The outcome itself, so that the comparison cannot pass on two wrong results.
    rows = bulk.repo.rows
    by_event = {e.event_id: r for e in events for r in rows.values() if r.message.source_event_id == e.event_id}
    statuses = [by_event[e.event_id].status if e.event_id in by_event else None for e in events]
    assert statuses == ["pending", None, None, "failed", "pending", "awaiting_contact", "pending", "pending", "pending"]
    (failed,) = bulk.of_type(NotificationFailed)
    assert (failed.signup_id, failed.error.split(":")[0], failed.permanent) == ("s-4", "contact_erased", True)
    assert bulk.repo.visit_rows[("s-1", "o-1")].correlation_id == events[-1].correlation_id
    assert {k for k, v in bulk.repo.visit_rows.items()} == {("s-1", "o-1"), ("s-1", "o-2"), ("s-4", "o-2"),
                                                            ("s-6", "o-1"), ("s-5", "o-9"), ("s-7", "o-1")}
    # Editions locked once each, sorted; the participants in one call, sorted; one insert; one wake-up.
    assert bulk.repo.edition_locks == [OTHER_EDITION, builders.EDITION]
    assert bulk.repo.lock_calls == [["s-1", "s-4", "s-5", "s-6", "s-7"]]
    assert bulk.repo.insert_calls == [7] and bulk.repo.wakes == 1


async def test_one_event_is_a_batch_of_one() -> None:
    clock = Clock(fixed_now=builders.NOW)
    event, setup = builders.assigned_to("s-1", "o-1"), setup_events()
    single, journey = await world(clock, setup)
    async with single.transaction() as tx:
        await service.match_assigned(tx, event, journey)
    bulk, journey = await world(clock, setup)
    async with bulk.transaction() as tx:
        await service.matches_assigned(tx, [event], journey)
    assert state(single) == state(bulk)
    assert [r.message.kind for r in single.repo.rows.values()].count("assigned") == 1




async def test_the_consumer_hands_consecutive_match_assigned_to_the_bulk_use_case_in_one_call() -> None:
    """Wired as in main.py's matches subscription (without the webhook tap): a run of MatchAssigned is
    one `matches_assigned` call (one insert), a MatchWaitlisted between two runs splits them."""
    clock = Clock(fixed_now=builders.NOW)
    uow, journey = await world(clock, setup_events())
    reset_counters(uow.repo)
    handle = dispatch(handlers.matches(builders.answer_links(), journey))
    consumer = BatchConsumer("notifications.matches", handle, uow, NotificationsSettings(),
                             ConsumerMetrics(CollectorRegistry()))
    topic = MATCHES.name_in("twente")
    events: list[Event] = [builders.assigned_to("s-1", "o-1"), builders.assigned_to("s-5", "o-2"),
                           builders.waitlisted("s-2"), builders.assigned_to("s-6", "o-1")]
    await consumer.handle([FakeRecord(topic, e.model_dump_json().encode(), offset=i) for i, e in enumerate(events)])

    assert uow.commits == 2  # the setup and the batch
    assert uow.repo.insert_calls == [2, 1, 1]  # [s-1, s-5], then the waitlisted one, then [s-6]
    told = [r.message for r in uow.repo.rows.values() if r.message.kind in ("assigned", "waitlisted")]
    assert [(m.kind, m.signup_id) for m in told] == [
        ("assigned", "s-1"), ("assigned", "s-5"), ("waitlisted", "s-2"), ("assigned", "s-6")]
