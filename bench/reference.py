"""Straightforward reference solver, used as the independent optimality check and as the
"straightforward baseline" timing of the benchmark.

It is deliberately built differently from services/matching/engine.py: it reads the
INSTANCE document with the standard json module, builds the graph in plain Python lists with
every layer for everybody (source → participant → participant×date → offer×organisation →
offer → sink), costs rank² only (no tie-break term), pre-assigns pinned/frozen pairs with
plain dictionaries and handles priority participants with a big-M cost instead of hubs.
It returns only the optimal objective (placements, sum of rank²), which is unique even
where assignments are not.

    python -m bench.reference INSTANCE.json   # prints {"assigned": .., "rank_cost": .., "seconds": ..}
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from ortools.graph.python import min_cost_flow


def optimum(doc: dict, frozen: list[tuple[str, str]] = (), priority: set[str] = frozenset()) -> tuple[int, int, int]:
    """(assigned, priority_assigned, rank_cost) of an optimal solution, fixed pairs included."""
    offers = {o["id"]: o for o in doc["offers"]}
    people = {p["id"]: p for p in doc["participants"]}
    forbidden = {(f["participant"], f["offer"]) for f in doc.get("forbidden", [])}
    fixed = list(dict.fromkeys(list(frozen) + [(f["participant"], f["offer"]) for f in doc.get("pinned", [])]))

    seats = {oid: o["capacity"] for oid, o in offers.items()}
    org_slots = {}  # (offer, org) -> places left, for offers with max_per_org
    visits = {pid: p.get("max_visits", 1) for pid, p in people.items()}
    busy_days = set()  # (participant, date) taken by fixed pairs
    assigned, priority_assigned, rank_cost = 0, 0, 0
    for pid, oid in fixed:
        p, o = people[pid], offers[oid]
        key = (oid, p["org"])
        org_slots.setdefault(key, o.get("max_per_org", o["capacity"]))
        ok = (
            oid in p["choices"] and o["host"] != p["org"] and (pid, oid) not in forbidden
            and o["date"] in p.get("available", [o["date"]])
            and seats[oid] > 0 and org_slots[key] > 0 and visits[pid] > 0 and (pid, o["date"]) not in busy_days
        )
        if not ok:
            raise ValueError(f"fixed pair {pid, oid} is infeasible")
        seats[oid] -= 1
        org_slots[key] -= 1
        visits[pid] -= 1
        busy_days.add((pid, o["date"]))
        assigned += 1
        priority_assigned += pid in priority
        rank_cost += (p["choices"].index(oid) + 1) ** 2

    # Node ids are handed out on first use.
    node_ids: dict[object, int] = {"source": 0, "sink": 1}

    def node(key: object) -> int:
        return node_ids.setdefault(key, len(node_ids))

    tails, heads, caps, costs = [], [], [], []

    def arc(tail: object, head: object, cap: int, cost: int = 0) -> None:
        tails.append(node(tail))
        heads.append(node(head))
        caps.append(cap)
        costs.append(cost)

    fixed_set = set(fixed)
    choice_arcs, choice_cost = [], []
    days, org_groups = {}, {}  # the participant×date and offer×organisation nodes in use
    for pid, p in people.items():
        for rank, oid in enumerate(p["choices"], start=1):
            o = offers[oid]
            if (
                o["host"] == p["org"] or (pid, oid) in forbidden or (pid, oid) in fixed_set
                or o["date"] not in p.get("available", [o["date"]]) or (pid, o["date"]) in busy_days
            ):
                continue
            choice_arcs.append(len(tails))
            choice_cost.append(rank * rank)
            arc(("day", pid, o["date"]), ("org", oid, p["org"]), 1, rank * rank)
            days[pid, o["date"]] = True
            org_groups[oid, p["org"]] = True
    # Priority: every non-priority placement costs more than any sum of rank² can differ.
    big = 1 + sum(visits.values()) * max(choice_cost, default=1) if priority else 0
    source_arcs = []
    for pid in people:
        source_arcs.append((len(tails), pid in priority))
        arc("source", ("person", pid), visits[pid], 0 if pid in priority else big)
    for pid, day in days:
        arc(("person", pid), ("day", pid, day), 1)
    for oid, org in org_groups:
        o = offers[oid]
        arc(("org", oid, org), ("offer", oid), org_slots.get((oid, org), o.get("max_per_org", o["capacity"])))
    for oid in offers:
        arc(("offer", oid), "sink", seats[oid])

    solver = min_cost_flow.SimpleMinCostFlow()
    if tails:
        solver.add_arcs_with_capacity_and_unit_cost(np.array(tails), np.array(heads), np.array(caps), np.array(costs))
    total = sum(visits.values())
    solver.set_nodes_supplies(np.array([0, 1]), np.array([total, -total]))
    status = solver.solve_max_flow_with_min_cost()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"reference solve failed: {status}")
    flows = [solver.flow(k) for k in choice_arcs]
    prio_flow = sum(solver.flow(k) for k, is_priority in source_arcs if is_priority)
    return (
        assigned + sum(flows),
        priority_assigned + prio_flow,
        rank_cost + sum(f * c for f, c in zip(flows, choice_cost)),
    )


def main() -> None:
    started = time.perf_counter()
    with open(sys.argv[1], "rb") as f:
        doc = json.load(f)
    assigned, _, rank_cost = optimum(doc)
    print(json.dumps({"assigned": assigned, "rank_cost": rank_cost, "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main()
