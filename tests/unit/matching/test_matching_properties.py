"""Property tests on tiny random instances: every constraint holds and the objective equals
the brute-force optimum (placements, then sum of rank²); infeasible pins raise."""

from __future__ import annotations

import random
from dataclasses import replace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching import engine
from services.matching.instance import parse_instance

from .helpers import brute_force, check_constraints, solve_doc

DATES = ["2027-05-31", "2027-06-01"]


@st.composite
def tiny_instances(draw) -> dict:
    n_offers = draw(st.integers(1, 4))
    orgs = [f"org-{k}" for k in range(draw(st.integers(1, 3)))]
    offers = []
    for j in range(n_offers):
        offer = {
            "id": f"o-{j}",
            "host": draw(st.sampled_from(orgs)),
            "date": draw(st.sampled_from(DATES)),
            "capacity": draw(st.integers(0, 2)),
        }
        if draw(st.booleans()):
            offer["max_per_org"] = draw(st.integers(0, 2))
        offers.append(offer)
    people = []
    for i in range(draw(st.integers(1, 5))):
        person = {
            "id": f"p-{i}",
            "org": draw(st.sampled_from(orgs)),
            "signed_up_at": f"2027-03-01T09:0{draw(st.integers(0, 2))}:00Z",
            "choices": draw(st.permutations([o["id"] for o in offers]).map(lambda c: c[: min(len(c), 3)]))[
                : draw(st.integers(0, 3))
            ],
        }
        if draw(st.booleans()):
            person["available"] = draw(st.lists(st.sampled_from(DATES), unique=True))
        if draw(st.integers(0, 3)) == 0:
            person["max_visits"] = 2
        people.append(person)
    pairs = [(p["id"], c) for p in people for c in p["choices"]]
    doc = {"offers": offers, "participants": people}
    if pairs and draw(st.booleans()):
        doc["forbidden"] = [{"participant": p, "offer": o} for p, o in draw(st.lists(st.sampled_from(pairs), max_size=2, unique=True))]
    if pairs and draw(st.integers(0, 2)) == 0:
        doc["pinned"] = [{"participant": p, "offer": o} for p, o in draw(st.lists(st.sampled_from(pairs), max_size=2, unique=True))]
    return doc


@settings(max_examples=300, deadline=None)
@given(tiny_instances())
def test_constraints_and_brute_force_optimum(doc: dict) -> None:
    best = brute_force(doc)
    if best is None:
        with pytest.raises(engine.MatchingError, match="pinned pair"):
            solve_doc(doc)
        return
    result = solve_doc(doc)
    check_constraints(doc, result)
    assert (result.assigned, -result.rank_cost) == (best[0], best[2])


@settings(max_examples=100, deadline=None)
@given(tiny_instances(), st.randoms(use_true_random=False))
def test_priority_is_lexicographic(doc: dict, rnd: random.Random) -> None:
    doc.pop("pinned", None)
    priority = frozenset(p["id"] for p in doc["participants"] if rnd.random() < 0.4)
    result = engine.solve(replace(parse_instance(orjson.dumps(doc)), priority=priority))
    check_constraints(doc, result)
    placed_priority = sum(1 for a in result.assignments if a.participant in priority)
    assert (result.assigned, placed_priority, -result.rank_cost) == brute_force(doc, priority)

