"""Matching service rules (pure: no I/O) around the engine.

- `build_problem`: the edition's offers, active participants, frozen (published) assignments and
  displaced participants as an engine Problem. Cancelled offers stay in the problem with capacity 0
  so that a participant's ranks keep meaning what they chose ("my second choice" stays rank 2).
- `plan`: from the engine's result, what changes and what to announce: new assignments, and for
  people without any placement: waitlisted (some choice could take them if a seat frees up) or
  unmatched (no choice ever could), with the engine's explanation. Only changes are announced.
- Seat offers: after publication, a seat that a later run gives to someone who was told they wait
  (waitlisted, or holding a seat offer already) is offered, not assigned: it is held for them until
  `offer_expiry`, and they accept or decline it. A declined or expired pair is never placed again;
  an offer that can no longer be made in time (`offer_expiry` is None) is not placed either, so the
  person keeps waiting and the seat stays free for a direct assignment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
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


#: What a participant was last told, when a seat a later run finds for them is offered, not assigned.
WAITING_STATES = frozenset({"waitlisted", "offered"})
#: The unmatched reason of someone whose every possible choice was declined or let expire.
SEAT_OFFERS_ENDED = "seat_offers_ended"
#: Every seat offer ends at the latest at this local time on the day before the visit.
LATEST_OFFER_TIME = time(23, 59)


def build_problem(
    offers: Iterable[OfferRow],
    participants: Iterable[ParticipantRow],
    frozen: Iterable[tuple[str, str]] = (),
    priority: Iterable[str] = (),
    declined: Iterable[tuple[str, str]] = (),
    waiting: Collection[str] = (),
    too_late: Collection[str] = (),
) -> engine.Problem:
    """`declined`: pairs whose seat offer was declined or expired (never placed again). `waiting`:
    participants who would be offered a seat rather than assigned one: one seat at a time, and not
    on the offers in `too_late` (those whose seat offers could not end before the day of the visit)."""
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
            max_visits=1 if p.signup_id in waiting else p.max_visits,
        )
        for p in participants
    ]
    engine_offers = [
        engine.Offer(
            id=o.id,
            host=o.host_org,
            date=o.date,
            capacity=o.capacity if o.status == "published" else 0,
            max_per_org=o.max_per_org,
        )
        for o in offers
    ]
    frozen = frozenset(frozen)
    present = {p.id for p in people}
    late = _too_late_pairs(people, {o.id: o for o in engine_offers}, waiting, too_late) - frozen
    return engine.Problem(
        offers=engine_offers,
        participants=people,
        forbidden=frozenset(pair for pair in declined if pair[0] in present and pair[1] in known) | late,
        frozen=frozen,
        priority=frozenset(priority),
    )


def _too_late_pairs(
    people: Iterable[engine.Participant], offers: Mapping[str, engine.Offer], waiting: Collection[str], too_late: Collection[str]
) -> set[tuple[str, str]]:
    """Pairs a waiting person could take but can no longer be offered (only those: an impossible
    choice keeps the engine's own reason, own organisation or unavailable, in the explanation)."""
    return {
        (p.id, c) for p in people if p.id in waiting for c in p.choices if c in too_late and _could_take(p, offers[c])
    }


def offer_expiry(now: datetime, visit: date, hours: float, tz: tzinfo) -> datetime | None:
    """When a seat offer made at `now` for a visit on `visit` ends: `hours` later, but never after
    the day before the visit (LATEST_OFFER_TIME, local time in `tz`). None when that moment has
    passed: then no offer is made."""
    latest = datetime.combine(visit - timedelta(days=1), LATEST_OFFER_TIME, tzinfo=tz)
    expires = min(now + timedelta(hours=hours), latest)
    return expires if expires > now else None


def seat_offer_state(status: str, expires_at: datetime, now: datetime) -> str:
    """What became of a seat offer (an assignment row that was offered): open, accepted, declined,
    expired (also when its time is up and the expiry loop has not ended it yet), withdrawn (the
    participant withdrew) or cancelled (the host cancelled the offer)."""
    if status == "offered":
        return "open" if expires_at > now else "expired"
    return {"active": "accepted", "released": "withdrawn", "displaced": "cancelled"}.get(status, status)


def input_hash(problem: engine.Problem) -> str:
    """A fingerprint of the run's input, independent of row order (shown to organisers)."""
    doc = {
        "offers": sorted((o.id, o.host, o.date.isoformat(), o.capacity, o.max_per_org) for o in problem.offers),
        "participants": sorted(
            (p.id, p.org, p.signed_up_at.isoformat(), list(p.choices), sorted(d.isoformat() for d in p.available or []), p.max_visits)
            for p in problem.participants
        ),
        "frozen": sorted(problem.frozen),
        "forbidden": sorted(problem.forbidden),
        "priority": sorted(problem.priority),
    }
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    signup_id: str
    state: str  # assigned | offered (holds a seat offer) | waitlisted | unmatched
    reason_code: str | None = None
    reason: str = ""
    position: int | None = None


@dataclass
class Plan:
    new_assignments: list[engine.Assignment] = field(default_factory=list)
    new_offers: list[engine.Assignment] = field(default_factory=list)  # seats offered to people who wait
    outcomes: list[Outcome] = field(default_factory=list)  # every participant's state now
    announce: list[Outcome] = field(default_factory=list)  # waitlisted/unmatched states that changed


def plan(
    problem: engine.Problem,
    result: engine.Result,
    previous: Mapping[str, tuple[str, str | None]],
    open_offers: Collection[tuple[str, str]] = frozenset(),
    declined: Collection[tuple[str, str]] = frozenset(),
) -> Plan:
    """`previous`: signup_id -> (state, reason_code) as last announced. `open_offers`: the frozen
    pairs that are seat offers nobody answered yet. `declined`: pairs declined or let expire."""
    new = [a for a in result.assignments if (a.participant, a.offer) not in problem.frozen]
    offered = [a for a in new if previous.get(a.participant, ("",))[0] in WAITING_STATES]
    out = Plan(new_assignments=[a for a in new if a not in offered], new_offers=offered)
    holding = {(a.participant, a.offer) for a in offered} | set(open_offers)
    placed = {a.participant for a in result.assignments}
    assigned = {a.participant for a in result.assignments if (a.participant, a.offer) not in holding}
    out.outcomes += [Outcome(pid, "assigned" if pid in assigned else "offered") for pid in sorted(placed)]
    people = {p.id: p for p in problem.participants}
    offers = {o.id: o for o in problem.offers}
    position = 0
    for pid in engine.waiting_list(problem, result):
        explanation = result.explanations[pid]
        if _could_ever_be_placed(people[pid], offers, declined):
            position += 1
            outcome = Outcome(pid, "waitlisted", explanation.code, explanation.text, position)
        elif explanation.code == "forbidden":  # here: every possible choice was declined or expired
            outcome = Outcome(pid, "unmatched", SEAT_OFFERS_ENDED, "Declined, or did not accept in time, every seat offered.")
        else:
            outcome = Outcome(pid, "unmatched", explanation.code, explanation.text)
        out.outcomes.append(outcome)
        before = previous.get(pid)
        changed = before is None or before[0] != outcome.state or (outcome.state == "unmatched" and before[1] != outcome.reason_code)
        if changed:
            out.announce.append(outcome)
    return out


def _could_ever_be_placed(
    person: engine.Participant, offers: Mapping[str, engine.Offer], declined: Collection[tuple[str, str]]
) -> bool:
    """True if a freed seat on one of their choices could go to them (the waiting list's test)."""
    return any(_could_take(person, offers[c]) and (person.id, c) not in declined for c in person.choices)


def _could_take(person: engine.Participant, offer: engine.Offer) -> bool:
    return offer.capacity > 0 and offer.host != person.org and (person.available is None or offer.date in person.available)


def figures(
    problem: engine.Problem,
    result: engine.Result,
    newly_assigned: int,
    outcomes: list[Outcome],
    duration_ms: int,
    newly_offered: int = 0,
) -> dict[str, Any]:
    return {
        "input_hash": input_hash(problem),
        "participants": len(problem.participants),
        "offers": sum(1 for o in problem.offers if o.capacity > 0),
        "assigned": result.assigned,
        "newly_assigned": newly_assigned,
        "newly_offered": newly_offered,
        "waitlisted": sum(1 for o in outcomes if o.state == "waitlisted"),
        "unmatched": sum(1 for o in outcomes if o.state == "unmatched"),
        "rank_cost": result.rank_cost,
        "duration_ms": duration_ms,
    }
