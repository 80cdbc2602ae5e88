"""Matching service rules (pure: no I/O) around the engine.

- `build_problem`: the edition's offers, active participants, frozen (published) assignments and
  displaced participants as an engine Problem. Cancelled offers stay in the problem with capacity 0
  so that a participant's ranks keep meaning what they chose ("my second choice" stays rank 2).
- `plan`: from the engine's result, what changes and what to announce: new assignments, and for
  people without any placement: waitlisted (some choice could take them if a seat frees up) or
  unmatched (no choice ever could), with the engine's explanation. Only changes are announced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.matching import engine


@dataclass(frozen=True)
class OfferRow:
    id: str
    host_org: str
    title: str
    date: date
    capacity: int
    max_per_org: int | None
    format: str
    location: str
    status: str = "published"


@dataclass(frozen=True)
class ParticipantRow:
    signup_id: str
    org: str
    name: str
    email: str
    language: str
    choices: list[str]
    available: list[date] | None
    max_visits: int
    signed_up_at: datetime


def build_problem(
    offers: Iterable[OfferRow],
    participants: Iterable[ParticipantRow],
    frozen: Iterable[tuple[str, str]] = (),
    priority: Iterable[str] = (),
) -> engine.Problem:
    offers = list(offers)
    known = {o.id for o in offers}
    people = [
        engine.Participant(
            id=p.signup_id,
            org=p.org,
            signed_up_at=p.signed_up_at,
            # An offer this service has not heard of yet cannot be matched; keep the rest in order.
            choices=tuple(c for c in p.choices if c in known),
            available=frozenset(p.available) if p.available else None,
            max_visits=p.max_visits,
        )
        for p in participants
    ]
    return engine.Problem(
        offers=[
            engine.Offer(
                id=o.id,
                host=o.host_org,
                date=o.date,
                capacity=o.capacity if o.status == "published" else 0,
                max_per_org=o.max_per_org,
            )
            for o in offers
        ],
        participants=people,
        frozen=frozenset(frozen),
        priority=frozenset(priority),
    )


def input_hash(problem: engine.Problem) -> str:
    """A fingerprint of the run's input, independent of row order (shown to organisers)."""
    doc = {
        "offers": sorted((o.id, o.host, o.date.isoformat(), o.capacity, o.max_per_org) for o in problem.offers),
        "participants": sorted(
            (p.id, p.org, p.signed_up_at.isoformat(), list(p.choices), sorted(d.isoformat() for d in p.available or []), p.max_visits)
            for p in problem.participants
        ),
        "frozen": sorted(problem.frozen),
        "priority": sorted(problem.priority),
    }
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    signup_id: str
    state: str  # assigned | waitlisted | unmatched
    reason_code: str | None = None
    reason: str = ""
    position: int | None = None


@dataclass
class Plan:
    new_assignments: list[engine.Assignment] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)  # every participant's state now
    announce: list[Outcome] = field(default_factory=list)  # waitlisted/unmatched states that changed


def plan(
    problem: engine.Problem,
    result: engine.Result,
    previous: Mapping[str, tuple[str, str | None]],
) -> Plan:
    """`previous`: signup_id -> (state, reason_code) as last announced."""
    out = Plan(new_assignments=[a for a in result.assignments if (a.participant, a.offer) not in problem.frozen])
    placed = {a.participant for a in result.assignments}
    out.outcomes += [Outcome(pid, "assigned") for pid in sorted(placed)]
    people = {p.id: p for p in problem.participants}
    offers = {o.id: o for o in problem.offers}
    position = 0
    for pid in engine.waiting_list(problem, result):
        explanation = result.explanations[pid]
        if _could_ever_be_placed(people[pid], offers):
            position += 1
            outcome = Outcome(pid, "waitlisted", explanation.code, explanation.text, position)
        else:
            outcome = Outcome(pid, "unmatched", explanation.code, explanation.text)
        out.outcomes.append(outcome)
        before = previous.get(pid)
        changed = before is None or before[0] != outcome.state or (outcome.state == "unmatched" and before[1] != outcome.reason_code)
        if changed:
            out.announce.append(outcome)
    return out


def _could_ever_be_placed(person: engine.Participant, offers: Mapping[str, engine.Offer]) -> bool:
    """True if a freed seat on one of their choices could go to them (the waiting list's test)."""
    return any(
        offers[c].capacity > 0
        and offers[c].host != person.org
        and (person.available is None or offers[c].date in person.available)
        for c in person.choices
    )


def figures(
    problem: engine.Problem, result: engine.Result, newly_assigned: int, outcomes: list[Outcome], duration_ms: int
) -> dict[str, Any]:
    return {
        "input_hash": input_hash(problem),
        "participants": len(problem.participants),
        "offers": sum(1 for o in problem.offers if o.capacity > 0),
        "assigned": result.assigned,
        "newly_assigned": newly_assigned,
        "waitlisted": sum(1 for o in outcomes if o.state == "waitlisted"),
        "unmatched": sum(1 for o in outcomes if o.state == "unmatched"),
        "rank_cost": result.rank_cost,
        "duration_ms": duration_ms,
    }
