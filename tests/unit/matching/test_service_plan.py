"""The matching service's pure rules: building the engine problem and deciding what to announce."""

from datetime import UTC, date, datetime, timedelta

from services.matching import domain, engine

T0 = datetime(2027, 3, 1, tzinfo=UTC)
DAY = date(2027, 6, 1)


def offer(oid, host, cap, status="published"):
    return domain.OfferRow(oid, host, f"Offer {oid}", DAY, cap, None, "visit", "", status)


def person(sid, org, choices, minutes=0, available=None):
    return domain.ParticipantRow(sid, org, sid.upper(), f"{sid}@example.org", "nl", choices, available, 1, T0 + timedelta(minutes=minutes))


def solve_and_plan(offers, people, previous=None, frozen=()):
    problem = domain.build_problem(offers, people, frozen)
    return problem, domain.plan(problem, engine.solve(problem), previous or {})


def test_cancelled_offers_keep_the_ranks_people_chose():
    problem, plan = solve_and_plan([offer("a", "h1", 1, "cancelled"), offer("b", "h2", 1)], [person("p1", "x", ["a", "b"])])
    assert [(a.participant, a.offer, a.rank) for a in plan.new_assignments] == [("p1", "b", 2)]


def test_unknown_offers_are_left_out_of_the_choices():
    problem = domain.build_problem([offer("b", "h2", 1)], [person("p1", "x", ["not-yet-known", "b"])])
    assert problem.participants[0].choices == ("b",)


def test_waitlisted_versus_unmatched_and_positions():
    offers = [offer("a", "h1", 1)]
    people = [
        person("p1", "x", ["a"], 0),
        person("p2", "x", ["a"], 1),  # could take a if it frees up: waitlisted, position 1
        person("p3", "h1", ["a"], 2),  # own organisation: never possible, unmatched
        person("p4", "x", ["a"], 3, available=[date(2027, 6, 2)]),  # never available that day
        person("p5", "y", ["a"], 4),  # waitlisted, position 2
    ]
    _, plan = solve_and_plan(offers, people)
    states = {o.signup_id: (o.state, o.reason_code, o.position) for o in plan.outcomes}
    assert states == {
        "p1": ("assigned", None, None),
        "p2": ("waitlisted", "full", 1),
        "p5": ("waitlisted", "full", 2),
        "p3": ("unmatched", "own_org", None),
        "p4": ("unmatched", "unavailable", None),
    }
    assert sorted(o.signup_id for o in plan.announce) == ["p2", "p3", "p4", "p5"]


def test_only_changes_are_announced_and_frozen_pairs_are_not_new():
    offers = [offer("a", "h1", 1), offer("b", "h2", 1)]
    people = [person("p1", "x", ["a"], 0), person("p2", "x", ["a"], 1), person("p3", "x", ["b"], 2)]
    previous = {"p2": ("waitlisted", "full"), "p3": ("unmatched", "full")}
    problem, plan = solve_and_plan(offers, people, previous, frozen=[("p1", "a")])
    assert [(a.participant, a.offer) for a in plan.new_assignments] == [("p3", "b")]
    assert plan.announce == []  # p2 is still waiting: no second e-mail


def test_input_hash_ignores_row_order_but_not_content():
    offers = [offer("a", "h1", 1), offer("b", "h2", 2)]
    people = [person("p1", "x", ["a"]), person("p2", "y", ["b", "a"], 1)]
    h = domain.input_hash(domain.build_problem(offers, people))
    assert domain.input_hash(domain.build_problem(offers[::-1], people[::-1])) == h
    assert domain.input_hash(domain.build_problem([offer("a", "h1", 2), offers[1]], people)) != h
