"""Seat offers, the pure rules: when an offer ends, who is offered a seat instead of assigned one,
and how declined, expired and too-late pairs keep people off a seat."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.matching import domain, engine

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2027, 3, 1, tzinfo=UTC)
DAY = date(2027, 6, 1)


def offer(oid, host="h1", cap=1, day=DAY, status="published"):
    return domain.OfferRow(oid, host, f"Offer {oid}", day, cap, None, "visit", "", status)


def person(sid, choices, minutes=0, org="x", max_visits=1):
    return domain.ParticipantRow(sid, org, sid.upper(), f"{sid}@example.org", "nl", choices, None, max_visits, T0 + timedelta(minutes=minutes))


def rerun(offers, people, previous, frozen=(), open_offers=(), declined=(), too_late=()):
    """An incremental run as the service does it: people who were told they wait are 'waiting'."""
    waiting = {pid for pid, (state, _) in previous.items() if state in domain.WAITING_STATES}
    problem = domain.build_problem(offers, people, frozen, (), declined, waiting, too_late)
    return problem, domain.plan(problem, engine.solve(problem), previous, set(open_offers), set(declined))


# --- when an offer ends ---------------------------------------------------------------------
def test_an_offer_is_held_for_the_configured_hours() -> None:
    now = datetime(2027, 5, 1, 10, 0, tzinfo=UTC)
    assert domain.offer_expiry(now, DAY, 48, AMSTERDAM) == now + timedelta(hours=48)


def test_an_offer_never_ends_after_the_day_before_the_visit() -> None:
    now = datetime(2027, 5, 31, 8, 0, tzinfo=UTC)  # 10:00 in Amsterdam, the visit is tomorrow
    expires = domain.offer_expiry(now, DAY, 48, AMSTERDAM)
    assert expires == datetime(2027, 5, 31, 23, 59, tzinfo=AMSTERDAM)
    assert expires.astimezone(UTC) == datetime(2027, 5, 31, 21, 59, tzinfo=UTC)  # summer time


def test_the_day_before_is_local_time_also_across_a_clock_change() -> None:
    visit = date(2027, 3, 29)  # clocks went forward on Sunday 28 March 2027
    now = datetime(2027, 3, 28, 9, 0, tzinfo=UTC)
    assert domain.offer_expiry(now, visit, 48, AMSTERDAM).astimezone(UTC) == datetime(2027, 3, 28, 21, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2027, 5, 31, 21, 59, tzinfo=UTC),  # exactly 23:59 the day before: nothing left to offer
        datetime(2027, 6, 1, 7, 0, tzinfo=UTC),  # the morning of the visit
        datetime(2027, 6, 2, 7, 0, tzinfo=UTC),  # after the visit
    ],
)
def test_no_offer_once_the_day_before_the_visit_is_over(now: datetime) -> None:
    assert domain.offer_expiry(now, DAY, 48, AMSTERDAM) is None


@pytest.mark.parametrize(
    ("status", "expires_in", "state"),
    [
        ("offered", 1, "open"),
        ("offered", -1, "expired"),  # its time is up, the expiry loop has not ended it yet
        ("expired", -1, "expired"),
        ("active", 1, "accepted"),
        ("declined", 1, "declined"),
        ("released", 1, "withdrawn"),
        ("displaced", 1, "cancelled"),
    ],
)
def test_what_became_of_a_seat_offer(status: str, expires_in: int, state: str) -> None:
    assert domain.seat_offer_state(status, T0 + timedelta(seconds=expires_in), T0) == state


# --- offered or assigned ------------------------------------------------------------------------
def test_a_freed_seat_is_offered_to_a_waitlisted_person_but_assigned_to_others() -> None:
    offers = [offer("a", cap=1), offer("b", host="h2", cap=1), offer("c", host="h3", cap=1)]
    people = [
        person("waiting", ["a"], 0),  # was told: waiting list
        person("moved", ["b"], 1),  # was told: assigned (to a cancelled offer), now displaced
        person("late", ["c"], 2),  # signed up after publication, was told nothing yet
    ]
    previous = {"waiting": ("waitlisted", "full"), "moved": ("assigned", None)}
    _, plan = rerun(offers, people, previous)

    assert [(a.participant, a.offer) for a in plan.new_offers] == [("waiting", "a")]
    assert sorted((a.participant, a.offer) for a in plan.new_assignments) == [("late", "c"), ("moved", "b")]
    states = {o.signup_id: o.state for o in plan.outcomes}
    assert states == {"waiting": "offered", "moved": "assigned", "late": "assigned"}
    assert plan.announce == []  # SeatOffered and MatchAssigned tell them, not a waiting-list e-mail


def test_the_seat_goes_to_the_earliest_waiting_person_and_moves_on_when_declined() -> None:
    offers = [offer("a", cap=1)]
    people = [person("first", ["a"], 0), person("second", ["a"], 1), person("third", ["a"], 2)]
    previous = {pid: ("waitlisted", "full") for pid in ("first", "second", "third")}

    _, plan = rerun(offers, people, previous)
    assert [a.participant for a in plan.new_offers] == ["first"]

    # "first" declined (or let it expire): the pair is never placed again, "second" is next.
    previous["first"] = ("waitlisted", None)
    _, plan = rerun(offers, people, previous, declined={("first", "a")})
    assert [a.participant for a in plan.new_offers] == ["second"]
    first = next(o for o in plan.outcomes if o.signup_id == "first")
    assert (first.state, first.reason_code) == ("unmatched", domain.SEAT_OFFERS_ENDED)
    assert [o.signup_id for o in plan.announce] == ["first"]  # told once that nothing is left


def test_an_open_offer_holds_its_seat_and_its_holder_gets_nothing_else() -> None:
    offers = [offer("a", cap=1), offer("b", host="h2", cap=1, day=date(2027, 6, 2))]
    people = [person("holder", ["a", "b"], 0, max_visits=2), person("next", ["a"], 1)]
    previous = {"holder": ("offered", None), "next": ("waitlisted", "full")}
    problem, plan = rerun(offers, people, previous, frozen={("holder", "a")}, open_offers={("holder", "a")})

    assert problem.participants[0].max_visits == 1  # one seat offer at a time
    assert plan.new_offers == [] and plan.new_assignments == []
    states = {o.signup_id: (o.state, o.position) for o in plan.outcomes}
    assert states == {"holder": ("offered", None), "next": ("waitlisted", 1)}
    assert plan.announce == []


def test_a_waiting_person_with_two_visits_is_offered_one_seat_at_a_time() -> None:
    offers = [offer("a", cap=1), offer("b", host="h2", cap=1, day=date(2027, 6, 2))]
    people = [person("p", ["a", "b"], max_visits=2)]
    _, plan = rerun(offers, people, {"p": ("waitlisted", "full")})
    assert [(a.participant, a.offer) for a in plan.new_offers] == [("p", "a")]


def test_an_unmatched_person_who_gets_a_seat_later_is_assigned_directly() -> None:
    _, plan = rerun([offer("a")], [person("p", ["a"])], {"p": ("unmatched", "all_full")})
    assert [a.participant for a in plan.new_assignments] == ["p"] and plan.new_offers == []


# --- pairs no run may place ---------------------------------------------------------------------
def test_declined_pairs_are_forbidden_for_present_people_and_known_offers_only() -> None:
    problem = domain.build_problem(
        [offer("a")], [person("p", ["a"])], declined={("p", "a"), ("gone", "a"), ("p", "unknown")}
    )
    assert problem.forbidden == {("p", "a")}


def test_too_late_offers_are_kept_from_waiting_people_only() -> None:
    offers = [offer("soon"), offer("own", host="x"), offer("later", host="h2", day=date(2027, 6, 9))]
    people = [person("waiting", ["soon", "own", "later"], 0), person("late", ["soon"], 1)]
    problem = domain.build_problem(offers, people, waiting={"waiting"}, too_late={"soon", "own"})
    # Not "own": an offer at one's own organisation keeps that reason in the explanation.
    assert problem.forbidden == {("waiting", "soon")}

    result = engine.solve(problem)
    assert {(a.participant, a.offer) for a in result.assignments} == {("waiting", "later"), ("late", "soon")}


def test_a_too_late_offer_keeps_the_person_waitlisted_not_unmatched() -> None:
    people = [person("holder", ["a"], 0), person("p", ["a"], 1)]
    previous = {"holder": ("assigned", None), "p": ("waitlisted", "full")}
    _, plan = rerun([offer("a")], people, previous, frozen={("holder", "a")}, too_late={"a"})
    assert [(o.signup_id, o.state, o.position) for o in plan.outcomes] == [("holder", "assigned", None), ("p", "waitlisted", 1)]
    assert plan.announce == []


def test_an_open_offer_is_never_forbidden_even_when_its_day_is_close() -> None:
    problem = domain.build_problem(
        [offer("a")], [person("p", ["a"])], frozen={("p", "a")}, waiting={"p"}, too_late={"a"}
    )
    assert problem.forbidden == frozenset()
    assert engine.solve(problem).assigned == 1


def test_the_input_hash_covers_forbidden_pairs() -> None:
    offers, people = [offer("a")], [person("p", ["a"])]
    assert domain.input_hash(domain.build_problem(offers, people)) != domain.input_hash(
        domain.build_problem(offers, people, declined={("p", "a")})
    )
