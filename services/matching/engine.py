"""Estafette matching engine: who visits which offer. Pure functions, no I/O.

The problem
-----------
Participants rank the offers they would like to visit (rank 1 = first choice). A participant
may only be placed on an offer they chose, never at their own organisation, only on a date
they are available, at most `max_visits` times and never twice on one date. An offer takes
at most `capacity` participants and, if `max_per_org` is set, at most that many from any one
organisation. Organisers may pin pairs (always placed) and forbid pairs (never placed).

The objective, lexicographically:
  1. maximise the number of placements;
  2. maximise the placements of `priority` participants (people displaced by a cancelled
     offer during re-matching; without priority participants this level is void);
  3. minimise the sum of rank² over all placements (prefers 2+2 to 1+3);
  4. break the remaining ties in favour of earlier sign-ups (see `_tie_costs`; at very
     large scale only the weaker form fits the solver's int64 costs, see TIE_BREAKS).

The model: min-cost max-flow
----------------------------
    source → participant            capacity = visits left, cost 0
    participant → participant×date  capacity 1 (one visit a day)          [only if needed]
    … → offer×organisation          capacity 1 per choice, cost M·rank² + tie
    offer×organisation → offer      capacity = per-organisation cap       [only if needed]
    offer → sink                    capacity = seats left

The participant×date node exists only for a participant with two or more visits left and at
least two possible choices on that date; the offer×organisation node only where
`max_per_org` binds, i.e. more people of that organisation chose the offer than the cap
allows. Elsewhere the choice arc runs straight from the participant / to the offer.
OR-Tools' `solve_max_flow_with_min_cost` first maximises the flow (level 1), then minimises
the cost M·rank² + tie. Level 3 dominates level 4 because of the choice of M
(`_rank_weight` proves it).
Level 2 is solved exactly by a first, cheap solve that finds the best number K of priority
placements; the final solve then routes exactly K units through a "priority hub" node and
the rest through a "general hub", so it cannot trade priority placements for rank.

Pinned and frozen pairs are fixed before the flow is built: they take their seat, their
organisation slot and their date, and the flow only distributes what is left. Frozen
participants with visits left (max_visits > 1) may get more visits, on other dates only.
A pinned pair must be feasible (MatchingError otherwise). A frozen pair is a published fact: it
keeps its seat even when the offer changed since it was published (its capacity or organisation
cap lowered below the seats taken, a new date the participant did not give as available); the
offer then has no room left for anybody else. Only a frozen pair the participant did not choose
is refused.

Explanations: everyone who is not placed gets an explanation whose `code` is a published
unmatched reason (schemas/reasons.py: all_full, own_org, unavailable, org_cap, forbidden,
no_choices, mixed), with the per-choice reasons in `choices` (there `full` means: that one offer
was full).

Determinism: offers are sorted by id and participants by (sign-up time, id) before the graph
is built, so the graph, and therefore the solver's answer, does not depend on input order.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from schemas.reasons import REASON_TEXTS, UnmatchedReason

INT64_MAX = 2**63 - 1

ProgressFn = Callable[[str, float], None]
"""Called as progress(stage, fraction_done) with fraction_done in [0, 1]."""


# ----------------------------------------------------------------------------- data


@dataclass(slots=True)
class Offer:
    id: str
    host_org: str  # the host organisation's id
    date: dt.date
    capacity: int
    max_per_org: int | None = None


@dataclass(slots=True)
class Participant:
    id: str
    org: str
    signed_up_at: dt.datetime  # timezone-aware
    choices: tuple[str, ...]  # offer ids, first choice first
    available: frozenset[dt.date] | None = None  # None: available on every date
    max_visits: int = 1


Pair = tuple[str, str]  # (participant id, offer id)


@dataclass(frozen=True)
class Problem:
    offers: Sequence[Offer]
    participants: Sequence[Participant]
    pinned: Collection[Pair] = frozenset()  # organiser: always place
    forbidden: Collection[Pair] = frozenset()  # organiser: never place
    frozen: Collection[Pair] = frozenset()  # already published: keep exactly
    priority: Collection[str] = frozenset()  # participant ids to place before others


@dataclass(frozen=True, slots=True)
class Assignment:
    participant: str
    offer: str
    rank: int


@dataclass(frozen=True, slots=True)
class ChoiceNote:
    """Why one choice of a participant was not used."""

    offer: str
    rank: int
    reason: str  # one of CHOICE_REASONS


@dataclass(frozen=True, slots=True)
class Explanation:
    code: str  # "placed" or one of UNMATCHED_CODES (published codes, schemas/reasons.py)
    text: str  # short English sentence (REASON_TEXTS); services translate from `code`
    ranks: tuple[int, ...] = ()  # ranks of the placements, if placed
    choices: tuple[ChoiceNote, ...] = ()  # per-choice reasons, if unmatched


@dataclass(frozen=True)
class Result:
    assignments: tuple[Assignment, ...]  # participants in sign-up order, then by rank
    unmatched: tuple[str, ...]  # participants without any placement, in sign-up order
    assigned: int
    rank_cost: int  # sum of rank² over all assignments
    explanations: dict[str, Explanation] = field(repr=False)
    tie_break: str = ""  # the scheme of TIE_BREAKS that decided equal-cost alternatives


class MatchingError(ValueError):
    """The problem is inconsistent, e.g. a pinned pair that cannot be placed."""


# Per-choice reasons (ChoiceNote.reason), in order of precedence when several apply. These
# describe ONE choice ("full"); the code for a person who was not placed at all is a published
# unmatched reason (schemas/reasons.py), see UNMATCHED_CODE_OF.
CHOICE_REASONS = {
    "forbidden": "excluded by the organisers",
    "own_org": "at their own organisation",
    "unavailable": "on a day they are not available",
    "full": "full",
    "org_cap": "at its limit for their organisation",
}
_STATIC_OK, _FORBIDDEN, _OWN_ORG, _UNAVAILABLE = 0, 1, 2, 3

#: The unmatched code of a person whose every choice failed for the same per-choice reason.
UNMATCHED_CODE_OF: dict[str, UnmatchedReason] = {
    "forbidden": "forbidden",
    "own_org": "own_org",
    "unavailable": "unavailable",
    "full": "all_full",
    "org_cap": "org_cap",
}
#: Every code the engine can give an unmatched person, with its text: published codes only.
UNMATCHED_CODES: dict[str, str] = {
    code: REASON_TEXTS[code] for code in ("no_choices", *UNMATCHED_CODE_OF.values(), "mixed")
}


# ----------------------------------------------------------------------------- public API


def solve(problem: Problem, progress: ProgressFn | None = None) -> Result:
    """Optimal assignment for `problem` (see the module docstring for the objective)."""
    report = progress or (lambda stage, fraction: None)
    report("prepare", 0.0)
    inst = _Indexed(problem)
    report("build", 0.1)
    graph = _Graph(inst)
    report("solve", 0.3)
    chosen = graph.solve(report)
    report("explain", 0.9)
    result = _build_result(inst, chosen, graph.tie_break)
    report("done", 1.0)
    return result


def rematch(
    problem: Problem, frozen: Collection[Pair], previous: Result, progress: ProgressFn | None = None
) -> Result:
    """Re-match after publication, e.g. when an offer was cancelled.

    `frozen` are the published pairs that must stay exactly as they are (typically every
    assignment of `previous` except those on cancelled offers; they must still be feasible
    in `problem`). Keep a cancelled offer in `problem` with capacity 0, so that choices
    still refer to it and ranks do not shift. Everyone who had an assignment in `previous` that is not frozen is
    displaced and gets priority. Free seats are then matched optimally among all remaining
    participants under the usual objective, displaced people first.
    """
    frozen = frozenset(frozen)
    displaced = {a.participant for a in previous.assignments if (a.participant, a.offer) not in frozen}
    return solve(replace(problem, frozen=frozen, priority=frozenset(problem.priority) | displaced), progress)


def waiting_list(problem: Problem, result: Result) -> list[str]:
    """Unmatched participants in waiting order: those with at least one choice they could
    be placed on if it had room (chosen, not at their own organisation, on an available day,
    not forbidden) first, then by sign-up time, then by id."""
    offers = {o.id: o for o in problem.offers}
    forbidden = set(problem.forbidden)
    unmatched = set(result.unmatched)
    entries = []
    for p in problem.participants:
        if p.id in unmatched:
            hopeless = not any(_could_visit(p, offers[c], forbidden) for c in p.choices)
            entries.append((hopeless, p.signed_up_at, p.id))
    entries.sort()
    return [pid for _, _, pid in entries]


def next_for_seat(problem: Problem, result: Result, offer_id: str) -> str | None:
    """The first participant on the waiting list who may take a freed seat on `offer_id`:
    they chose it, could visit it and their organisation is below the offer's cap in
    `result` (which must already reflect the freed seat). None if nobody qualifies."""
    offers = {o.id: o for o in problem.offers}
    offer = offers.get(offer_id)
    if offer is None:
        raise MatchingError(f'offer "{offer_id}" is not an offer of this problem')
    forbidden = set(problem.forbidden)
    people = {p.id: p for p in problem.participants}
    org_count = Counter(people[a.participant].org for a in result.assignments if a.offer == offer_id)
    for pid in waiting_list(problem, result):
        p = people[pid]
        if offer_id not in p.choices or not _could_visit(p, offer, forbidden):
            continue
        if offer.max_per_org is not None and org_count[p.org] >= offer.max_per_org:
            continue
        return pid
    return None


def _could_visit(p: Participant, offer: Offer, forbidden: Collection[Pair]) -> bool:
    return (
        offer.host_org != p.org
        and (p.available is None or offer.date in p.available)
        and (p.id, offer.id) not in forbidden
    )


# ----------------------------------------------------------------------------- indexing


class _Indexed:
    """The problem in canonical order as numpy arrays, with fixed pairs already applied.

    Participants are numbered 0..P-1 by (sign-up time, id), offers 0..O-1 by id. Every
    choice is one row of the `ch_*` arrays, participant by participant, in rank order.
    """

    def __init__(self, problem: Problem) -> None:
        self.offers = sorted(problem.offers, key=lambda o: o.id)
        self.people = sorted(problem.participants, key=lambda p: (p.signed_up_at, p.id))
        offer_ix = {o.id: j for j, o in enumerate(self.offers)}
        person_ix = {p.id: i for i, p in enumerate(self.people)}
        if len(offer_ix) != len(self.offers):
            raise MatchingError(f'duplicate offer id "{_first_duplicate(o.id for o in self.offers)}"')
        if len(person_ix) != len(self.people):
            raise MatchingError(f'duplicate participant id "{_first_duplicate(p.id for p in self.people)}"')
        self.offer_ix, self.person_ix = offer_ix, person_ix
        n_people, n_offers = len(self.people), len(self.offers)

        # Organisations and dates as small integers.
        org_ix: dict[str, int] = {}
        self.host_org = np.array([org_ix.setdefault(o.host_org, len(org_ix)) for o in self.offers], dtype=np.int64)
        self.org = np.array([org_ix.setdefault(p.org, len(org_ix)) for p in self.people], dtype=np.int64)
        self.n_orgs = len(org_ix)
        dates = sorted({o.date for o in self.offers})
        date_ix = {d: k for k, d in enumerate(dates)}
        self.n_dates = len(dates)
        self.offer_date = np.array([date_ix[o.date] for o in self.offers], dtype=np.int64)
        self.capacity = np.array([o.capacity for o in self.offers], dtype=np.int64)
        self.max_per_org = np.array(
            [-1 if o.max_per_org is None else o.max_per_org for o in self.offers], dtype=np.int64
        )  # -1: no cap
        for o in self.offers:
            if o.capacity < 0 or (o.max_per_org is not None and o.max_per_org < 0):
                raise MatchingError(f'offer "{o.id}": capacity and max_per_org must not be negative')

        # Choices, flattened.
        flat: list[int] = []
        counts = np.zeros(n_people, dtype=np.int64)
        restricted_keys: list[int] = []  # i * n_dates + date for restricted participants
        all_dates = np.ones(n_people, dtype=bool)
        visits = np.zeros(n_people, dtype=np.int64)
        for i, p in enumerate(self.people):
            try:
                row = [offer_ix[c] for c in p.choices]
            except KeyError as exc:
                raise MatchingError(f'participant "{p.id}": choice "{exc.args[0]}" is not an offer') from None
            if len(set(row)) != len(row):
                raise MatchingError(f'participant "{p.id}": an offer is chosen twice')
            if p.max_visits < 1:
                raise MatchingError(f'participant "{p.id}": max_visits must be at least 1')
            flat.extend(row)
            counts[i] = len(row)
            visits[i] = p.max_visits
            if p.available is not None:
                all_dates[i] = False
                restricted_keys.extend(i * self.n_dates + date_ix[d] for d in p.available if d in date_ix)
        self.ch_offer = np.array(flat, dtype=np.int64)
        self.ch_person = np.repeat(np.arange(n_people, dtype=np.int64), counts)
        self.start = np.concatenate([[0], np.cumsum(counts)])  # choices of i: start[i]:start[i+1]
        self.ch_rank = np.arange(len(flat), dtype=np.int64) - self.start[self.ch_person] + 1
        self.ch_date = self.offer_date[self.ch_offer]
        self.ch_org = self.org[self.ch_person]

        # Static feasibility of every choice; later assignments win (precedence order).
        reason = np.full(len(flat), _STATIC_OK, dtype=np.int8)
        available = all_dates[self.ch_person] | np.isin(
            self.ch_person * self.n_dates + self.ch_date, np.array(restricted_keys, dtype=np.int64)
        )
        reason[~available] = _UNAVAILABLE
        reason[self.host_org[self.ch_offer] == self.ch_org] = _OWN_ORG
        forbidden = [self._choice_of(pair, "forbidden", must_be_chosen=False) for pair in problem.forbidden]
        reason[[c for c in forbidden if c is not None]] = _FORBIDDEN
        self.static_reason = reason

        # Pinned and frozen pairs take their resources before the flow is built.
        self.fixed = np.zeros(len(flat), dtype=bool)
        self.visits_left = visits
        self.seats_left = self.capacity.copy()
        self.org_used: Counter[tuple[int, int]] = Counter()  # (offer, org) -> fixed visits
        taken_dates: set[tuple[int, int]] = set()
        fixed_pairs = [(pair, "frozen") for pair in sorted(set(problem.frozen))]
        fixed_pairs += [(pair, "pinned") for pair in sorted(set(problem.pinned) - set(problem.frozen))]
        for pair, kind in fixed_pairs:
            c = self._choice_of(pair, kind, must_be_chosen=True)
            i, j = int(self.ch_person[c]), int(self.ch_offer[c])
            problem_text = {
                _FORBIDDEN: "the pair is forbidden",
                _OWN_ORG: "the offer is at the participant's own organisation",
                _UNAVAILABLE: "the participant is not available on the offer's date",
            }.get(int(reason[c]))
            if problem_text is None and self.seats_left[j] == 0:
                problem_text = "the offer has no capacity left"
            if problem_text is None and self.max_per_org[j] >= 0 and self.org_used[j, self.org[i]] >= self.max_per_org[j]:
                problem_text = "the offer's limit for the participant's organisation is reached"
            if problem_text is None and self.visits_left[i] == 0:
                problem_text = "the participant has no visits left"
            if problem_text is None and (i, int(self.offer_date[j])) in taken_dates:
                problem_text = "the participant already visits another offer that day"
            if problem_text is not None and kind == "pinned":
                raise MatchingError(f'{kind} pair (participant "{pair[0]}", offer "{pair[1]}") cannot be placed: {problem_text}')
            self.fixed[c] = True  # a frozen pair keeps its seat whatever changed since (module doc)
            self.visits_left[i] = max(self.visits_left[i] - 1, 0)
            self.seats_left[j] = max(self.seats_left[j] - 1, 0)
            self.org_used[j, int(self.org[i])] += 1
            taken_dates.add((i, int(self.offer_date[j])))
        self.date_taken = np.isin(
            self.ch_person * self.n_dates + self.ch_date,
            np.array([i * self.n_dates + d for i, d in taken_dates], dtype=np.int64),
        )

        unknown = [pid for pid in problem.priority if pid not in person_ix]
        if unknown:
            raise MatchingError(f'priority participant "{sorted(unknown)[0]}" is not a participant')
        self.priority = np.zeros(n_people, dtype=bool)
        self.priority[[person_ix[pid] for pid in problem.priority]] = True

    def _choice_of(self, pair: Pair, kind: str, must_be_chosen: bool) -> int | None:
        """Row of the choice `pair`, or None if the participant did not choose the offer."""
        pid, oid = pair
        if pid not in self.person_ix:
            raise MatchingError(f'{kind} pair: "{pid}" is not a participant')
        if oid not in self.offer_ix:
            raise MatchingError(f'{kind} pair: "{oid}" is not an offer')
        i = self.person_ix[pid]
        choices = self.people[i].choices
        if oid not in choices:
            if must_be_chosen:
                raise MatchingError(f'{kind} pair (participant "{pid}", offer "{oid}"): the participant did not choose this offer')
            return None
        return int(self.start[i]) + choices.index(oid)

    def org_slots_left(self, rows: np.ndarray) -> np.ndarray:
        """For choice rows on offers with max_per_org: places left for the chooser's org."""
        cap = self.max_per_org[self.ch_offer[rows]]
        used = np.array(
            [self.org_used.get((int(j), int(g)), 0) for j, g in zip(self.ch_offer[rows], self.ch_org[rows])]
            if self.org_used
            else np.zeros(len(rows)),
            dtype=np.int64,
        )
        return cap - used


def _first_duplicate(ids) -> str:
    seen = set()
    for x in ids:
        if x in seen:
            return x
        seen.add(x)
    raise AssertionError("no duplicate")


# ----------------------------------------------------------------------------- flow graph


class _Graph:
    """The flow network of the module docstring, as parallel numpy arrays (one row per arc)."""

    def __init__(self, inst: _Indexed) -> None:
        self.inst = inst
        n_people, n_offers = len(inst.people), len(inst.offers)

        # Choices that may still be used by the flow.
        usable = (
            (inst.static_reason == _STATIC_OK)
            & ~inst.fixed
            & ~inst.date_taken
            & (inst.visits_left[inst.ch_person] > 0)
            & (inst.seats_left[inst.ch_offer] > 0)
        )
        capped = usable & (inst.max_per_org[inst.ch_offer] >= 0)
        capped_rows = np.flatnonzero(capped)
        usable[capped_rows[inst.org_slots_left(capped_rows) <= 0]] = False
        self.rows = rows = np.flatnonzero(usable)  # the choice arcs, in canonical order
        person, offer = inst.ch_person[rows], inst.ch_offer[rows]

        # Node numbering: 0 source, 1 sink, 2 priority hub, 3 general hub, then participants,
        # offers, participant×date nodes, offer×organisation nodes.
        self.SOURCE, self.SINK, self.HUB_PRIORITY, self.HUB_GENERAL = 0, 1, 2, 3
        person_node = 4 + np.arange(n_people, dtype=np.int64)
        offer_node = 4 + n_people + np.arange(n_offers, dtype=np.int64)
        next_node = 4 + n_people + n_offers

        # participant×date layer: two or more visits left and ≥ 2 usable choices that day.
        tail = person_node[person]
        day_key = person * inst.n_dates + inst.ch_date[rows]
        multi = inst.visits_left[person] > 1
        keys, inverse, count = np.unique(day_key[multi], return_inverse=True, return_counts=True)
        layered = count >= 2
        day_node = np.full(len(keys), -1, dtype=np.int64)
        day_node[layered] = next_node + np.arange(layered.sum())
        next_node += int(layered.sum())
        multi_rows = np.flatnonzero(multi)
        tail[multi_rows[layered[inverse]]] = day_node[inverse[layered[inverse]]]
        day_arcs_tail = person_node[keys[layered] // inst.n_dates]
        day_arcs_head = day_node[layered]

        # offer×organisation layer: where more of one org chose the offer than the cap allows.
        head = offer_node[offer]
        on_capped = inst.max_per_org[offer] >= 0
        cap_rows = np.flatnonzero(on_capped)
        org_key = offer[on_capped] * inst.n_orgs + inst.ch_org[rows[on_capped]]
        keys, first, inverse, count = np.unique(org_key, return_index=True, return_inverse=True, return_counts=True)
        slots = inst.org_slots_left(rows[cap_rows[first]])
        binding = count > slots
        org_node = np.full(len(keys), -1, dtype=np.int64)
        org_node[binding] = next_node + np.arange(binding.sum())
        next_node += int(binding.sum())
        head[cap_rows[binding[inverse]]] = org_node[inverse[binding[inverse]]]
        org_arcs_tail = org_node[binding]
        org_arcs_head = offer_node[keys[binding] // inst.n_orgs]
        org_arcs_cap = slots[binding]
        self.num_nodes = next_node

        # Arcs, in a fixed canonical order: hubs, source side, day layer, choices, org layer, sink side.
        has_arc = np.zeros(n_people, dtype=bool)
        has_arc[person] = True
        people = np.flatnonzero(has_arc)
        offers = np.unique(offer)
        hub = np.where(inst.priority[people], self.HUB_PRIORITY, self.HUB_GENERAL)
        total = int(inst.visits_left[people].sum())
        parts = [
            # (tails, heads, capacities, kind)
            (np.array([self.SOURCE, self.SOURCE]), np.array([self.HUB_PRIORITY, self.HUB_GENERAL]), np.array([total, total]), "hub"),
            (hub, person_node[people], inst.visits_left[people], "person"),
            (day_arcs_tail, day_arcs_head, np.ones(len(day_arcs_head), dtype=np.int64), "day"),
            (tail, head, np.ones(len(rows), dtype=np.int64), "choice"),
            (org_arcs_tail, org_arcs_head, org_arcs_cap, "org"),
            (offer_node[offers], np.full(len(offers), self.SINK), inst.seats_left[offers], "offer"),
        ]
        self.span: dict[str, slice] = {}
        at = 0
        for tails, _, _, kind in parts:
            self.span[kind] = slice(at, at + len(tails))
            at += len(tails)
        self.tails = np.concatenate([p[0] for p in parts]).astype(np.int64)
        self.heads = np.concatenate([p[1] for p in parts]).astype(np.int64)
        self.caps = np.concatenate([p[2] for p in parts]).astype(np.int64)
        self.total = total
        self.hub_people_priority = inst.priority[people]
        # Distinct tails / heads of choice arcs: bounds the choice arcs on a cycle.
        self.cycle_bound = min(len(np.unique(tail)), len(np.unique(head)))

    def solve(self, report: ProgressFn) -> np.ndarray:
        """Solve; returns the choice rows that carry flow."""
        inst, rows = self.inst, self.rows
        caps = self.caps.copy()
        costs = np.zeros(len(self.tails), dtype=np.int64)
        hubs = self.span["hub"]
        if self.hub_people_priority.any():
            # Level 2: the best number K of priority placements among maximum flows. Cost 1
            # per unit through the general hub, nothing else costs.
            costs[hubs] = [0, 1]
            flows = _min_cost_max_flow(self.num_nodes, self.tails, self.heads, caps, costs, self.total)
            priority_flow, general_flow = flows[hubs]
            caps[hubs] = [priority_flow, general_flow]  # exactly K through the priority hub
            report("solve", 0.6)
        costs[hubs] = 0
        person, rank = inst.ch_person[rows], inst.ch_rank[rows]
        for scheme in TIE_BREAKS:
            choice_costs = _choice_costs(scheme, person, rank, len(inst.people), self.cycle_bound, self.num_nodes)
            if choice_costs is None:
                continue  # too large for this instance; try the next, weaker scheme
            costs[self.span["choice"]] = choice_costs
            try:
                flows = _min_cost_max_flow(self.num_nodes, self.tails, self.heads, caps, costs, self.total)
            except _CostRangeError:
                continue
            self.tie_break = scheme
            return rows[flows[self.span["choice"]] > 0]
        raise AssertionError("rank² costs alone always fit")


# Tie-break schemes, strongest first. "sign-up+swaps" is the full tie term of `_tie_costs`;
# "sign-up" keeps only the preference for placing earlier sign-ups (tie = i, much smaller
# costs); "none" leaves ties to the canonical arc order. The first scheme whose costs the
# solver accepts is used: in practice "sign-up+swaps" up to national scale, "sign-up" at
# 500,000 participants.
TIE_BREAKS = ("sign-up+swaps", "sign-up", "none")

# OR-Tools multiplies costs by (nodes + 1) and its node potentials must stay within int64
# below that; a solve with scaled costs at 1/5 of int64 failed (BAD_COST_RANGE), 1/48
# worked. Schemes with less headroom than this are skipped without trying.
COST_HEADROOM = 32


def _choice_costs(
    scheme: str, person: np.ndarray, rank: np.ndarray, n_people: int, cycle_bound: int, num_nodes: int
) -> np.ndarray | None:
    """Costs of the choice arcs under `scheme`, or None if they would be too large."""
    max_rank = int(rank.max(initial=1))
    if scheme == "none":
        return rank * rank
    max_tie = _max_tie(n_people, max_rank) if scheme == "sign-up+swaps" else max(n_people - 1, 0)
    weight = _rank_weight(cycle_bound, max_tie)
    if (weight * max_rank**2 + max_tie) * (num_nodes + 1) * COST_HEADROOM > INT64_MAX:
        return None
    tie = _tie_costs(person, rank, n_people) if scheme == "sign-up+swaps" else person
    return weight * rank * rank + tie


def _rank_weight(cycle_bound: int, max_tie: int) -> int:
    """M in `cost = M·rank² + tie`, large enough that rank² always dominates the tie term.

    Why M = cycle_bound · T + 1 is enough (T = largest tie term, cycle_bound = the smaller of
    the numbers of distinct tails and distinct heads of choice arcs): suppose the min-cost
    maximum flow f had a larger rank² sum than some other maximum flow g. g − f splits into
    simple cycles of f's residual network, one of which, C, lowers the rank² sum by at least
    1. Only choice arcs have cost. C uses each node at most once, so it has at most
    cycle_bound forward choice arcs, and each adds at most T of tie cost (backward arcs only
    subtract). Pushing one unit around C therefore changes f's cost by at most -M +
    cycle_bound·T < 0, so f was not of minimum cost: contradiction. The bound counts
    offer-side nodes (offers, offer×org nodes), typically far fewer than participants, which
    keeps M, and so the costs, small (the solver is int64 throughout).
    """
    return cycle_bound * max_tie + 1


def _max_tie(n_people: int, max_rank: int) -> int:
    return (2 * max_rank - 1) * max(n_people - 1, 0)


def _tie_costs(person: np.ndarray, rank: np.ndarray, n_people: int) -> np.ndarray:
    """Tie-break term of a choice arc of participant i (0 = earliest sign-up) at rank r:

        tie(i, r) = R·i + (P − 1 − i)·(r − 1),   R = largest rank, P = participants.

    It is in [0, (2R − 1)(P − 1)] and
      * at any rank r it grows with i (by R − r + 1 ≥ 1 per step), so of two people who
        could take the same seat at the same rank, the earlier sign-up gets it;
      * its growth with the rank, P − 1 − i, is steeper for earlier sign-ups, so when two
        people could swap ranks (1 and 2 against 2 and 1), the earlier one gets the better.
    """
    max_rank = int(rank.max(initial=1))
    return max_rank * person + (n_people - 1 - person) * (rank - 1)


class _CostRangeError(Exception):
    """The solver found the costs too large for int64 arithmetic."""


def _min_cost_max_flow(
    num_nodes: int, tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, costs: np.ndarray, total: int
) -> np.ndarray:
    """Maximum flow of minimum cost from node 0 to node 1; returns the flow on every arc."""
    from ortools.graph.python import min_cost_flow

    solver = min_cost_flow.SimpleMinCostFlow()
    if len(tails):
        solver.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    # Supplies are required: without them the solver sends no flow at all.
    solver.set_nodes_supplies(np.array([0, 1]), np.array([total, -total]))
    status = solver.solve_max_flow_with_min_cost()
    if status == solver.BAD_COST_RANGE:
        raise _CostRangeError()
    if status != solver.OPTIMAL:
        raise MatchingError(f"min-cost flow solver failed with status {status}")
    return solver.flows(np.arange(len(tails))) if len(tails) else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------- result


def _build_result(inst: _Indexed, chosen_rows: np.ndarray, tie_break: str) -> Result:
    placed = inst.fixed.copy()
    placed[chosen_rows] = True
    rows = np.flatnonzero(placed)  # canonical order: by participant, then rank
    person = inst.ch_person[rows].tolist()
    rank = inst.ch_rank[rows].tolist()
    offer_ids = [o.id for o in inst.offers]
    people = inst.people
    assignments = tuple(
        Assignment(people[i].id, offer_ids[j], r) for i, j, r in zip(person, inst.ch_offer[rows].tolist(), rank)
    )
    ranks_of: dict[int, list[int]] = {}
    for i, r in zip(person, rank):
        ranks_of.setdefault(i, []).append(r)

    # Why each choice of an unmatched participant was not used: its static reason, else
    # the offer ended full, else the participant's organisation reached the offer's cap.
    visits = np.bincount(inst.ch_person[rows], minlength=len(people))
    open_rows = np.flatnonzero(visits[inst.ch_person] == 0)
    offer = inst.ch_offer[open_rows]
    full = np.bincount(inst.ch_offer[rows], minlength=len(inst.offers)) >= inst.capacity
    org_key = inst.ch_offer * inst.n_orgs + inst.ch_org
    placed_keys, placed_count = np.unique(org_key[rows], return_counts=True)
    org_load = _lookup(placed_keys, placed_count, org_key[open_rows])
    org_capped = (inst.max_per_org[offer] >= 0) & (org_load >= inst.max_per_org[offer])
    static = inst.static_reason[open_rows]
    reason = np.select(
        [static == _FORBIDDEN, static == _OWN_ORG, static == _UNAVAILABLE, full[offer], org_capped],
        ["forbidden", "own_org", "unavailable", "full", "org_cap"],
        default="",
    ).tolist()
    if "" in reason:  # a maximum flow leaves no unplaced person a usable choice with room
        raise AssertionError("an unplaced participant has a usable choice with room")
    notes_of: dict[int, list[ChoiceNote]] = {}
    for i, j, r, why in zip(inst.ch_person[open_rows].tolist(), offer.tolist(), inst.ch_rank[open_rows].tolist(), reason):
        notes_of.setdefault(i, []).append(ChoiceNote(offer_ids[j], r, why))

    explanations: dict[str, Explanation] = {}
    placed_cache: dict[tuple[tuple[int, ...], int], Explanation] = {}
    unmatched = []
    for i, p in enumerate(people):
        if i in ranks_of:
            key = (tuple(ranks_of[i]), p.max_visits)
            if key not in placed_cache:
                placed_cache[key] = _placed_explanation(*key)
            explanations[p.id] = placed_cache[key]
        else:
            unmatched.append(p.id)
            explanations[p.id] = _unmatched_explanation(notes_of.get(i, []))
    return Result(
        assignments=assignments,
        unmatched=tuple(unmatched),
        assigned=len(rows),
        rank_cost=sum(r * r for r in rank),
        explanations=explanations,
        tie_break=tie_break,
    )


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[k] where keys[k] == query (keys sorted), 0 where the query is not a key."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0)


def _placed_explanation(ranks: tuple[int, ...], max_visits: int) -> Explanation:
    if len(ranks) == 1:
        text = f"Placed at choice {ranks[0]}"
    else:
        text = f"Placed at choices {', '.join(map(str, ranks[:-1]))} and {ranks[-1]}"
    if max_visits > 1:
        text += f" ({len(ranks)} of {max_visits} visits)"
    return Explanation("placed", text + ".", ranks=ranks)


def _unmatched_explanation(notes: list[ChoiceNote]) -> Explanation:
    reasons = {n.reason for n in notes}
    if not notes:
        code = "no_choices"
    elif len(reasons) == 1:
        code = UNMATCHED_CODE_OF[reasons.pop()]
    else:
        code = "mixed"
    text = UNMATCHED_CODES[code]
    if code == "mixed":
        text += ": " + "; ".join(f"choice {n.rank} {CHOICE_REASONS[n.reason]}" for n in notes) + "."
    return Explanation(code, text, choices=tuple(notes))
