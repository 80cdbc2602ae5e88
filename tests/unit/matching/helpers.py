"""Shared helpers for the matching tests: run the engine on an INSTANCE document, check every
constraint of a result independently, and brute-force the optimum of tiny instances."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson

from services.matching import engine
from services.matching.instance import parse_instance, result_to_json


def solve_doc(doc: dict) -> engine.Result:
    return engine.solve(parse_instance(orjson.dumps(doc)))


def result_doc(doc: dict) -> dict:
    return orjson.loads(result_to_json(solve_doc(doc)))


def check_constraints(doc: dict, result: engine.Result, frozen=(), pinned_extra=()) -> None:
    """Assert that `result` respects every rule of the problem in `doc`."""
    offers = {o["id"]: o for o in doc["offers"]}
    people = {p["id"]: p for p in doc["participants"]}
    pairs = [(a.participant, a.offer) for a in result.assignments]
    assert len(pairs) == len(set(pairs)), "a pair is assigned twice"
    for a in result.assignments:
        p, o = people[a.participant], offers[a.offer]
        assert a.offer in p["choices"], f"{a} is not a choice"
        assert a.rank == p["choices"].index(a.offer) + 1, f"{a} has the wrong rank"
        assert o["host"] != p["org"], f"{a} is at the own organisation"
        assert o["date"] in p.get("available", [o["date"]]), f"{a} is on an unavailable day"
    load = Counter(a.offer for a in result.assignments)
    for oid, n in load.items():
        assert n <= offers[oid]["capacity"], f"offer {oid} over capacity"
    org_load = Counter((a.offer, people[a.participant]["org"]) for a in result.assignments)
    for (oid, org), n in org_load.items():
        cap = offers[oid].get("max_per_org")
        assert cap is None or n <= cap, f"offer {oid} over its cap for {org}"
    visits = Counter(a.participant for a in result.assignments)
    for pid, n in visits.items():
        assert n <= people[pid].get("max_visits", 1), f"{pid} has too many visits"
    days = Counter((a.participant, offers[a.offer]["date"]) for a in result.assignments)
    assert max(days.values(), default=1) == 1, "two visits on one day"
    for f in doc.get("forbidden", []):
        assert (f["participant"], f["offer"]) not in pairs, f"forbidden pair {f} placed"
    for f in list(doc.get("pinned", [])) + [{"participant": p, "offer": o} for p, o in list(frozen) + list(pinned_extra)]:
        assert (f["participant"], f["offer"]) in pairs, f"fixed pair {f} not placed"
    assert result.assigned == len(pairs)
    assert result.rank_cost == sum(a.rank**2 for a in result.assignments)
    assert set(result.unmatched) == set(people) - set(visits)
    assert set(result.explanations) == set(people)
    for pid, e in result.explanations.items():
        if pid in visits:
            assert e.code == "placed" and len(e.ranks) == visits[pid]
        else:
            assert e.code in engine.UNMATCHED_CODES and len(e.choices) == len(people[pid]["choices"])


def brute_force(doc: dict, priority: frozenset[str] = frozenset()) -> tuple[int, int, int] | None:
    """Best (assigned, priority placements, -rank_cost) over every feasible assignment, or None
    if no assignment places all pinned pairs. Only for tiny instances."""
    offers = {o["id"]: o for o in doc["offers"]}
    people = doc["participants"]
    forbidden = {(f["participant"], f["offer"]) for f in doc.get("forbidden", [])}
    pinned = {(f["participant"], f["offer"]) for f in doc.get("pinned", [])}
    options = []  # per participant: every set of choices they could get at once
    for p in people:
        usable = [
            (rank, oid)
            for rank, oid in enumerate(p["choices"], start=1)
            if offers[oid]["host"] != p["org"]
            and offers[oid]["date"] in p.get("available", [offers[oid]["date"]])
            and (p["id"], oid) not in forbidden
        ]
        mine = []
        for k in range(p.get("max_visits", 1) + 1):
            for subset in itertools.combinations(usable, k):
                if len({offers[oid]["date"] for _, oid in subset}) == k:
                    mine.append(subset)
        options.append(mine)
    best = None
    for combo in itertools.product(*options):
        load, org_load, chosen = Counter(), Counter(), set()
        for p, subset in zip(people, combo):
            for _, oid in subset:
                load[oid] += 1
                org_load[oid, p["org"]] += 1
                chosen.add((p["id"], oid))
        if not pinned <= chosen:
            continue
        if any(n > offers[oid]["capacity"] for oid, n in load.items()):
            continue
        if any(offers[oid].get("max_per_org") is not None and n > offers[oid]["max_per_org"] for (oid, _), n in org_load.items()):
            continue
        score = (
            sum(len(s) for s in combo),
            sum(len(s) for p, s in zip(people, combo) if p["id"] in priority),
            -sum(r * r for s in combo for r, _ in s),
        )
        best = score if best is None or score > best else best
    return best
