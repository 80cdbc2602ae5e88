"""Matching service rules (pure: no I/O) around the engine, and the service's domain types.

Each rule is a function that returns a decision; the repository executes it.

- `needs_rematch`: a change (offer published or cancelled, sign-up submitted or withdrawn, seat
  offer declined or expired) after publication marks the edition for re-match.
- `cancel_offer`: cancelling an offer displaces its assignments and open seat offers (`FreedSeats`).
- `withdraw`: a withdrawal releases the seat (active and offered rows become released) and forgets
  what the participant was told (`FreedSeats`).
- Seat offers: `seat_offer_state` (what became of one), `check_open` (which states refuse an answer,
  409, with which code and message), `accept` / `decline` / `expire_due` (what an answer or an
  expiry means: the row's new status, the participant's match outcome, re-match, SeatOfferEnded).
- `build_problem`: the edition's offers, active participants, frozen (published) assignments and
  displaced participants as an engine Problem. Cancelled offers stay in the problem with capacity 0
  so that a participant's ranks keep meaning what they chose ("my second choice" stays rank 2).
- `plan`: from the engine's result, what changes and what to announce: new assignments, and for
  people without any placement: waitlisted (some choice could take them if a seat frees up) or
  unmatched (no choice ever could), with the engine's explanation. Only changes are announced.
- Seat offers in a run: after publication, a seat that a later run gives to someone who was told
  they wait (waitlisted, or holding a seat offer already) is offered, not assigned: it is held for
  them until `offer_expiry`, and they accept or decline it. A declined or expired pair is never
  placed again; an offer that can no longer be made in time (`offer_expiry` is None) is not placed
  either, so the person keeps waiting and the seat stays free for a direct assignment.
- `correlation_of`: the correlation id an event about a participant carries: their sign-up's.
- Editions that are never matched again: `check_matchable` / `matchable` (a closed or cancelled
  edition refuses runs, 409 `edition_closed` / `edition_cancelled`; it is never marked for re-match;
  its queued runs fail, `take_over`; a run in flight writes nothing), `cancel_edition` (its open seat
  offers end, status `cancelled`, without an event).
- `deadline_run`: the run an edition with `match_at_deadline` gets by itself at its sign-up deadline
  (unless it is closed, cancelled, or has a queued, running or published run).
- Approval: `may_be_matched` (a `pending` sign-up is left out of every run), `approve` (pending →
  approved: matched from now on, re-match if published); a refusal ends a sign-up like a withdrawal
  (`withdraw`, status `refused`).
- `change_signup`: new choices, dates and visits for a participant who holds no seat (re-match if
  published); a placed participant keeps their assignment, frozen, and the change is not applied.
- `change_offer`: an offer's new version (a higher `sequence`) replaces the copy; more seats after
  publication re-match. Fewer seats than are taken: those placed keep their seats (frozen pairs are
  facts, engine.py), nobody new is placed there.
- Regions and runs: `serves` (does an instance serve an edition's region), `requested_status` (a
  run requested on an instance that does not serve the edition's region is queued for one that does),
  `take_over` (what an instance does with a queued run, or with a running one whose executor is gone:
  start it, resume it, or fail it after `MAX_RUN_ATTEMPTS`). Matching keeps no personal data: a
  participant is a sign-up id, an organisation, a language and choices.
- A participant's link: `link_result` (what the link's page says: the seat offer is open, this press
  answered it, it was answered this way before, or it is not open any more).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from estafette.runtime.errors import Conflict, RuleViolation
from schemas.reasons import REASON_TEXTS, UnmatchedReason
from services.matching import engine

Pair = tuple[str, str]  # (signup_id, offer_id)


# --- domain types ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edition:
    id: str
    region: str
    status: str = "open"  # open | closed | cancelled
    rematch_pending: bool = False  # changed after publication, waiting for the re-matcher
    requires_approval: bool = False  # sign-ups wait for their employer's approval
    match_at_deadline: bool = False  # a run by itself at the sign-up deadline
    signup_deadline: datetime | None = None


@dataclass(frozen=True)
class Offer:
    """A host organisation's offer, as matching keeps it (not the engine's `engine.Offer`)."""

    id: str
    host_org: str
    title: str
    date: date
    capacity: int
    max_per_org: int | None
    format: str
    location: str
    status: str = "published"  # published | cancelled
    sequence: int = 0  # the offer's version: 0 when published, +1 per change (OfferChanged)


@dataclass(frozen=True)
class Participant:
    """The person behind a sign-up, as matching keeps them (not the engine's `engine.Participant`)."""

    signup_id: str
    org: str
    language: str  # of their link pages (no name or e-mail address: matching keeps no contact data)
    choices: list[str]
    available: list[date] | None
    max_visits: int
    signed_up_at: datetime
    status: str = "active"  # active | withdrawn | refused (by the employer)
    correlation_id: uuid.UUID | None = None  # the sign-up request's; None for rows from before it was kept
    approval: str = "not_required"  # not_required | pending | approved: pending sign-ups are not matched


@dataclass(frozen=True)
class Assignment:
    """A row of `assignments`: a pair that is (or was) assigned or offered."""

    signup_id: str
    offer_id: str
    rank: int
    status: str  # active | released | displaced | offered | declined | expired | cancelled (the edition)
    run_id: uuid.UUID | None = None
    assigned_at: datetime | None = None


@dataclass(frozen=True)
class SeatOffer:
    """A seat held for a waiting participant; `checked_at` is the clock it was read at."""

    signup_id: str
    offer_id: str
    rank: int
    run_id: uuid.UUID
    status: str  # the assignment row's status
    offered_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    checked_at: datetime

    @property
    def state(self) -> str:
        return seat_offer_state(self.status, self.expires_at, self.checked_at)


@dataclass(frozen=True)
class MatchOutcome:
    """What a participant was last told."""

    signup_id: str
    state: str  # assigned | offered (holds a seat offer) | waitlisted | unmatched
    reason_code: str | None = None
    reason: str = ""
    position: int | None = None


@dataclass(frozen=True)
class RunFigures:
    input_hash: str
    participants: int
    offers: int
    assigned: int
    newly_assigned: int
    newly_offered: int
    waitlisted: int
    unmatched: int
    rank_cost: int
    duration_ms: int


@dataclass(frozen=True)
class MatchRun:
    id: uuid.UUID
    edition_id: str
    kind: str  # full | incremental
    status: str  # queued | running | done | failed
    stage: str
    progress: float
    started_at: datetime  # requested at; reset when an instance starts a queued run
    finished_at: datetime | None = None
    error: str | None = None  # a failed run's
    figures: RunFigures | None = None  # a finished run's
    attempt: int = 1  # executions started (0 while queued); a resumed run counts on
    correlation_id: uuid.UUID | None = None  # the request's (for participants whose own is unknown)


@dataclass(frozen=True)
class EditionOverview:
    id: str
    region: str
    status: str
    rematch_pending: bool
    offers: int
    seats: int
    participants: int
    assignments: int
    seat_offers_open: int
    awaiting_approval: int = 0
    match_at_deadline: bool = False


@dataclass(frozen=True)
class StillValid:
    """What a run's result may still touch when it is written (things change while the engine works)."""

    offers: set[str]
    participants: set[str]
    open_seat_offers: set[Pair]


#: What a participant was last told, when a seat a later run finds for them is offered, not assigned.
WAITING_STATES = frozenset({"waitlisted", "offered"})
#: The unmatched reason of someone whose every possible choice was declined or let expire.
SEAT_OFFERS_ENDED: UnmatchedReason = "seat_offers_ended"
#: Every seat offer ends at the latest at this local time on the day before the visit.
LATEST_OFFER_TIME = time(23, 59)
#: What can become of a seat offer, in the order the organiser's view counts them.
SEAT_OFFER_STATES = ("open", "accepted", "declined", "expired", "withdrawn", "cancelled")
#: Assignment rows that hold a seat: every run keeps them frozen.
HOLDING = frozenset({"active", "offered"})


def correlation_of(participant: Participant | None, fallback: uuid.UUID) -> uuid.UUID:
    """An event about a participant carries their sign-up's correlation id, so it follows the person;
    `fallback` (the run's or the request's) when it is unknown."""
    return participant.correlation_id if participant and participant.correlation_id else fallback


# --- regions: which instance executes a run ------------------------------------------------------
#: Regions an instance serves (`settings.served_regions`); None: every region.
Regions = Collection[str] | None
#: How often a run is started (first start and resumptions after an executing instance died) before
#: the instance that finds it interrupted again fails it: a run that kills its instance every time
#: must not take every instance of the region down in turn.
MAX_RUN_ATTEMPTS = 3
TakeOver = Literal["start", "resume", "fail"]


def serves(regions: Regions, region: str) -> bool:
    """Does an instance serving `regions` serve `region` (None: every region)."""
    return regions is None or region in regions


def requested_status(regions: Regions, region: str) -> Literal["running", "queued"]:
    """A run requested on an instance runs there if it serves the edition's region; otherwise it is
    recorded as queued, and an instance that serves the region starts it."""
    return "running" if serves(regions, region) else "queued"


def take_over(run: MatchRun, edition: Edition | None = None) -> TakeOver:
    """What an instance does with a run of its regions that nobody executes (it got the run's lock):
    a run of an edition that is closed or cancelled meanwhile is failed with that reason; a queued run
    is started; a running one was interrupted (its instance died), and since a run writes its result in
    one transaction, nothing of it was written: it is resumed, or failed once it was started
    MAX_RUN_ATTEMPTS times."""
    if edition is not None and not matchable(edition):
        return "fail"
    if run.status == "queued":
        return "start"
    return "resume" if run.attempt < MAX_RUN_ATTEMPTS else "fail"


def interrupted_error(run: MatchRun) -> str:
    """The error of a run failed by `take_over` after too many starts."""
    return f"interrupted: the instance executing it stopped {run.attempt} times"


def take_over_error(run: MatchRun, edition: Edition | None = None) -> str:
    """Why `take_over` failed a run: its edition is not matched any more, or it was interrupted too often."""
    if edition is not None and (refused := not_matchable(edition)) is not None:
        return run_error(refused)
    return interrupted_error(run)


# --- closed and cancelled editions: never matched again ---------------------------------------------
EDITION_STATES = ("open", "closed", "cancelled")
_NOT_MATCHED = {
    "closed": "edition {edition} is closed: it is never matched again",
    "cancelled": "edition {edition} was cancelled: it is never matched again",
}


def matchable(edition: Edition) -> bool:
    """Only an open edition is matched: a closed or cancelled one never again (no run, no re-match)."""
    return edition.status == "open"


def not_matchable(edition: Edition) -> Conflict | None:
    """Conflict `edition_closed` / `edition_cancelled` for an edition that is never matched again."""
    if matchable(edition):
        return None
    message = _NOT_MATCHED.get(edition.status, "edition {edition} is not open: it is never matched again")
    return Conflict(f"edition_{edition.status}", message.format(edition=edition.id))


def check_matchable(edition: Edition) -> None:
    """A run of a closed or cancelled edition is refused (409 `edition_closed` / `edition_cancelled`)."""
    if (refused := not_matchable(edition)) is not None:
        raise refused


def run_error(refused: Conflict) -> str:
    """A run's `error` when its edition is not matched any more: the code first, then the sentence."""
    return f"{refused.code}: {refused.message}"


def cancel_edition(edition: Edition | None, held: Iterable[Assignment]) -> FreedSeats:
    """Cancelling an edition: it is never matched again, and its open seat offers end (status
    `cancelled`; no event: notifications tells everyone once). Assignments stay as they were (the
    record of who was placed where). Known and not cancelled yet, else nothing happens."""
    if edition is None or edition.status == "cancelled":
        return FreedSeats(applies=False)
    return FreedSeats(True, tuple(sorted((a.signup_id, a.offer_id) for a in held if a.status == "offered")), "cancelled")


def close(edition: Edition | None) -> bool:
    """Closing applies to an open edition only (a cancelled one stays cancelled)."""
    return edition is not None and edition.status == "open"


#: Runs that stop an automatic run at the sign-up deadline: one in progress, or a published one.
_DEADLINE_BLOCKERS = frozenset({"queued", "running", "done"})


def deadline_run(edition: Edition | None, runs: Iterable[MatchRun]) -> bool:
    """Does an edition get its automatic run at the sign-up deadline (step `match_at_deadline`)? Only if
    it is known, open, still asks for it, and has no queued, running or published run."""
    return (
        edition is not None
        and matchable(edition)
        and edition.match_at_deadline
        and not any(r.status in _DEADLINE_BLOCKERS for r in runs)
    )


def deadline_run_id(edition_id: str, due_at: datetime) -> uuid.UUID:
    """The id of the run recorded at an edition's deadline: the same for the same step occurrence."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"estafette:matching:match_at_deadline:{edition_id}:{due_at.isoformat()}")


# --- re-match marking, cancellation cascade, withdrawal release ----------------------------------
def needs_rematch(has_published_run: bool, changed: bool = True) -> bool:
    """A change after publication (an edition with a finished run) marks the edition for re-match;
    before the first run, the first run takes everything in anyway."""
    return changed and has_published_run


@dataclass(frozen=True)
class FreedSeats:
    """What cancelling an offer or withdrawing a sign-up does to the seats it held."""

    applies: bool  # the offer becomes cancelled / the participant withdrawn (False: unknown or done already)
    pairs: tuple[Pair, ...] = ()  # the rows holding a seat (assignments and open seat offers) ...
    # ... become displaced (cancelled offer), released (withdrawal, refusal) or cancelled (cancelled edition)
    status: Literal["displaced", "released", "cancelled", ""] = ""
    forget_outcome: bool = False  # a withdrawal: what the participant was told no longer counts
    rematch: bool = False


def _holding(held: Iterable[Assignment], offer_id: str | None = None, signup_id: str | None = None) -> tuple[Pair, ...]:
    return tuple(sorted(
        (a.signup_id, a.offer_id) for a in held
        if a.status in HOLDING and offer_id in (None, a.offer_id) and signup_id in (None, a.signup_id)
    ))


def cancel_offer(offer: Offer | None, held: Iterable[Assignment], has_published_run: bool) -> FreedSeats:
    """Cancelling a published offer displaces every pair holding a seat on it (assignments and open
    seat offers); the displaced people are re-placed first by the next run."""
    if offer is None or offer.status != "published":
        return FreedSeats(applies=False)
    return FreedSeats(True, _holding(held, offer_id=offer.id), "displaced", rematch=needs_rematch(has_published_run))


# --- approval, changed sign-ups and offers -----------------------------------------------------------
def may_be_matched(participant: Participant) -> bool:
    """Active, and not waiting for the employer's approval: a `pending` sign-up is left out of every run."""
    return participant.status == "active" and participant.approval != "pending"


@dataclass(frozen=True)
class Change:
    """What an approval or a changed sign-up or offer does: whether it applies, and whether the edition
    is marked for re-match."""

    applies: bool
    rematch: bool = False


def approve(participant: Participant | None, has_published_run: bool) -> Change:
    """The employer approved a pending sign-up: it is matched from now on (re-match if published)."""
    if participant is None or participant.status != "active" or participant.approval != "pending":
        return Change(applies=False)
    return Change(True, rematch=needs_rematch(has_published_run))


def change_signup(participant: Participant | None, held: Iterable[Assignment], has_published_run: bool) -> Change:
    """New choices, dates and visits apply to an active participant who holds no seat (no assignment,
    no open seat offer); re-match if published and the sign-up may be matched. A placed participant
    keeps their assignment (frozen): the change is not applied."""
    if participant is None or participant.status != "active" or _holding(held, signup_id=participant.signup_id):
        return Change(applies=False)
    return Change(True, rematch=needs_rematch(has_published_run) and may_be_matched(participant))


def change_offer(old: Offer | None, new: Offer, has_published_run: bool) -> Change:
    """An offer's new version (`sequence` higher than the copy's) replaces the copy; a cancelled offer
    stays cancelled. More seats after publication re-match (the waiting list may move up); fewer seats
    than are taken leave those placed in their seats and place nobody new there (engine.py: frozen
    pairs keep their seats)."""
    if old is None or old.status != "published" or new.sequence <= old.sequence:
        return Change(applies=False)
    return Change(True, rematch=needs_rematch(has_published_run, new.capacity > old.capacity))


def withdraw(participant: Participant | None, held: Iterable[Assignment], has_published_run: bool) -> FreedSeats:
    """A withdrawal (or the employer's refusal) releases the participant's seats (active and offered
    rows) and forgets their outcome."""
    if participant is None or participant.status != "active":
        return FreedSeats(applies=False)
    released = _holding(held, signup_id=participant.signup_id)
    return FreedSeats(True, released, "released", forget_outcome=True, rematch=needs_rematch(has_published_run))


# --- the seat-offer state machine -------------------------------------------------------------------
def seat_offer_state(status: str, expires_at: datetime, now: datetime) -> str:
    """What became of a seat offer (an assignment row that was offered): open, accepted, declined,
    expired (also when its time is up and the expiry loop has not ended it yet), withdrawn (the
    participant withdrew) or cancelled (the host cancelled the offer)."""
    if status == "offered":
        return "open" if expires_at > now else "expired"
    return {"active": "accepted", "released": "withdrawn", "displaced": "cancelled"}.get(status, status)


#: A cancelled edition's seat offers are `cancelled` too, with their own sentence.
_EDITION_CANCELLED = "the edition was cancelled, so the seat offer on {offer} is void"


_NOT_OPEN = {
    "expired": "the seat offer on {offer} expired at {expires_at}; the seat has been offered to the next person on the waiting list",
    "accepted": "the seat offer on {offer} has been accepted already: the place is yours",
    "declined": "the seat offer on {offer} was declined; the seat has been offered to the next person on the waiting list",
    "withdrawn": "the sign-up was withdrawn, so its seat offer on {offer} is void",
    "cancelled": "the host cancelled {offer}, so its seat offer is void",
}


def check_open(seat_offer: SeatOffer) -> None:
    """An answer needs an open seat offer: otherwise Conflict `seat_offer_<state>` saying what happened."""
    state = seat_offer.state
    if state != "open":
        text = _EDITION_CANCELLED if seat_offer.status == "cancelled" else _NOT_OPEN[state]
        message = text.format(offer=seat_offer.offer_id, expires_at=seat_offer.expires_at.isoformat())
        raise Conflict(f"seat_offer_{state}", message)


@dataclass(frozen=True)
class SeatOfferDecision:
    """What an answer to (or the expiry of) a seat offer means."""

    seat_offer: SeatOffer
    status: Literal["active", "declined", "expired"]  # the assignment row's new status
    outcome: Literal["assigned", "waitlisted"]  # what the participant is told now
    ended: Literal["declined", "expired"] | None  # SeatOfferEnded's reason; None: accepted (MatchAssigned)
    rematch: bool  # the edition is marked for re-match: the seat goes to the next person

    @property
    def pair(self) -> Pair:
        return self.seat_offer.signup_id, self.seat_offer.offer_id


def accept(seat_offer: SeatOffer) -> SeatOfferDecision:
    """The seat becomes the participant's assignment, as if a run had placed them (MatchAssigned)."""
    check_open(seat_offer)
    return SeatOfferDecision(seat_offer, "active", "assigned", ended=None, rematch=False)


def _ended(seat_offer: SeatOffer, how: Literal["declined", "expired"]) -> SeatOfferDecision:
    """A declined or expired seat offer: the pair is never placed again (its row says so), the
    participant waits for their other choices, and the re-match offers the seat to the next person."""
    return SeatOfferDecision(seat_offer, how, "waitlisted", ended=how, rematch=True)


def decline(seat_offer: SeatOffer) -> SeatOfferDecision:
    check_open(seat_offer)
    return _ended(seat_offer, "declined")


def expire_due(seat_offers: Iterable[SeatOffer]) -> list[SeatOfferDecision]:
    """The open seat offers whose time is up end as expired."""
    return [_ended(s, "expired") for s in seat_offers if s.status == "offered" and s.state == "expired"]


# --- a participant's link to answer a seat offer ---------------------------------------------------
Answer = Literal["accept", "decline"]
#: The state each answer leaves a seat offer in.
ANSWERED: Mapping[str, str] = {"accept": "accepted", "decline": "declined"}
#: open: not answered yet (the page shows the one button); answered: this press answered it;
#: again: it was answered this way before (a second press changes nothing); not_open: it ended
#: otherwise (expired, declined, accepted, withdrawn, cancelled), and the page says what happened.
LinkResult = Literal["open", "answered", "again", "not_open"]


def link_result(answer: Answer, seat_offer: SeatOffer, answered_now: bool = False) -> LinkResult:
    """What a participant's `answer` link says about their seat offer as it is now."""
    if answered_now:
        return "answered"
    state = seat_offer.state
    if state == "open":
        return "open"
    return "again" if state == ANSWERED[answer] else "not_open"


def count_seat_offers(seat_offers: Iterable[SeatOffer]) -> dict[str, int]:
    counts = dict.fromkeys(SEAT_OFFER_STATES, 0)
    for s in seat_offers:
        counts[s.state] += 1
    return counts


def offer_expiry(now: datetime, visit: date, hours: float, tz: tzinfo) -> datetime | None:
    """When a seat offer made at `now` for a visit on `visit` ends: `hours` later, but never after
    the day before the visit (LATEST_OFFER_TIME, local time in `tz`). None when that moment has
    passed: then no offer is made."""
    latest = datetime.combine(visit - timedelta(days=1), LATEST_OFFER_TIME, tzinfo=tz)
    expires = min(now + timedelta(hours=hours), latest)
    return expires if expires > now else None


# --- a run ---------------------------------------------------------------------------------------
def build_problem(
    offers: Iterable[Offer],
    participants: Iterable[Participant],
    frozen: Iterable[Pair] = (),
    priority: Iterable[str] = (),
    declined: Iterable[Pair] = (),
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
            host_org=o.host_org,
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
) -> set[Pair]:
    """Pairs a waiting person could take but can no longer be offered (only those: an impossible
    choice keeps the engine's own reason, own organisation or unavailable, in the explanation)."""
    return {
        (p.id, c) for p in people if p.id in waiting for c in p.choices if c in too_late and _could_take(p, offers[c])
    }


def input_hash(problem: engine.Problem) -> str:
    """A fingerprint of the run's input, independent of row order (shown to organisers)."""
    doc = {
        "offers": sorted((o.id, o.host_org, o.date.isoformat(), o.capacity, o.max_per_org) for o in problem.offers),
        "participants": sorted(
            (p.id, p.org, p.signed_up_at.isoformat(), list(p.choices), sorted(d.isoformat() for d in p.available or []), p.max_visits)
            for p in problem.participants
        ),
        "frozen": sorted(problem.frozen),
        "forbidden": sorted(problem.forbidden),
        "priority": sorted(problem.priority),
    }
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass
class Plan:
    new_assignments: list[engine.Assignment] = field(default_factory=list)
    new_seat_offers: list[engine.Assignment] = field(default_factory=list)  # seats offered to people who wait
    outcomes: list[MatchOutcome] = field(default_factory=list)  # every participant's state now
    announce: list[MatchOutcome] = field(default_factory=list)  # waitlisted/unmatched states that changed


def plan(
    problem: engine.Problem,
    result: engine.Result,
    previous: Mapping[str, MatchOutcome],
    open_seat_offers: Collection[Pair] = frozenset(),
    declined: Collection[Pair] = frozenset(),
) -> Plan:
    """`previous`: what each participant was last told. `open_seat_offers`: the frozen pairs that are
    seat offers nobody answered yet. `declined`: pairs declined or let expire."""
    new = [a for a in result.assignments if (a.participant, a.offer) not in problem.frozen]
    offered = [a for a in new if (told := previous.get(a.participant)) is not None and told.state in WAITING_STATES]
    out = Plan(new_assignments=[a for a in new if a not in offered], new_seat_offers=offered)
    holding = {(a.participant, a.offer) for a in offered} | set(open_seat_offers)
    placed = {a.participant for a in result.assignments}
    assigned = {a.participant for a in result.assignments if (a.participant, a.offer) not in holding}
    out.outcomes += [MatchOutcome(sid, "assigned" if sid in assigned else "offered") for sid in sorted(placed)]
    people = {p.id: p for p in problem.participants}
    offers = {o.id: o for o in problem.offers}
    position = 0
    for signup_id in engine.waiting_list(problem, result):
        explanation = result.explanations[signup_id]
        if _could_ever_be_placed(people[signup_id], offers, declined):
            position += 1
            outcome = MatchOutcome(signup_id, "waitlisted", explanation.code, explanation.text, position)
        elif explanation.code == "forbidden":  # here: every possible choice was declined or expired
            outcome = MatchOutcome(signup_id, "unmatched", SEAT_OFFERS_ENDED, REASON_TEXTS[SEAT_OFFERS_ENDED])
        else:
            outcome = MatchOutcome(signup_id, "unmatched", explanation.code, explanation.text)
        out.outcomes.append(outcome)
        before = previous.get(signup_id)
        changed = (
            before is None
            or before.state != outcome.state
            or (outcome.state == "unmatched" and before.reason_code != outcome.reason_code)
        )
        if changed:
            out.announce.append(outcome)
    return out


def _could_ever_be_placed(
    participant: engine.Participant, offers: Mapping[str, engine.Offer], declined: Collection[Pair]
) -> bool:
    """True if a freed seat on one of their choices could go to them (the waiting list's test)."""
    return any(_could_take(participant, offers[c]) and (participant.id, c) not in declined for c in participant.choices)


def _could_take(participant: engine.Participant, offer: engine.Offer) -> bool:
    return (
        offer.capacity > 0
        and offer.host_org != participant.org
        and (participant.available is None or offer.date in participant.available)
    )


def figures(
    problem: engine.Problem,
    result: engine.Result,
    newly_assigned: int,
    outcomes: list[MatchOutcome],
    duration_ms: int,
    newly_offered: int = 0,
) -> RunFigures:
    return RunFigures(
        input_hash=input_hash(problem),
        participants=len(problem.participants),
        offers=sum(1 for o in problem.offers if o.capacity > 0),
        assigned=result.assigned,
        newly_assigned=newly_assigned,
        newly_offered=newly_offered,
        waitlisted=sum(1 for o in outcomes if o.state == "waitlisted"),
        unmatched=sum(1 for o in outcomes if o.state == "unmatched"),
        rank_cost=result.rank_cost,
        duration_ms=duration_ms,
    )


# --- overrides, preview and explanations (issue 11) ---------------------------------------------
OverrideKind = Literal["pin", "forbid"]


@dataclass(frozen=True)
class Override:
    """An organiser's pin (always place) or forbid (never place) of one sign-up–offer pair; audited:
    `created_by` is the principal's subject, `created_at` the platform clock's time, `reason` why.
    Removing it keeps the row (`removed_by`, `removed_at`); only live ones go into a run."""

    id: uuid.UUID
    edition_id: str
    signup_id: str
    offer_id: str
    kind: OverrideKind
    reason: str
    created_by: str
    created_at: datetime
    removed_by: str | None = None
    removed_at: datetime | None = None


def check_override(
    edition_id: str, kind: OverrideKind, participant: Participant | None, offer: Offer | None, live: Iterable[Override]
) -> None:
    """May this override be made? The sign-up and the offer must be the edition's (422
    `unknown_signup` / `unknown_offer`), a pin only on an offer the participant chose (422
    `not_chosen`: the engine places people only on their choices), and the pair may have no live
    override yet (409 `override_exists`: remove it first)."""
    if participant is None:
        raise RuleViolation("unknown_signup", f"sign-up is not a sign-up of edition {edition_id}", "signup_id")
    if offer is None:
        raise RuleViolation("unknown_offer", f"offer is not an offer of edition {edition_id}", "offer_id")
    if kind == "pin" and offer.id not in participant.choices:
        raise RuleViolation(
            "not_chosen", f"sign-up {participant.signup_id} did not choose offer {offer.id}: only a chosen offer can be pinned",
            "offer_id",
        )
    for o in live:
        if (o.signup_id, o.offer_id) == (participant.signup_id, offer.id):
            raise Conflict("override_exists", f"the pair has a live {o.kind} override already ({o.id}): remove it first")


def override_pairs(overrides: Iterable[Override]) -> tuple[set[Pair], set[Pair]]:
    """(pinned, forbidden) pairs of the live overrides."""
    live = [o for o in overrides if o.removed_at is None]
    return {(o.signup_id, o.offer_id) for o in live if o.kind == "pin"}, {
        (o.signup_id, o.offer_id) for o in live if o.kind == "forbid"
    }


def applicable_pins(problem: engine.Problem, pinned: Iterable[Pair]) -> frozenset[Pair]:
    """The pins a run can take in: of participants in the run, on offers they (still) chose. A pin of
    someone who withdrew, or whose choices changed, is left out (it stays listed)."""
    choices = {p.id: p.choices for p in problem.participants}
    return frozenset(pair for pair in pinned if pair[1] in choices.get(pair[0], ()))


def with_overrides(problem: engine.Problem, pinned: Iterable[Pair], forbidden: Iterable[Pair]) -> engine.Problem:
    """The problem with the organisers' live overrides: pins of people in it on offers they chose,
    forbids of people and offers in it (a forbid never moves a published, frozen pair: it stays)."""
    people = {p.id for p in problem.participants}
    offers = {o.id for o in problem.offers}
    forbid = {pair for pair in forbidden if pair[0] in people and pair[1] in offers}
    return dataclasses.replace(
        problem, pinned=applicable_pins(problem, pinned), forbidden=frozenset(problem.forbidden) | forbid
    )


@dataclass(frozen=True)
class Placement:
    signup_id: str
    offer_id: str
    rank: int
    state: str  # assigned | offered (a seat offer, for someone who was told they wait)


@dataclass(frozen=True)
class Moved:
    signup_id: str
    offers_before: list[str]
    offers_after: list[str]


@dataclass(frozen=True)
class PreviewDiff:
    """How a dry run differs from what is published (the participants' last outcomes and held seats)."""

    newly_placed: list[Placement]  # held no seat, would be assigned or offered one
    moved: list[Moved]  # held seats, would hold a different set (more visits, or a pin)
    newly_waitlisted: list[MatchOutcome]  # would be told they wait (and were not waiting before)
    newly_unmatched: list[MatchOutcome]  # would be told they cannot be placed (and were not before)
    unchanged: int


def preview_diff(
    result: engine.Result, planned: Plan, previous: Mapping[str, MatchOutcome], held: Iterable[Assignment]
) -> PreviewDiff:
    holding: dict[str, set[str]] = {}
    for a in held:
        holding.setdefault(a.signup_id, set()).add(a.offer_id)
    after: dict[str, set[str]] = {}
    for a in result.assignments:
        after.setdefault(a.participant, set()).add(a.offer)
    offered = {(a.participant, a.offer) for a in planned.new_seat_offers}
    newly: list[Placement] = []
    moved: list[Moved] = []
    changed: set[str] = set()
    for a in [*planned.new_assignments, *planned.new_seat_offers]:
        if a.participant not in holding:
            state = "offered" if (a.participant, a.offer) in offered else "assigned"
            newly.append(Placement(a.participant, a.offer, a.rank, state))
            changed.add(a.participant)
    for signup_id, before in sorted(holding.items()):
        now = after.get(signup_id, set())
        if now != before and signup_id in after:
            moved.append(Moved(signup_id, sorted(before), sorted(now)))
            changed.add(signup_id)
    waitlisted, unmatched = [], []
    for o in planned.outcomes:
        told = previous.get(o.signup_id)
        if o.state == "waitlisted" and (told is None or told.state != "waitlisted"):
            waitlisted.append(o)
            changed.add(o.signup_id)
        elif o.state == "unmatched" and (told is None or told.state != "unmatched" or told.reason_code != o.reason_code):
            unmatched.append(o)
            changed.add(o.signup_id)
    newly.sort(key=lambda p: (p.signup_id, p.rank))
    return PreviewDiff(newly, moved, waitlisted, unmatched, len(planned.outcomes) - len(changed))


@dataclass(frozen=True)
class ChoiceReason:
    offer_id: str
    rank: int
    reason: str  # one of engine.CHOICE_REASONS: forbidden, own_org, unavailable, full, org_cap


@dataclass(frozen=True)
class PersonExplanation:
    """The engine's explanation of one participant in one run (placed, or why not)."""

    signup_id: str
    code: str  # placed | an unmatched reason code (schemas/reasons.py)
    text: str  # the engine's short English sentence; portals translate from `code`
    ranks: list[int]
    choices: list[ChoiceReason]


def explanations(result: engine.Result, who: Collection[str]) -> list[PersonExplanation]:
    """The run's explanations of the participants in `who` (those whose result is written)."""
    return [
        PersonExplanation(
            sid, e.code, e.text, list(e.ranks), [ChoiceReason(n.offer, n.rank, n.reason) for n in e.choices]
        )
        for sid, e in sorted(result.explanations.items())
        if sid in who
    ]
