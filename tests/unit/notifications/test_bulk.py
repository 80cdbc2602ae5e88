"""MatchAssigned, SignupSubmitted and ParticipantRegistered in bulk (issue 13): `service.matches_assigned`,
`signups_submitted` and `participants_registered` over a batch leave exactly what their per-event forms
leave event by event, with a constant number of repository calls; an event twice in one list, or a list
handled again, has its effect once; and the consumer hands notifications' consecutive events of those
types over in one call (`handlers.matches`, `signups`, `PARTICIPANTS`), also behind the webhook tap."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from estafette.runtime.clock import Clock
from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, dispatch
from estafette.runtime.settings import ServiceSettings
from schemas import EditionCancelled, Event, MatchAssigned, NotificationFailed, SignupSubmitted
from schemas.topics import MATCHES, PARTICIPANTS, SIGNUPS
from services.notifications import handlers, service, webhooks
from tests.unit.fakes import FakeRecord, FakeUnitOfWork
from tests.unit.notifications import builders
from tests.unit.notifications.fakes import FakeRepository

OTHER_EDITION = "wvdu-2026-groningen"  # never opened here: its events are handled as the edition is unknown
CANCELLED_EDITION = "wvdu-2026-achterhoek"  # opened, then cancelled (`cancelled_edition`)


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
    repo.calls, repo.deliveries = [], []


def consumer(name: str, table: dict[type[Event], Any], uow: FakeUnitOfWork[FakeRepository]) -> BatchConsumer:
    return BatchConsumer(name, dispatch(table), uow, NotificationsSettings(), ConsumerMetrics(CollectorRegistry()))


def records(topic: str, events: list[Event]) -> list[FakeRecord]:
    return [FakeRecord(topic, e.model_dump_json().encode(), offset=i) for i, e in enumerate(events)]


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


# --- SignupSubmitted and ParticipantRegistered in bulk ------------------------------------------------
def signups_batch() -> list[SignupSubmitted]:
    return [
        builders.signup_submitted("s-1", choices=("o-1", "o-2")),
        builders.signup_submitted("s-4", choices=("o-1",)),  # an erased contact: failed at once
        builders.signup_submitted("s-6", choices=("o-9", "o-1")),  # no contact yet; an offer not seen: left out
        builders.signup_submitted("s-1", choices=("o-2",), org="provincie"),  # again: the last details count
        builders.signup_submitted("s-7", edition=OTHER_EDITION),  # an edition not seen: still confirmed
    ]


def signups_state(uow: FakeUnitOfWork[FakeRepository]) -> dict[str, Any]:
    return state(uow) | {"signups": dict(uow.repo.signups), "contacts": dict(uow.repo.contacts),
                         "erased": set(uow.repo.erased_ids)}


async def test_a_batch_of_signups_leaves_what_they_leave_one_by_one() -> None:
    clock = Clock(fixed_now=builders.NOW)
    events, setup = signups_batch(), setup_events()
    one_by_one, journey = await world(clock, setup)
    async with one_by_one.transaction() as tx:
        for event in events:
            await service.signup_submitted(tx, event, journey)
    bulk, journey = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.signups_submitted(tx, events, journey)

    assert signups_state(bulk) == signups_state(one_by_one)
    confirmed = {r.message.source_event_id: r for r in bulk.repo.rows.values() if r.message.kind == "signup_confirmed"}
    assert [confirmed[e.event_id].status for e in events] == ["pending", "failed", "awaiting_contact", "pending", "pending"]
    assert (bulk.repo.signups["s-1"].org, bulk.repo.signups["s-1"].choices) == ("provincie", ("o-2",))
    assert bulk.repo.edition_locks == [OTHER_EDITION, builders.EDITION]
    assert bulk.repo.lock_calls == [["s-1", "s-4", "s-6", "s-7"]]
    assert bulk.repo.insert_calls == [5] and bulk.repo.wakes == 1
    # The sign-ups kept with one statement, their offers read with one (none one by one).
    assert bulk.repo.calls == ["save_signups", "offers_by_id"]


async def test_a_redelivered_batch_of_signups_records_nothing_twice() -> None:
    uow, journey = await world(Clock(fixed_now=builders.NOW), setup_events())
    events = signups_batch()
    async with uow.transaction() as tx:
        await service.signups_submitted(tx, events, journey)
    before = signups_state(uow)
    assert {r.message.source_event_id for r in uow.repo.rows.values()} >= {e.event_id for e in events}
    async with uow.transaction() as tx:
        await service.signups_submitted(tx, events + events, journey)
    assert signups_state(uow) == before
    assert len(uow.of_type(NotificationFailed)) == 1  # s-4's, once


async def test_an_event_twice_in_one_list_has_its_effect_once() -> None:
    """The same events twice in one call (past the inbox, e.g. a replay) leave what they leave once."""
    clock = Clock(fixed_now=builders.NOW)
    events, setup = signups_batch(), setup_events()
    once, journey = await world(clock, setup)
    async with once.transaction() as tx:
        for event in events:
            await service.signup_submitted(tx, event, journey)
    bulk, journey = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.signups_submitted(tx, [*events, *events], journey)

    assert signups_state(bulk) == signups_state(once)
    confirmed = [r.message.source_event_id for r in bulk.repo.rows.values() if r.message.kind == "signup_confirmed"]
    assert sorted(i for i in confirmed if i in {e.event_id for e in events}) == sorted(e.event_id for e in events)
    (failed,) = bulk.of_type(NotificationFailed)  # the erased s-4 told once, not twice
    assert failed.signup_id == "s-4"
    assert bulk.repo.insert_calls == [10] and bulk.repo.calls == ["save_signups", "offers_by_id"]


def cancelled_edition() -> list[Event]:
    return [builders.edition_opened(CANCELLED_EDITION),
            EditionCancelled(region="twente", edition=CANCELLED_EDITION, reason="Corona")]


async def test_a_signup_of_a_cancelled_edition_is_kept_unconfirmed_in_bulk_as_one_by_one() -> None:
    clock = Clock(fixed_now=builders.NOW)
    setup = [*setup_events(), *cancelled_edition()]
    events = [builders.signup_submitted("s-6"), builders.signup_submitted("s-8", edition=CANCELLED_EDITION),
              builders.signup_submitted("s-9", choices=("o-2", "o-1"))]
    one_by_one, journey = await world(clock, setup)
    async with one_by_one.transaction() as tx:
        for event in events:
            await service.signup_submitted(tx, event, journey)
    bulk, journey = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.signups_submitted(tx, events, journey)

    assert signups_state(bulk) == signups_state(one_by_one)
    ids = {e.event_id for e in events}
    confirmed = {r.message.signup_id: r.message for r in bulk.repo.rows.values() if r.message.source_event_id in ids}
    assert set(confirmed) == {"s-6", "s-9"}  # s-8's edition was cancelled: kept, not confirmed
    assert bulk.repo.signups["s-8"].edition == CANCELLED_EDITION
    # Each confirmation lists its own choices, in its order (offers read once for the batch).
    assert [c["offer_id"] for c in confirmed["s-9"].data["choices"]] == ["o-2", "o-1"]
    assert [c["offer_id"] for c in confirmed["s-6"].data["choices"]] == ["o-1"]
    assert bulk.repo.edition_locks == [CANCELLED_EDITION, builders.EDITION]
    assert bulk.repo.lock_calls == [["s-6", "s-9"]] and bulk.repo.insert_calls == [2]


async def test_a_batch_of_contacts_releases_what_awaited_them_in_the_latest_language() -> None:
    clock = Clock(fixed_now=builders.NOW)
    setup = [*setup_events(), builders.signup_submitted("s-6"), builders.signup_submitted("s-8")]
    contacts = [builders.participant("s-6", language="de"), builders.participant("s-4", language="nl"),
                builders.participant("s-8", language="nl")]
    one_by_one, _ = await world(clock, setup)
    async with one_by_one.transaction() as tx:
        for event in contacts:
            await service.participant_registered(tx, event)
    bulk, _ = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.participants_registered(tx, contacts)
    assert signups_state(bulk) == signups_state(one_by_one)
    awaited = {r.message.signup_id: (r.status, r.language) for r in bulk.repo.rows.values()
               if r.message.signup_id in ("s-6", "s-8")}
    assert awaited == {"s-6": ("pending", "de"), "s-8": ("pending", "nl")}
    assert "s-4" not in bulk.repo.erased_ids  # registered again after the erasure
    assert bulk.repo.lock_calls == [["s-4", "s-6", "s-8"]] and bulk.repo.wakes == 1

    # The same sign-up twice in one batch: the last contact counts, also for what it releases.
    twice, _ = await world(clock, setup)
    async with twice.transaction() as tx:
        await service.participants_registered(tx, [builders.participant("s-6", language="de"),
                                                   builders.participant("s-6", language="en", name="Anne")])
    (row,) = [r for r in twice.repo.rows.values() if r.message.signup_id == "s-6"]
    assert (row.status, row.language, twice.repo.contacts["s-6"].name) == ("pending", "en", "Anne")


async def test_a_contact_twice_in_one_list_and_a_redelivered_list_have_their_effect_once() -> None:
    clock = Clock(fixed_now=builders.NOW)
    setup = [*setup_events(), builders.signup_submitted("s-6"), builders.signup_submitted("s-8")]
    contacts = [builders.participant("s-6", language="de"), builders.participant("s-8", language="en")]
    once, _ = await world(clock, setup)
    async with once.transaction() as tx:
        for event in contacts:
            await service.participant_registered(tx, event)
    bulk, _ = await world(clock, setup)
    reset_counters(bulk.repo)
    async with bulk.transaction() as tx:
        await service.participants_registered(tx, [*contacts, *contacts])
    assert signups_state(bulk) == signups_state(once)
    # One upsert of one contact per sign-up (the fake refuses two of one sign-up, as Postgres does),
    # one UPDATE releasing what awaited them, one wake-up.
    assert bulk.repo.calls == ["save_contacts", "release_awaiting_all"]
    assert bulk.repo.lock_calls == [["s-6", "s-8"]] and bulk.repo.wakes == 1
    released = {r.message.signup_id: (r.status, r.language) for r in bulk.repo.rows.values()
                if r.message.signup_id in ("s-6", "s-8")}
    assert released == {"s-6": ("pending", "de"), "s-8": ("pending", "en")}

    before = signups_state(bulk)
    async with bulk.transaction() as tx:  # redelivered: nothing awaits any more, nobody is woken
        await service.participants_registered(tx, contacts)
    assert signups_state(bulk) == before and bulk.repo.wakes == 1


async def test_the_consumer_hands_runs_of_signups_and_contacts_to_the_bulk_use_cases() -> None:
    clock = Clock(fixed_now=builders.NOW)
    uow, journey = await world(clock, setup_events())
    reset_counters(uow.repo)
    signups = BatchConsumer("notifications.signups", dispatch(handlers.signups(journey)), uow, NotificationsSettings(),
                            ConsumerMetrics(CollectorRegistry()))
    events: list[Event] = [builders.signup_submitted("s-6"), builders.signup_submitted("s-8"),
                           builders.signup_withdrawn("s-2"), builders.signup_submitted("s-9")]
    topic = SIGNUPS.name_in("twente")
    await signups.handle([FakeRecord(topic, e.model_dump_json().encode(), offset=i) for i, e in enumerate(events)])
    assert uow.repo.insert_calls[0] == 2 and uow.repo.insert_calls[-1] == 1  # [s-6, s-8], ..., [s-9]
    assert uow.repo.lock_calls[0] == ["s-6", "s-8"] and uow.repo.lock_calls[-1] == ["s-9"]

    reset_counters(uow.repo)
    participants = BatchConsumer("notifications.participants", dispatch(handlers.PARTICIPANTS), uow,
                                 NotificationsSettings(), ConsumerMetrics(CollectorRegistry()))
    contacts = [builders.participant(s) for s in ("s-9", "s-6", "s-8")]
    topic = PARTICIPANTS.name_in("twente")
    await participants.handle([FakeRecord(topic, e.model_dump_json().encode(), offset=i) for i, e in enumerate(contacts)])
    assert uow.repo.lock_calls == [["s-6", "s-8", "s-9"]] and uow.repo.wakes == 1
    assert all(r.status == "pending" for r in uow.repo.rows.values() if r.message.signup_id in ("s-6", "s-8", "s-9"))


async def test_behind_the_webhook_tap_runs_still_reach_the_bulk_use_cases_in_one_call() -> None:
    """Wired as main.py subscribes the signups and matches topics (`webhooks.tap` around the handlers):
    the tap records each event's webhook delivery, in offset order, and a run of SignupSubmitted (or
    MatchAssigned) still reaches its bulk use case in one call."""
    clock = Clock(fixed_now=builders.NOW)
    uow, journey = await world(clock, setup_events())
    reset_counters(uow.repo)
    signups = consumer("notifications.signups", webhooks.tap(SIGNUPS, handlers.signups(journey), clock), uow)
    events: list[Event] = [builders.signup_submitted("s-6"), builders.signup_submitted("s-8"),
                           builders.signup_withdrawn("s-2"), builders.signup_submitted("s-9")]
    await signups.handle(records(SIGNUPS.name_in("twente"), events))
    assert [d[1:] for d in uow.repo.deliveries] == [(e.event_id, e.event_type) for e in events]
    assert [c for c in uow.repo.calls if c.startswith("save_signup")] == ["save_signups", "save_signups"]
    assert uow.repo.insert_calls[0] == 2 and uow.repo.insert_calls[-1] == 1  # [s-6, s-8], ..., [s-9]
    confirmed = {r.message.signup_id for r in uow.repo.rows.values()
                 if r.message.source_event_id in {e.event_id for e in events}}
    assert confirmed == {"s-6", "s-8", "s-9"}

    reset_counters(uow.repo)
    matches = consumer("notifications.matches",
                       webhooks.tap(MATCHES, handlers.matches(builders.answer_links(), journey), clock), uow)
    assigned: list[Event] = [builders.assigned_to("s-1", "o-1"), builders.assigned_to("s-5", "o-2"),
                             builders.waitlisted("s-5"), builders.assigned_to("s-6", "o-1")]
    await matches.handle(records(MATCHES.name_in("twente"), assigned))
    assert [d[1:] for d in uow.repo.deliveries] == [(e.event_id, e.event_type) for e in assigned]
    assert uow.repo.insert_calls == [2, 1, 1]  # [s-1, s-5], the waitlisted s-5, [s-6]
