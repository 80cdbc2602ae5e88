"""Optimality on generated editions: the engine's placements and sum of rank² equal those of
the independent straightforward min-cost flow in bench/reference.py (rank² only, every layer,
built from plain Python lists), for the benchmark's instance families at small sizes."""

from __future__ import annotations

import random

import pytest

from bench.generate import generate
from bench.reference import optimum

from .helpers import check_constraints, solve_doc

FAMILIES = [
    # (participants, offers, seed, generator options)
    (200, 20, 1, {}),
    (300, 25, 2, {"capacity_ratio": 0.5}),
    (300, 25, 3, {"capacity_ratio": 2.0, "zipf_exponent": 1.5}),
    (400, 30, 4, {"two_visit_share": 0.5, "restricted_share": 0.6}),
    (400, 30, 5, {"org_cap_share": 1.0, "choices": 8}),
    (1_900, 120, 6, {}),
    (4_000, 250, 7, {"two_visit_share": 0.2}),
]


@pytest.mark.parametrize("participants, offers, seed, options", FAMILIES)
def test_matches_reference_optimum(participants: int, offers: int, seed: int, options: dict) -> None:
    doc = generate(participants, offers, seed, **options)
    result = solve_doc(doc)
    check_constraints(doc, result)
    assigned, _, rank_cost = optimum(doc)
    assert (result.assigned, result.rank_cost) == (assigned, rank_cost)


@pytest.mark.parametrize("seed", [11, 12])
def test_pinned_and_forbidden_match_reference_optimum(seed: int) -> None:
    doc = generate(300, 25, seed, two_visit_share=0.3)
    rnd = random.Random(seed)
    # Pin a few pairs taken from an unrestricted solution (so they are feasible together),
    # preferably at late ranks so the pins really change the optimum, and forbid others.
    first = solve_doc(doc)
    late = sorted(first.assignments, key=lambda a: -a.rank)[:10]
    doc["pinned"] = [{"participant": a.participant, "offer": a.offer} for a in late]
    pinned = {(a.participant, a.offer) for a in late}
    candidates = [(p["id"], c) for p in doc["participants"] for c in p["choices"] if (p["id"], c) not in pinned]
    doc["forbidden"] = [{"participant": p, "offer": o} for p, o in rnd.sample(candidates, 60)]
    result = solve_doc(doc)
    check_constraints(doc, result)
    assigned, _, rank_cost = optimum(doc)
    assert (result.assigned, result.rank_cost) == (assigned, rank_cost)
