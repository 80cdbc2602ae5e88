"""Incremental re-matching after publication, and the waiting list."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import orjson

from bench.generate import generate
from bench.reference import optimum
from services.matching import engine
from services.matching.instance import parse_instance

from .builders import engine_offer, engine_participant
from .helpers import check_constraints


def cancel_and_add_seats(doc: dict, offer_id: str) -> dict:
    """The edition after `offer_id` was cancelled (kept with no seats, so ranks stay) and the
    organisers added one seat to every other offer: displaced and waiting people compete."""
    offers = [{**o, "capacity": 0 if o["id"] == offer_id else o["capacity"] + 1} for o in doc["offers"]]
    return {**doc, "offers": offers}


def test_cancelled_offer_after_publication() -> None:
    doc = generate(800, 50, 21, two_visit_share=0.2)
    before = engine.solve(parse_instance(orjson.dumps(doc)))
    busiest = Counter(a.offer for a in before.assignments).most_common(1)[0][0]
    frozen = {(a.participant, a.offer) for a in before.assignments if a.offer != busiest}
    displaced = {a.participant for a in before.assignments if a.offer == busiest}

    after_doc = cancel_and_add_seats(doc, busiest)
    problem = parse_instance(orjson.dumps(after_doc))
    after = engine.rematch(problem, frozen, before)

    check_constraints(after_doc, after, frozen=frozen)  # every frozen pair is still there
    rank_of = {(a.participant, a.offer): a.rank for a in after.assignments}
    assert all(rank_of[a.participant, a.offer] == a.rank for a in before.assignments if (a.participant, a.offer) in frozen)

    # Displaced people are re-placed before waiting ones: more of them than without priority.
    def displaced_visits(result: engine.Result) -> int:
        return sum(1 for a in result.assignments if a.participant in displaced and (a.participant, a.offer) not in frozen)

    without_priority = engine.solve(replace(problem, frozen=frozenset(frozen)))
    assert displaced_visits(after) > displaced_visits(without_priority)
    assert after.assigned == without_priority.assigned  # never at the cost of placements

    # Optimal for the remaining problem: most placements, then most displaced placements,
    # then least rank² (the reference weighs priority with a big M instead of hubs).
    placed_priority = sum(1 for a in after.assignments if a.participant in displaced)
    assert (after.assigned, placed_priority, after.rank_cost) == optimum(after_doc, sorted(frozen), displaced)
    # Displaced people who stayed unplaced had no seat they could take.
    for pid in displaced & set(after.unmatched):
        assert after.explanations[pid].code in {"all_full", "org_cap", "own_org", "unavailable", "mixed"}


def test_displaced_person_goes_before_earlier_waiting_person() -> None:
    offers = [engine_offer("x"), engine_offer("y")]
    people = [engine_participant("waiting", 1, ("y",)), engine_participant("placed", 2, ("y",)), engine_participant("moved", 3, ("x",))]
    before = engine.solve(engine.Problem(offers, people, pinned={("placed", "y")}))
    assert before.unmatched == ("waiting",)
    # x is cancelled, "moved" is displaced and a new offer z opens with one seat. "waiting"
    # signed up earlier and ranks z first, "moved" ranks it second: priority still wins.
    offers = [engine_offer("x", capacity=0), engine_offer("y"), engine_offer("z")]
    people = [engine_participant("waiting", 1, ("z", "y")), engine_participant("placed", 2, ("y",)), engine_participant("moved", 3, ("x", "z"))]
    after = engine.rematch(engine.Problem(offers, people), {("placed", "y")}, before)
    assert {(a.participant, a.offer) for a in after.assignments} == {("placed", "y"), ("moved", "z")}
    assert after.unmatched == ("waiting",)
    without_priority = engine.solve(engine.Problem(offers, people, frozen={("placed", "y")}))
    assert {(a.participant, a.offer) for a in without_priority.assignments} == {("placed", "y"), ("waiting", "z")}


def test_frozen_person_gets_extra_visits_only_on_other_dates() -> None:
    offers = [engine_offer("x"), engine_offer("y"), engine_offer("z", day="2027-06-01")]
    people = [engine_participant("p", 1, ("y", "z", "x"), max_visits=2)]
    before = engine.Result((engine.Assignment("p", "x", 3),), (), 1, 9, {})
    after = engine.rematch(engine.Problem(offers, people), {("p", "x")}, before)
    assert {(a.offer, a.rank) for a in after.assignments} == {("x", 3), ("z", 2)}  # y is on x's day


def test_waiting_list_order_and_next_for_seat() -> None:
    offers = [engine_offer("x", max_per_org=1), engine_offer("y", host_org="org-b"), engine_offer("full", capacity=0)]
    people = [
        engine_participant("hopeless", 0, ("y",), org="org-b"),  # only their own organisation's offer
        engine_participant("late", 9, ("full", "x")),
        engine_participant("early-2", 2, ("full",), org="org-c"),
        engine_participant("early-1", 2, ("full", "x"), org="org-c", available=frozenset()),
        engine_participant("seated", 1, ("x",)),
    ]
    problem = engine.Problem(offers, people)
    result = engine.solve(problem)
    assert {(a.participant, a.offer) for a in result.assignments} == {("seated", "x")}
    # early-1 has no available day, so no choice is feasible for them either.
    assert engine.waiting_list(problem, result) == ["early-2", "late", "hopeless", "early-1"]
    # A seat frees up on x: early-2 did not choose it, late's org-a is at x's cap of 1,
    # early-1 is unavailable: nobody qualifies.
    assert engine.next_for_seat(problem, result, "x") is None
    # Once "seated" withdraws, org-a is below the cap again and "late" is next.
    withdrawn = engine.Problem(offers, [p for p in people if p.id != "seated"])
    assert engine.next_for_seat(withdrawn, engine.Result((), result.unmatched, 0, 0, {}), "x") == "late"
    assert engine.next_for_seat(problem, result, "full") == "early-2"
