"""The relay as the public follows it (services/reporting/relay.py, pure): the route in plan order, who
holds the baton today on the platform clock (in the relay's time zone), the days so far and ahead (a
hand-over day belongs to the receiving leg), each day's figures as published (small counts suppressed,
complementary suppression), and the approved knowledge items per leg (never a rejected one)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.reporting.domain import KnowledgeItem, RelayLeg, Version
from services.reporting.public import DayCell, PublicFigures, public_figures
from services.reporting.relay import relay_view
from tests.unit.reporting import builders as b

TZ = "Europe/Amsterdam"
AMSTERDAM = ZoneInfo(TZ)
A, B, C = "twente", "salland", "drenthe"
DAY1 = date(2027, 11, 1)  # legs: A Nov 1-3, B Nov 4-6, C Nov 7-9


def ed(region: str) -> str:
    return f"wvdu-2027-{region}"


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=AMSTERDAM)


def nov(n: int) -> date:
    return date(2027, 11, n)


def plan() -> list[RelayLeg]:
    """Three planned legs (RelayLegPlanned only), given out of order."""
    legs = [RelayLeg(f"leg-{i + 1}", r, ed(r), position=i + 1, first_day=DAY1 + timedelta(days=3 * i),
                     last_day=DAY1 + timedelta(days=3 * i + 2), activity=f"Visits in {r}")
            for i, r in enumerate((A, B, C))]
    return [legs[2], legs[0], legs[1]]


def figures(cells: list[DayCell] = (), **per_edition: dict[str, int]) -> PublicFigures:
    """The public figures of the three legs' editions (zeros unless given; consistent: sign-ups =
    not_required + pending + approved, assigned = first + other choices) and their day cells."""
    editions = [b.figures(ed(r), r, **per_edition.get(r, {})) for r in (A, B, C)]
    return public_figures(editions, list(cells), {}, 5)


def item(feedback_id: str, region: str, status: str = "approved", approved: datetime | None = None,
         text: str | None = None) -> KnowledgeItem:
    return KnowledgeItem(
        feedback_id, region, ed(region), status, Version(approved or local(nov(2)), uuid.uuid4()), offer_id="o-1",
        text=(text or f"learned in {region}") if status == "approved" else None, language="nl",
        offer_title="Bakery" if status == "approved" else None, host_org="bakker-bart" if status == "approved" else None,
        approved_at=(approved or local(nov(2))) if status == "approved" else None)


def legs_with(**changes: dict[str, object]) -> list[RelayLeg]:
    """The plan with some legs' events applied (`leg_1={...}`)."""
    return [replace(leg, **changes.get(leg.leg_id.replace("-", "_"), {})) for leg in plan()]


# --- the route and the holder ---------------------------------------------------------------------
def test_the_route_is_in_plan_order_and_before_any_event_the_leg_whose_days_contain_today_holds_the_baton():
    view = relay_view(plan(), [], figures(), local(nov(5)), TZ)
    assert [v.leg.leg_id for v in view.legs] == ["leg-1", "leg-2", "leg-3"]
    assert [v.state for v in view.legs] == ["done", "holding", "ahead"]
    assert view.holder is not None and view.holder.leg.region == B
    assert view.today == nov(5)
    assert [(v.first, v.last) for v in view.legs] == [(nov(1), nov(3)), (nov(4), nov(6)), (nov(7), nov(9))]


def test_before_the_relay_nobody_holds_the_baton_and_no_day_is_past():
    view = relay_view(plan(), [], figures(), local(date(2027, 10, 20)), TZ)
    assert view.holder is None
    assert [v.state for v in view.legs] == ["ahead"] * 3
    assert [d.day for d in view.days] == [nov(n) for n in range(1, 10)]
    assert not any(d.past for d in view.days) and view.days_so_far == []


def test_after_the_relay_every_leg_is_done():
    view = relay_view(plan(), [], figures(), local(nov(20)), TZ)
    assert view.holder is None and [v.state for v in view.legs] == ["done"] * 3
    assert [d.day for d in view.days_so_far] == [nov(n) for n in range(9, 0, -1)]  # newest first


def test_today_is_the_relay_time_zones_day_not_utcs():
    late_utc = datetime(2027, 11, 3, 23, 30, tzinfo=UTC)  # 00:30 on Nov 4 in Amsterdam
    view = relay_view(plan(), [], figures(), late_utc, TZ)
    assert view.today == nov(4) and view.holder is not None and view.holder.leg.leg_id == "leg-2"


def test_a_leg_named_by_a_hand_over_holds_the_baton_before_its_own_start_event():
    handed = datetime(2027, 11, 3, 22, 59, tzinfo=UTC)  # 23:59 on its last day
    legs = legs_with(leg_1={"starts_on": nov(1), "handed_over_at": handed, "handed_over_to": B, "to_leg_id": "leg-2"})
    view = relay_view(legs, [], figures(), local(nov(4), 0, 30), TZ)
    assert view.holder is not None and view.holder.leg.leg_id == "leg-2"
    assert [v.state for v in view.legs] == ["done", "holding", "ahead"]
    assert view.legs[0].last == nov(3)


def test_the_relay_events_win_over_the_plan_an_early_hand_over_moves_the_baton_and_its_day_to_the_next_leg():
    early = datetime(2027, 11, 5, 15, tzinfo=UTC)
    legs = legs_with(
        leg_1={"starts_on": nov(1), "handed_over_at": datetime(2027, 11, 3, 22, 59, tzinfo=UTC), "handed_over_to": B,
               "to_leg_id": "leg-2"},
        leg_2={"starts_on": nov(4), "handed_over_at": early, "handed_over_to": C, "to_leg_id": "leg-3", "early": True},
        leg_3={"starts_on": nov(5)},
    )
    view = relay_view(legs, [], figures(), local(nov(5), 18), TZ)  # by the plan, leg 2 would hold it today
    assert view.holder is not None and view.holder.leg.leg_id == "leg-3"
    assert [v.state for v in view.legs] == ["done", "done", "holding"]
    assert view.legs[1].leg.early and (view.legs[1].first, view.legs[1].last) == (nov(4), nov(5))
    assert (view.legs[2].first, view.legs[2].last) == (nov(5), nov(9))
    owner = {d.day: d.leg.leg.leg_id for d in view.days}
    assert owner == {nov(1): "leg-1", nov(2): "leg-1", nov(3): "leg-1", nov(4): "leg-2",
                     **{nov(n): "leg-3" for n in range(5, 10)}}  # the hand-over day belongs to the receiver
    assert [d.day for d in view.days if d.past] == [nov(n) for n in range(1, 6)]


def test_a_leg_without_a_plan_is_shown_after_the_planned_ones():
    unplanned = RelayLeg("leg-0", "groningen", ed("groningen"), starts_on=date(2027, 10, 1))
    view = relay_view([unplanned, *plan()], [], figures(), local(date(2027, 10, 2)), TZ)
    assert [v.leg.leg_id for v in view.legs] == ["leg-1", "leg-2", "leg-3", "leg-0"]
    assert view.holder is not None and view.holder.leg.leg_id == "leg-0"


def test_with_two_legs_holding_in_the_data_the_later_in_plan_order_is_the_holder():
    legs = legs_with(leg_1={"starts_on": nov(1)}, leg_2={"starts_on": nov(4)})
    view = relay_view(legs, [], figures(), local(nov(4)), TZ)
    assert view.holder is not None and view.holder.leg.leg_id == "leg-2"
    assert [v.state for v in view.legs].count("holding") == 1


# --- the day's figures ------------------------------------------------------------------------------
def test_each_past_day_shows_its_legs_edition_figures_that_day_suppressed_like_every_public_figure():
    cells = [DayCell(A, ed(A), nov(1), signups=7, feedback=5, rating_total=21), DayCell(A, ed(A), nov(2), signups=2),
             DayCell(B, ed(B), nov(4), signups=12, assigned=6)]
    public = figures(cells, **{A: {"signups": 9, "not_required": 9, "feedback_count": 5, "rating_total": 21},
                               B: {"signups": 12, "not_required": 12, "assigned": 6, "first_choice": 6}})
    view = relay_view(plan(), [], public, local(nov(5)), TZ)
    day = {d.day: d for d in view.days}
    assert day[nov(2)].signups.shown == "small" and day[nov(2)].signups.value is None
    # 7 would give the small day away (9 - 7 = 2): withheld
    assert day[nov(1)].signups.shown == "withheld" and day[nov(1)].signups.value is None
    assert day[nov(1)].feedback.value == 5 and day[nov(1)].average_rating == 4.2
    assert (day[nov(4)].signups.value, day[nov(4)].assigned.value) == (12, 6)
    assert day[nov(3)].signups.value == 0  # zero tells about nobody
    assert view.threshold == 5


def test_a_day_with_fewer_ratings_than_the_threshold_has_no_average():
    cells = [DayCell(B, ed(B), nov(4), feedback=2, rating_total=10)]
    view = relay_view(plan(), [], figures(cells, **{B: {"feedback_count": 2, "rating_total": 10}}), local(nov(5)), TZ)
    day = {d.day: d for d in view.days}
    assert day[nov(4)].feedback.shown == "small" and day[nov(4)].average_rating is None


def test_a_day_with_no_figures_of_its_edition_is_zero_and_days_ahead_are_not_past():
    view = relay_view(plan(), [], figures(), local(nov(2)), TZ)
    assert all(d.signups.value == 0 and d.assigned.value == 0 and d.feedback.value == 0 for d in view.days)
    assert [d.past for d in view.days] == [True, True] + [False] * 7


# --- knowledge items --------------------------------------------------------------------------------
def test_approved_knowledge_items_travel_with_the_leg_that_carried_them_and_a_rejected_one_is_never_shown():
    carried = item("fb-carried", A, approved=local(nov(2), 9))
    later = item("fb-later", A, approved=local(nov(3), 9))
    rejected = item("fb-rejected", A, "rejected", approved=local(nov(2), 10))
    of_b = item("fb-b", B, approved=local(nov(4), 9))
    legs = legs_with(leg_1={"starts_on": nov(1), "handed_over_at": datetime(2027, 11, 3, 22, 59, tzinfo=UTC),
                            "handed_over_to": B, "to_leg_id": "leg-2", "knowledge_items": ("fb-carried",)})
    view = relay_view(legs, [rejected, of_b, later, carried], figures(), local(nov(5)), TZ)
    shown = {v.leg.leg_id: [i.feedback_id for i in v.items] for v in view.legs}
    # carried by leg 1's hand-over; not carried by anyone: the leg of its region and edition; oldest first
    assert shown == {"leg-1": ["fb-carried", "fb-later"], "leg-2": ["fb-b"], "leg-3": []}
    assert all(i.status == "approved" and i.text for v in view.legs for i in v.items)


def test_an_item_carried_by_a_leg_is_not_shown_again_with_another_leg_of_its_region():
    carried = item("fb-carried", A)
    legs = plan()
    again = RelayLeg("leg-4", A, ed(A), position=4, first_day=nov(10), last_day=nov(12))
    legs = [replace(legs[1], knowledge_items=("fb-carried",), starts_on=nov(1),
                    handed_over_at=datetime(2027, 11, 3, 22, tzinfo=UTC), to_leg_id="leg-2"), legs[0], legs[2], again]
    view = relay_view(legs, [carried], figures(), local(nov(11)), TZ)
    assert {v.leg.leg_id: [i.feedback_id for i in v.items] for v in view.legs} == {
        "leg-1": ["fb-carried"], "leg-2": [], "leg-3": [], "leg-4": []}


# --- when a day was last updated (the feeds' `updated`) -----------------------------------------------
def test_a_days_update_moment_is_its_start_its_legs_approvals_so_far_or_its_hand_over():
    handed = datetime(2027, 11, 3, 21, tzinfo=UTC)
    approved = datetime(2027, 11, 2, 11, tzinfo=UTC)
    legs = legs_with(leg_1={"starts_on": nov(1), "handed_over_at": handed, "handed_over_to": B, "to_leg_id": "leg-2",
                            "knowledge_items": ("fb-1",)})
    view = relay_view(legs, [item("fb-1", A, approved=approved)], figures(), local(nov(4), 8), TZ)
    updated = {d.day: d.updated for d in view.days}
    assert updated[nov(1)] == local(nov(1), 0)
    assert updated[nov(2)] == approved
    assert updated[nov(3)] == handed
    assert view.updated == max(d.updated for d in view.days_so_far) == local(nov(4), 0)


def test_an_empty_relay_has_no_route_no_holder_and_no_days():
    view = relay_view([], [item("fb-1", A)], figures(), local(nov(5)), TZ)
    assert (view.legs, view.holder, view.days, view.days_so_far) == ([], None, [], [])
    assert view.updated.tzinfo is not None


def test_a_leg_handed_over_on_schedule_ends_on_its_last_planned_day():
    """The scheduled hand-over runs at the end of the last day (registration's `relay_handover` step, due
    at midnight in the region's time zone), so its event's moment is just after midnight, on the next
    leg's first day; the leg still ended on its last day."""
    on_time = local(nov(4), 0, 0) + timedelta(seconds=0.2)
    legs = legs_with(leg_1={"starts_on": nov(1), "handed_over_at": on_time, "handed_over_to": B, "to_leg_id": "leg-2"},
                     leg_2={"starts_on": nov(4)})
    view = relay_view(legs, [], figures(), local(nov(5)), TZ)
    assert (view.legs[0].first, view.legs[0].last) == (nov(1), nov(3))
    assert {d.day: d.leg.leg.leg_id for d in view.days if d.day <= nov(4)} == {
        nov(1): "leg-1", nov(2): "leg-1", nov(3): "leg-1", nov(4): "leg-2"}
