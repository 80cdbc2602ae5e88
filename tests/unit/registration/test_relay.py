"""Issue 10, the relay's write side, against the fake repository: the relay plan and its validation
(positions, overlaps, gaps), the baton (scheduled starts and hand-overs, once; the early hand-over; one
holder at a time; the knowledge items it carries), the moderation of knowledge items, and impossible
dates refused. Milliseconds, no infrastructure."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from estafette.runtime.access import Principal
from estafette.runtime.errors import Conflict, Forbidden, NotFound, RuleViolation
from schemas import (
    KnowledgeItemApproved,
    KnowledgeItemRejected,
    OfferPublished,
    RelayLegHandedOver,
    RelayLegPlanned,
    RelayLegStarted,
)
from services.registration import domain, service
from tests.unit.registration.builders import (
    ADMIN,
    EDITION_ID,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    offer_request,
    signup,
)
from tests.unit.registration.fakes import FakeRegions, FakeRegistrationUow, region
from tests.unit.registration.relay_fakes import RelayFakeRepository, relay_uow

CID = uuid.UUID("00000000-0000-4000-8000-00000000000a")
LIMITS = domain.DateLimits()
REGIONS = FakeRegions((region("twente", ("nl", "de", "en")), region("groningen"), region("drenthe")))
DRENTHE = Principal("organiser", region="drenthe", subject="key:drenthe")


def leg(id: str, region_id: str, first: int, last: int, position: int, **changes: Any) -> domain.RelayLeg:  # noqa: A002
    """A leg in November 2027 (days `first` .. `last`)."""
    fields: dict[str, Any] = dict(
        id=id, region=region_id, edition=f"{region_id}-2027", first_day=date(2027, 11, first),
        last_day=date(2027, 11, last), position=position, activity=f"Estafette in {region_id}",
    )
    return domain.RelayLeg(**{**fields, **changes})


#: Three legs over three regions, without gaps.
A, B, C = leg("leg-a", "twente", 1, 3, 1), leg("leg-b", "groningen", 4, 6, 2), leg("leg-c", "drenthe", 7, 9, 3)


def local(day: int, hour: int = 0) -> datetime:
    """A time in November 2027 in the Netherlands (UTC+1)."""
    return datetime(2027, 11, day, hour, tzinfo=UTC) - timedelta(hours=1)


async def plan(uow: FakeRegistrationUow, *legs: domain.RelayLeg, principal: Principal = NATIONAL) -> None:
    for one in legs:
        await service.plan_relay_leg(uow, one, registry=REGIONS, principal=principal, now=NOW, limits=LIMITS,
                                     correlation_id=CID)


def repo(uow: FakeRegistrationUow) -> RelayFakeRepository:
    return uow.repo  # type: ignore[return-value]


async def step(uow: FakeRegistrationUow, kind: str, leg_id: str, now: datetime) -> None:
    """Run one scheduled step as the scheduler does: in a transaction of its own."""
    handler = service.relay_leg_start if kind == service.RELAY_LEG_START else service.relay_handover
    async with uow.transaction() as tx:
        await handler(tx, leg_id, now=now)


async def refused(call, error: type[Exception], code: str) -> Any:  # noqa: ANN001
    with pytest.raises(error) as caught:
        await call
    assert caught.value.code == code, caught.value  # type: ignore[attr-defined]
    return caught.value


# --- the relay plan --------------------------------------------------------------------------------------
async def test_the_national_coordinator_plans_legs_in_order_and_their_steps_are_scheduled_in_local_time():
    uow = relay_uow()
    await plan(uow, C, A, B, principal=NATIONAL)
    assert [e.leg_id for e in uow.of_type(RelayLegPlanned)] == ["leg-c", "leg-a", "leg-b"]
    planned = uow.of_type(RelayLegPlanned)[1]
    assert (planned.region, planned.edition, planned.position, planned.first_day, planned.last_day, planned.activity) == (
        "twente", "twente-2027", 1, date(2027, 11, 1), date(2027, 11, 3), "Estafette in twente")
    assert [x.id for x in await service.relay_plan(uow)] == ["leg-a", "leg-b", "leg-c"]
    assert repo(uow).steps[(service.RELAY_LEG_START, "leg-a")][0] == local(1)
    assert repo(uow).steps[(service.RELAY_HANDOVER, "leg-a")][0] == local(4)


async def test_an_admin_may_plan_an_organiser_may_not():
    uow = relay_uow()
    await plan(uow, A, principal=ADMIN)
    await refused(plan(uow, B, principal=OTHER_ORGANISER), Forbidden, "forbidden")
    assert [e.leg_id for e in uow.of_type(RelayLegPlanned)] == ["leg-a"]


@pytest.mark.parametrize(
    ("new", "code", "named"),
    [
        (leg("leg-b", "groningen", 3, 6, 2), "relay_overlap", "leg-a"),
        (leg("leg-b", "groningen", 6, 6, 2), "relay_gap", "leg-a"),
        (leg("leg-b", "groningen", 4, 6, 1), "relay_position_taken", "leg-a"),
        (leg("leg-x", "groningen", 10, 12, 2), "relay_overlap", "leg-c"),  # between a and c by position, after c by date
        (leg("leg-x", "groningen", 4, 5, 2), "relay_gap", "leg-c"),  # a day missing before c
        (leg("leg-b", "nowhere", 4, 6, 2), "unknown_region", "nowhere"),
        (leg("leg-b", "groningen", 6, 4, 2), "invalid_dates", "last_day"),
    ],
)
async def test_an_impossible_order_is_refused_naming_the_leg_and_nothing_is_planned(new, code, named):
    uow = relay_uow(legs=(A, replace(C, position=3)))
    error = await refused(plan(uow, new), RuleViolation, code)
    assert named in error.message
    assert uow.published == [] and set(repo(uow).leg_rows) == {"leg-a", "leg-c"}


async def test_a_gap_is_planned_when_the_request_says_so():
    uow = relay_uow(legs=(A,))
    await plan(uow, leg("leg-b", "groningen", 6, 8, 2, allow_gap=True))
    await plan(uow, leg("leg-c", "drenthe", 12, 14, 3, allow_gap=True))
    assert [x.id for x in await service.relay_plan(uow)] == ["leg-a", "leg-b", "leg-c"]


async def test_replanning_moves_the_steps_the_same_plan_again_changes_nothing():
    uow = relay_uow()
    await plan(uow, A, B)
    await plan(uow, A)
    assert len(uow.of_type(RelayLegPlanned)) == 2
    await plan(uow, replace(A, activity="Bakery tour", first_day=date(2027, 10, 31)))
    assert uow.of_type(RelayLegPlanned)[-1].activity == "Bakery tour"
    assert repo(uow).steps[(service.RELAY_LEG_START, "leg-a")][0] == datetime(2027, 10, 30, 22, tzinfo=UTC)  # CEST


async def test_a_started_leg_cannot_be_replanned():
    uow = relay_uow()
    await plan(uow, A, B)
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await refused(plan(uow, replace(A, activity="other")), Conflict, "relay_leg_started")


# --- the baton ------------------------------------------------------------------------------------------
async def test_the_baton_moves_at_each_legs_end_once():
    uow = relay_uow(legs=(A, B, C))
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1, 1))  # again: nothing
    assert [(e.leg_id, e.starts_on, e.region, e.edition) for e in uow.of_type(RelayLegStarted)] == [
        ("leg-a", date(2027, 11, 1), "twente", "twente-2027")]
    for kind, leg_id, at in [(service.RELAY_HANDOVER, "leg-a", local(4)), (service.RELAY_LEG_START, "leg-b", local(4)),
                             (service.RELAY_HANDOVER, "leg-a", local(4)), (service.RELAY_HANDOVER, "leg-b", local(7)),
                             (service.RELAY_LEG_START, "leg-c", local(7)), (service.RELAY_HANDOVER, "leg-c", local(10))]:
        await step(uow, kind, leg_id, at)
    handed = [(e.leg_id, e.to_region, e.to_leg_id, e.early) for e in uow.of_type(RelayLegHandedOver)]
    assert handed == [("leg-a", "groningen", "leg-b", False), ("leg-b", "drenthe", "leg-c", False), ("leg-c", "", None, False)]
    assert [e.leg_id for e in uow.of_type(RelayLegStarted)] == ["leg-a", "leg-b", "leg-c"]
    assert [x.status for x in await service.relay_plan(uow)] == ["handed_over"] * 3


async def test_a_start_that_comes_before_the_previous_legs_hand_over_takes_the_baton_from_it():
    uow = relay_uow(legs=(A, B))
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await step(uow, service.RELAY_LEG_START, "leg-b", local(4))
    await step(uow, service.RELAY_HANDOVER, "leg-a", local(4))
    assert [(e.leg_id, e.to_leg_id) for e in uow.of_type(RelayLegHandedOver)] == [("leg-a", "leg-b")]
    assert [x.status for x in await service.relay_plan(uow)] == ["handed_over", "holding"]


async def test_after_a_gap_the_next_leg_starts_on_its_own_first_day():
    later = leg("leg-b", "groningen", 8, 9, 2, allow_gap=True)
    uow = relay_uow(legs=(A, later))
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await step(uow, service.RELAY_HANDOVER, "leg-a", local(4))
    assert uow.of_type(RelayLegHandedOver)[0].to_leg_id == "leg-b"
    assert [e.leg_id for e in uow.of_type(RelayLegStarted)] == ["leg-a"]
    await step(uow, service.RELAY_LEG_START, "leg-b", local(8))
    assert [(e.leg_id, e.starts_on) for e in uow.of_type(RelayLegStarted)] == [
        ("leg-a", date(2027, 11, 1)), ("leg-b", date(2027, 11, 8))]


async def test_the_holding_regions_organiser_hands_over_early_and_the_next_leg_starts_now():
    uow = relay_uow(legs=(A, B, C))
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await step(uow, service.RELAY_HANDOVER, "leg-a", local(4))
    early = local(5, 15)
    await refused(service.hand_over_early(uow, "leg-b", principal=ORGANISER, now=early, correlation_id=CID),
                  Forbidden, "forbidden_region")
    await refused(service.hand_over_early(uow, "leg-c", principal=DRENTHE, now=early, correlation_id=CID),
                  Conflict, "relay_leg_not_holding")
    await refused(service.hand_over_early(uow, "leg-z", principal=ADMIN, now=early, correlation_id=CID),
                  NotFound, "unknown_relay_leg")
    handed = await service.hand_over_early(uow, "leg-b", principal=OTHER_ORGANISER, now=early, correlation_id=CID)
    assert (handed.status, handed.early, handed.to_leg_id) == ("handed_over", True, "leg-c")
    last = uow.of_type(RelayLegHandedOver)[-1]
    assert (last.leg_id, last.to_region, last.to_leg_id, last.early, last.occurred_at) == ("leg-b", "drenthe", "leg-c", True, early)
    assert (uow.of_type(RelayLegStarted)[-1].leg_id, uow.of_type(RelayLegStarted)[-1].starts_on) == ("leg-c", date(2027, 11, 5))
    events = len(uow.published)
    await step(uow, service.RELAY_LEG_START, "leg-c", local(7))  # started already
    await step(uow, service.RELAY_HANDOVER, "leg-b", local(7))  # handed over already
    await refused(service.hand_over_early(uow, "leg-b", principal=OTHER_ORGANISER, now=early, correlation_id=CID),
                  Conflict, "relay_leg_not_holding")
    assert len(uow.published) == events
    assert [x.status for x in await service.relay_plan(uow)] == ["handed_over", "handed_over", "holding"]


# --- knowledge items ------------------------------------------------------------------------------------
def feedback(fid: str, signup_id: str, *, share: bool = True, learned: str = "Anna learned to bake bread",
             offer_id: str = "o1", at: datetime = NOW) -> domain.Feedback:
    return domain.Feedback(fid, signup_id, offer_id, 4, learned, share, "nl", at)


def moderated() -> FakeRegistrationUow:
    other = edition(id="e-gr", region="groningen", languages=["nl"])
    uow = relay_uow((edition(), other), (offer("o1"), offer("o-gr", edition_id="e-gr", host_org="host-g")),
                    (signup("s1"), signup("s2", email="b@example.org"), signup("s3", edition_id="e-gr", email="c@example.org")),
                    legs=(A, B))
    for f in (feedback("f1", "s1"), feedback("f2", "s2", share=False), feedback("f3", "s2", offer_id="o9"),
              feedback("f-gr", "s3", offer_id="o-gr")):
        repo(uow).feedback_rows[(f.signup_id, f.offer_id)] = f
    return uow


async def items(uow: FakeRegistrationUow, status: str, edition_id: str = EDITION_ID) -> list[str]:
    return [i.feedback.id for i in await service.knowledge_items(uow, edition_id, principal=ORGANISER if edition_id == EDITION_ID
                                                                 else OTHER_ORGANISER, status=status)]  # type: ignore[arg-type]


async def approve(uow: FakeRegistrationUow, fid: str, text: str | None = None, *, principal: Principal = ORGANISER,
                  edition_id: str = EDITION_ID, now: datetime = NOW) -> domain.KnowledgeItem:
    return await service.approve_knowledge_item(uow, edition_id, fid, principal=principal, text=text, now=now,
                                                correlation_id=CID)


async def test_shareable_feedback_is_pending_until_approved_with_a_text_without_names():
    uow = moderated()
    assert await items(uow, "pending") == ["f1", "f3"]
    item = await approve(uow, "f1", "Someone learned to bake bread")
    assert (item.status, item.text) == ("approved", "Someone learned to bake bread")
    [event] = uow.of_type(KnowledgeItemApproved)
    assert (event.region, event.edition, event.feedback_id, event.offer_id, event.text, event.language, event.offer_title,
            event.host_org, event.approved_at) == (
        "twente", EDITION_ID, "f1", "o1", "Someone learned to bake bread", "nl", "Een dag in de bakkerij", "host-a", NOW)
    assert not {"name", "email", "signup_id"} & set(event.model_dump())
    assert await items(uow, "pending") == ["f3"] and await items(uow, "approved") == ["f1"]
    await approve(uow, "f1", "another text")  # again: nothing changes
    assert len(uow.of_type(KnowledgeItemApproved)) == 1
    without_text = await approve(uow, "f3")
    assert without_text.text == "Anna learned to bake bread" and without_text.offer_title == ""


async def test_rejecting_takes_a_reason_once_and_the_other_decision_is_refused():
    uow = moderated()
    item = await service.reject_knowledge_item(uow, EDITION_ID, "f1", principal=ADMIN, reason="Names a colleague", now=NOW,
                                               correlation_id=CID)
    assert (item.status, item.reason) == ("rejected", "Names a colleague")
    await service.reject_knowledge_item(uow, EDITION_ID, "f1", principal=ORGANISER, reason="again", now=NOW, correlation_id=CID)
    [event] = uow.of_type(KnowledgeItemRejected)
    assert (event.feedback_id, event.reason, event.region) == ("f1", "Names a colleague", "twente")
    await refused(approve(uow, "f1"), Conflict, "already_moderated")
    assert await items(uow, "rejected") == ["f1"]


async def test_only_shareable_feedback_of_the_callers_region_can_be_moderated():
    uow = moderated()
    await refused(approve(uow, "f2"), Conflict, "not_shareable")
    await refused(approve(uow, "f-gr", edition_id=EDITION_ID), NotFound, "unknown_feedback")
    await refused(approve(uow, "f1", principal=OTHER_ORGANISER), NotFound, "unknown_edition")
    await refused(approve(uow, "f1", principal=NATIONAL), Forbidden, "forbidden")
    await refused(approve(uow, "f1", "   "), RuleViolation, "empty_text")
    assert uow.published == []


async def test_approved_items_of_the_legs_region_travel_with_the_baton_once():
    uow = moderated()
    await step(uow, service.RELAY_LEG_START, "leg-a", local(1))
    await approve(uow, "f1", now=local(2))
    await approve(uow, "f-gr", principal=OTHER_ORGANISER, edition_id="e-gr", now=local(2))
    await service.reject_knowledge_item(uow, EDITION_ID, "f3", principal=ORGANISER, reason="no", now=local(2),
                                        correlation_id=CID)
    await step(uow, service.RELAY_HANDOVER, "leg-a", local(4))
    await step(uow, service.RELAY_HANDOVER, "leg-b", local(7))
    assert [(e.leg_id, e.knowledge_items) for e in uow.of_type(RelayLegHandedOver)] == [("leg-a", ["f1"]), ("leg-b", ["f-gr"])]
    assert repo(uow).decisions["f1"].leg_id == "leg-a"


# --- impossible dates -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"starts_on": date(2032, 4, 2), "ends_on": date(2032, 4, 3)}, "date_too_late", "starts_on"),
        ({"starts_on": date(2026, 3, 31)}, "date_too_early", "starts_on"),
        ({"starts_on": date(1, 1, 1)}, "date_too_early", "starts_on"),
        ({"ends_on": date(2027, 7, 1)}, "edition_too_long", "ends_on"),
    ],
)
async def test_editions_with_impossible_dates_are_refused(changes, code, field):
    uow = relay_uow()
    new = edition(id="e-new", **changes)
    with pytest.raises(RuleViolation) as caught:
        await service.open_edition(uow, new, registry=REGIONS, principal=ADMIN, correlation_id=CID, now=NOW, limits=LIMITS)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert uow.published == []


async def test_the_limits_are_inclusive_and_come_from_the_settings():
    uow = relay_uow()
    longest = edition(id="e-long", starts_on=date(2032, 3, 2), ends_on=date(2032, 4, 1), signup_deadline=NOW)
    await service.open_edition(uow, longest, registry=REGIONS, principal=ADMIN, correlation_id=CID, now=NOW, limits=LIMITS)
    far = edition(id="e-far", starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 3), signup_deadline=NOW)
    await service.open_edition(uow, far, registry=REGIONS, principal=ADMIN, correlation_id=CID, now=NOW,
                               limits=domain.DateLimits(max_years_ahead=100))
    assert len(uow.published) == 2


async def test_an_offer_on_an_impossible_date_is_refused():
    far = edition(starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 3))  # opened before the rule
    uow = relay_uow((far,))
    with pytest.raises(RuleViolation) as caught:
        await service.publish_offer(uow, EDITION_ID, principal=ORGANISER, correlation_id=CID, now=NOW, limits=LIMITS,
                                    **offer_request(date=date(2099, 5, 2)))
    assert (caught.value.code, caught.value.field) == ("date_too_late", "date")
    assert uow.of_type(OfferPublished) == []


async def test_a_leg_on_an_impossible_date_is_refused():
    uow = relay_uow()
    await refused(plan(uow, leg("leg-a", "twente", 1, 3, 1, first_day=date(2099, 1, 1), last_day=date(2099, 1, 2))),
                  RuleViolation, "date_too_late")
