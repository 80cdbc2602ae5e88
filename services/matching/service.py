"""Matching use cases, one transaction each: the only door to the matching service's state.

- From Kafka (inside the consumer's transaction, `tx`): `open_edition`, `close_edition`,
  `cancel_edition`, `publish_offer`, `change_offer`, `cancel_offer`, `add_participant`,
  `change_participant`, `approve_participant`, `refuse_participant`, `withdraw_participant`.
- Scheduled steps (runtime/scheduler.py, in the step's transaction): `match_at_deadline`.
- From HTTP (`uow`, and the caller's `Principal`): `edition`, `runs`, `run`, `assignments`,
  `seat_offers`, `accept_seat_offer`, `decline_seat_offer`, and `Runner.start` for a match run; from a
  participant's link: `seat_offer_link` (what the page shows) and `answer_by_link` (the same answer
  use case, with the participant's principal).
- Background (`Runner`): executing a run, taking over runs nobody executes (`take_over_runs`), the
  re-match loop, `expire_seat_offers`.

"Now" is the platform clock's (`rt.clock.now()`, a test clock in tests), passed into the use cases
that need it (`now`): seat offers are made, checked, answered and expired against it.

Closed and cancelled editions are never matched again (`domain.check_matchable`): a run is refused
(409), no re-match is marked or started, queued runs fail with the reason, and a run in flight writes
nothing (`record_result` checks under the edition's lock).

A run reads a snapshot of the edition (one transaction), solves it with the engine in a worker
thread (progress written to `match_runs` while it runs), and writes the result in one transaction:
new assignments and seat offers, every participant's outcome, the events to announce (outbox) and
the run's figures. Published assignments and open seat offers are frozen: every run keeps them and
only distributes what is free. Every event about a participant carries that participant's
correlation id (their sign-up request's), the run in `run_id`.

Scoping: every HTTP use case looks up the edition and asks `principal.sees(edition.region)` (THE rule,
estafette/runtime/access.py); an edition of a region the caller may not see is answered exactly like an
unknown one (NotFound `unknown_edition`; a run: `unknown_run`). A participant (link) sees only their own
seat offer: `principal.owns(signup_id)` in the edition their link names.

Regions: an instance serves a set of regions (`regions`, None: every region); instances share the
database. A run requested on an instance that does not serve the edition's region is recorded as
queued (`domain.requested_status`) and started by an instance that serves it. The instance executing
a run holds the run's lock (`RunLocks`, a session advisory lock) from before the run is recorded
until its execution ends; a queued or running run whose lock nobody holds is taken over by an instance
of its region (`take_over_runs`: started, resumed or failed, `domain.take_over`). The re-match loop
and seat-offer expiry touch only editions of the served regions.

The rules are in `domain.py`; `tx.repo` (repository.py) reads the facts and executes the decisions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from estafette.runtime.access import Principal
from estafette.runtime.clock import Now
from estafette.runtime.errors import Conflict, NotFound
from estafette.runtime.loops import pause
from estafette.runtime.uow import Tx, Uow
from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, OfferSummary, SeatOfferEnded, SeatOffered
from services.matching import domain, engine
from services.matching.domain import Edition, MatchOutcome, MatchRun, Offer, Participant, SeatOffer

if TYPE_CHECKING:
    from services.matching.repository import Repository

log = structlog.get_logger(__name__)

#: The service itself, for what it starts on its own (the re-match loop's runs).
SELF = Principal("admin", subject="service:matching")


# --- the copy of registration's data (Kafka) ---------------------------------------------------
#: The scheduled step of an edition's automatic run at its sign-up deadline (key: the edition id).
MATCH_AT_DEADLINE = "match_at_deadline"


async def open_edition(tx: Tx[Repository], edition: Edition) -> None:
    """Keep the edition; with `match_at_deadline`, schedule its automatic run at the sign-up deadline
    (scheduling again at the same time changes nothing; without it, a scheduled one is cancelled)."""
    await tx.repo.upsert_edition(edition)
    if edition.match_at_deadline and edition.signup_deadline is not None:
        await tx.repo.schedule(MATCH_AT_DEADLINE, edition.id, edition.signup_deadline)
    else:
        await tx.repo.cancel_step(MATCH_AT_DEADLINE, edition.id)


async def close_edition(tx: Tx[Repository], edition_id: str) -> None:
    """Sign-ups ended early: what was matched stands, but the edition is never matched again."""
    found = await tx.repo.edition(edition_id, lock=True)
    if domain.close(found):
        assert found is not None
        await _end_matching(tx, dataclasses.replace(found, status="closed"))


async def cancel_edition(tx: Tx[Repository], edition_id: str) -> None:
    """The edition is called off: never matched again, and its open seat offers end (status
    `cancelled`, no event: notifications tells everyone once). Assignments stay as they were."""
    found = await tx.repo.edition(edition_id, lock=True)
    ended = domain.cancel_edition(found, await tx.repo.held_assignments(edition_id=edition_id))
    if not ended.applies:
        return
    assert found is not None
    await _end_matching(tx, dataclasses.replace(found, status="cancelled"))
    if ended.pairs:
        await tx.repo.set_assignment_status(ended.pairs, ended.status)


async def _end_matching(tx: Tx[Repository], edition: Edition) -> None:
    """A closed or cancelled edition: its status (a pending re-match is dropped with it), its queued runs
    failed with the reason, and no run at the deadline."""
    await tx.repo.set_edition_status(edition.id, edition.status)
    refused = domain.not_matchable(edition)
    assert refused is not None
    await tx.repo.fail_queued_runs(edition.id, domain.run_error(refused))
    await tx.repo.cancel_step(MATCH_AT_DEADLINE, edition.id)


async def publish_offer(tx: Tx[Repository], edition_id: str, offer: Offer) -> None:
    found = await tx.repo.edition(edition_id, lock=True)  # a run writing its result waits, or we wait for it
    await _changed(tx, found, await tx.repo.add_offer(edition_id, offer))


async def change_offer(tx: Tx[Repository], edition_id: str, offer: Offer) -> None:
    """An offer's new version (OfferChanged) replaces the copy: later events carry it. More seats after
    publication: re-match. Fewer seats than are taken: those placed keep them, nobody new is placed."""
    found = await tx.repo.edition(edition_id, lock=True)
    change = domain.change_offer(await tx.repo.offer(offer.id), offer, await tx.repo.has_published_run(edition_id))
    if change.applies:
        await tx.repo.update_offer(offer)
    await _mark(tx, found, change.rematch)


async def add_participant(tx: Tx[Repository], edition_id: str, participant: Participant) -> None:
    """A sign-up; one waiting for its employer's approval is kept but not matched (and marks nothing)."""
    await add_participants(tx, [(edition_id, participant)])


async def add_participants(tx: Tx[Repository], signups: Sequence[tuple[str, Participant]]) -> None:
    """Sign-ups in bulk (a consumer batch's SignupSubmitted, as (edition id, participant)): the effect of
    `add_participant` for each in order — a sign-up known already, or twice in `signups`, is added once —
    with each edition read once and the participants written in one round trip."""
    by_edition: dict[str, list[Participant]] = {}
    for edition_id, participant in signups:
        by_edition.setdefault(edition_id, []).append(participant)
    # Shared: sign-ups of one edition are added side by side (instances of a region scale out); a run
    # writing its result still waits for them, or they for it. In id order, as every bulk call locks.
    found = {edition_id: await tx.repo.edition(edition_id, lock="share") for edition_id in sorted(by_edition)}
    added = await tx.repo.add_participants(signups)
    for edition_id, edition in found.items():
        await _changed(tx, edition, any(
            p.signup_id in added and domain.may_be_matched(p) for p in by_edition[edition_id]))


async def change_participant(
    tx: Tx[Repository], edition_id: str, signup_id: str, choices: list[str], available: list[date] | None, max_visits: int
) -> None:
    """New choices, dates and visits (SignupChanged) for a participant who holds no seat; a placed one
    keeps their assignment and the change is not applied."""
    found = await tx.repo.edition(edition_id, lock=True)
    held = await tx.repo.held_assignments(signup_id=signup_id)
    change = domain.change_signup(await tx.repo.participant(signup_id), held, await tx.repo.has_published_run(edition_id))
    if change.applies:
        await tx.repo.change_participant(signup_id, choices, available, max_visits)
    elif held:
        log.info("sign-up changed while placed: the assignment stays", signup_id=signup_id, edition_id=edition_id)
    await _mark(tx, found, change.rematch)


async def approve_participant(tx: Tx[Repository], edition_id: str, signup_id: str) -> None:
    """The employer approved: the sign-up is matched from now on (re-match if published)."""
    found = await tx.repo.edition(edition_id, lock=True)
    change = domain.approve(await tx.repo.participant(signup_id), await tx.repo.has_published_run(edition_id))
    if change.applies:
        await tx.repo.set_approval(signup_id, "approved")
    await _mark(tx, found, change.rematch)


async def refuse_participant(tx: Tx[Repository], edition_id: str, signup_id: str) -> None:
    """The employer refused: the sign-up ends like a withdrawal (status `refused`)."""
    await _end_participant(tx, edition_id, signup_id, "refused")


async def cancel_offer(tx: Tx[Repository], edition_id: str, offer_id: str) -> None:
    found = await tx.repo.edition(edition_id, lock=True)
    held = await tx.repo.held_assignments(offer_id=offer_id)
    freed = domain.cancel_offer(await tx.repo.offer(offer_id), held, await tx.repo.has_published_run(edition_id))
    if freed.applies:
        await tx.repo.set_offer_status(offer_id, "cancelled")
    await _free_seats(tx, found, freed)


async def withdraw_participant(tx: Tx[Repository], edition_id: str, signup_id: str) -> None:
    await _end_participant(tx, edition_id, signup_id, "withdrawn")


async def _end_participant(tx: Tx[Repository], edition_id: str, signup_id: str, status: str) -> None:
    found = await tx.repo.edition(edition_id, lock=True)
    held = await tx.repo.held_assignments(signup_id=signup_id)
    freed = domain.withdraw(await tx.repo.participant(signup_id), held, await tx.repo.has_published_run(edition_id))
    if freed.applies:
        await tx.repo.set_participant_status(signup_id, status)
    if freed.forget_outcome:
        await tx.repo.forget_outcome(signup_id)
    await _free_seats(tx, found, freed)


async def _changed(tx: Tx[Repository], edition: Edition | None, changed: bool) -> None:
    if edition is not None:
        await _mark(tx, edition, domain.needs_rematch(await tx.repo.has_published_run(edition.id), changed))


async def _mark(tx: Tx[Repository], edition: Edition | None, rematch: bool) -> None:
    """Mark the edition for re-match, if asked and it is matched at all (a closed or cancelled one never)."""
    if rematch and edition is not None and domain.matchable(edition):
        await tx.repo.mark_for_rematch(edition.id)


async def _free_seats(tx: Tx[Repository], edition: Edition | None, freed: domain.FreedSeats) -> None:
    if freed.pairs:
        await tx.repo.set_assignment_status(freed.pairs, freed.status)
    await _mark(tx, edition, freed.rematch)


# --- scheduled: the automatic run at the sign-up deadline -----------------------------------------
async def match_at_deadline(tx: Tx[Repository], edition_id: str, due_at: datetime) -> MatchRun | None:
    """Step `match_at_deadline` (in the step's transaction: recorded once). Records a queued run, which
    an instance of the edition's region starts (the take-over loop), unless the edition is closed or
    cancelled, no longer asks for it, or has a queued, running or published run (`domain.deadline_run`)."""
    found = await tx.repo.edition(edition_id, lock=True)
    run_id = domain.deadline_run_id(edition_id, due_at)
    if not domain.deadline_run(found, await tx.repo.runs_of(edition_id)) or await tx.repo.run(run_id) is not None:
        log.info("no match run at the sign-up deadline", edition_id=edition_id)
        return None
    if not await tx.repo.start_run(run_id, edition_id, await _run_kind(tx, edition_id), "queued", run_id):
        return None
    log.info("match run at the sign-up deadline queued", edition_id=edition_id, run_id=str(run_id))
    return await tx.repo.run(run_id)


# --- what organisers see (HTTP) ------------------------------------------------------------------
def _unknown_edition(edition_id: str) -> NotFound:
    return NotFound("unknown_edition", f"edition {edition_id} is not known to matching (yet)")


def _sees(principal: Principal, edition_id: str, region: str, signup_id: str | None = None) -> bool:
    """May `principal` see the edition: its region (organiser, admin), or as the participant whose link
    names `signup_id` in it."""
    own = signup_id is not None and principal.owns(signup_id) and principal.edition_id == edition_id
    return own or principal.sees(region)


async def _known_edition(tx: Tx[Repository], edition_id: str, lock: bool = False) -> Edition:
    found = await tx.repo.edition(edition_id, lock=lock)
    if found is None:
        raise _unknown_edition(edition_id)
    return found


async def _visible_edition(
    tx: Tx[Repository], principal: Principal, edition_id: str, signup_id: str | None = None, lock: bool = False
) -> Edition:
    """The edition, if the caller may see it; otherwise NotFound exactly like an unknown edition."""
    found = await tx.repo.edition(edition_id, lock=lock)
    if found is None or not _sees(principal, found.id, found.region, signup_id):
        raise _unknown_edition(edition_id)
    return found


async def edition(uow: Uow[Repository], principal: Principal, edition_id: str) -> domain.EditionOverview:
    """What matching has received of an edition so far (it learns through Kafka, a moment after registration)."""
    async with uow.transaction() as tx:
        found = await tx.repo.edition_overview(edition_id)
    if found is None or not _sees(principal, found.id, found.region):
        raise _unknown_edition(edition_id)
    return found


async def runs(uow: Uow[Repository], principal: Principal, edition_id: str) -> list[MatchRun]:
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id)
        return await tx.repo.runs_of(edition_id)


async def run(uow: Uow[Repository], principal: Principal, run_id: uuid.UUID) -> MatchRun:
    """A run, scoped by its edition's region."""
    async with uow.transaction() as tx:
        found = await tx.repo.run(run_id)
        edition = await tx.repo.edition(found.edition_id) if found else None
    if found is None or edition is None or not _sees(principal, edition.id, edition.region):
        raise NotFound("unknown_run", f"match run {run_id} does not exist")
    return found


@dataclass(frozen=True)
class EditionAssignments:
    assignments: list[domain.Assignment]
    waiting_list: list[MatchOutcome]  # everyone not assigned: the waiting list in order, then the others


async def assignments(uow: Uow[Repository], principal: Principal, edition_id: str) -> EditionAssignments:
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id)
        return EditionAssignments(await tx.repo.assignments_of(edition_id), await tx.repo.waiting_list(edition_id))


@dataclass(frozen=True)
class SeatOffers:
    counts: dict[str, int]  # per state (domain.SEAT_OFFER_STATES)
    seat_offers: list[SeatOffer]


async def seat_offers(uow: Uow[Repository], principal: Principal, edition_id: str, now: datetime) -> SeatOffers:
    """Every seat offer of the edition and what became of it (as of `now`), oldest first, with counts per state."""
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id)
        found = await tx.repo.seat_offers_of(edition_id, now)
    return SeatOffers(domain.count_seat_offers(found), found)


# --- overrides and explanations (issue 11) --------------------------------------------------------
async def add_override(
    uow: Uow[Repository], principal: Principal, edition_id: str, signup_id: str, offer_id: str,
    kind: domain.OverrideKind, reason: str, now: datetime,
) -> domain.Override:
    """Pin or forbid a pair for every later run (`domain.check_override`), audited: who (the
    principal's subject), when (`now`, the platform clock), why. Published assignments stay as they
    are (a forbid does not move them); the next run, or a re-match once published, applies it."""
    async with uow.transaction() as tx:
        found = await _visible_edition(tx, principal, edition_id, lock=True)
        domain.check_override(
            edition_id, kind, await tx.repo.participant_of(edition_id, signup_id),
            await tx.repo.offer_of(edition_id, offer_id), await tx.repo.overrides_of(edition_id),
        )
        made = domain.Override(
            id=uuid.uuid4(), edition_id=found.id, signup_id=signup_id, offer_id=offer_id, kind=kind, reason=reason,
            created_by=principal.subject or principal.role, created_at=now,
        )
        await tx.repo.add_override(made)
        await _mark(tx, found, await tx.repo.has_published_run(edition_id))
    log.info("match override made", edition_id=edition_id, override_id=str(made.id), kind=kind)
    return made


async def overrides(
    uow: Uow[Repository], principal: Principal, edition_id: str, include_removed: bool = False
) -> list[domain.Override]:
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id)
        return await tx.repo.overrides_of(edition_id, live_only=not include_removed)


async def remove_override(
    uow: Uow[Repository], principal: Principal, edition_id: str, override_id: uuid.UUID, now: datetime
) -> domain.Override:
    """The override stops applying; its row stays with who removed it and when. Removing a removed
    one changes nothing (the same answer). 404 `unknown_override`."""
    async with uow.transaction() as tx:
        found = await _visible_edition(tx, principal, edition_id, lock=True)
        existing = await tx.repo.override(edition_id, override_id)
        if existing is None:
            raise NotFound("unknown_override", f"override {override_id} does not exist in edition {edition_id}")
        if existing.removed_at is None:
            await tx.repo.remove_override(override_id, principal.subject or principal.role, now)
            await _mark(tx, found, await tx.repo.has_published_run(edition_id))
        removed = await tx.repo.override(edition_id, override_id)
    assert removed is not None
    return removed


async def explanations(
    uow: Uow[Repository], principal: Principal, run_id: uuid.UUID, signup_id: str | None = None
) -> list[domain.PersonExplanation]:
    """The engine's explanation of each participant a finished run took in (or of one: `signup_id`),
    scoped by the run's edition's region like the run itself. Empty for a run not finished (yet)."""
    await run(uow, principal, run_id)
    async with uow.transaction() as tx:
        return await tx.repo.explanations_of(run_id, signup_id)


@dataclass(frozen=True)
class Preview:
    """A dry run: the result, and how it differs from what is published. Nothing is written."""

    edition_id: str
    participants: int
    assigned: int  # placements in the result, held ones included
    rank_cost: int
    assignments: list[domain.Placement]  # every placement of the result
    waiting_list: list[MatchOutcome]
    diff: domain.PreviewDiff
    overrides: int  # live overrides taken in


async def preview(uow: Uow[Repository], principal: Principal, edition_id: str, rules: SeatOfferRules, now: datetime) -> Preview:
    """Solve the edition as a run would now (its live overrides included) without writing or
    publishing anything: 404 unknown edition, 409 closed or cancelled, 409 `override_infeasible` when
    a pin cannot be placed (the engine's message says why)."""
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id)
        live = len(await tx.repo.overrides_of(edition_id))
    snap = await take_snapshot(uow, edition_id, rules, now, preview=True)
    try:
        result = await asyncio.to_thread(engine.solve, snap.problem)
    except engine.MatchingError as exc:
        raise Conflict("override_infeasible", str(exc)) from exc
    planned = domain.plan(snap.problem, result, snap.previous, snap.open_seat_offers, snap.declined)
    offered = {(a.participant, a.offer) for a in planned.new_seat_offers} | snap.open_seat_offers
    placements = [
        domain.Placement(a.participant, a.offer, a.rank, "offered" if (a.participant, a.offer) in offered else "assigned")
        for a in result.assignments
    ]
    return Preview(
        edition_id=edition_id, participants=len(snap.problem.participants), assigned=result.assigned,
        rank_cost=result.rank_cost, assignments=placements,
        waiting_list=[o for o in planned.outcomes if o.state in ("waitlisted", "unmatched")],
        diff=domain.preview_diff(result, planned, snap.previous, snap.held), overrides=live,
    )


# --- seat offers: accept, decline, expire ---------------------------------------------------------
async def accept_seat_offer(
    uow: Uow[Repository], principal: Principal, edition_id: str, signup_id: str, correlation_id: uuid.UUID, now: datetime
) -> SeatOffer:
    """The seat becomes the participant's assignment: MatchAssigned, as if a run had placed them.
    By an organiser (on the participant's behalf) or the participant through their link. 404 unknown
    (or not visible) edition or no seat offer; 409 when it is not open at `now`."""
    return await _answer(uow, principal, edition_id, signup_id, domain.accept, correlation_id, now)


async def decline_seat_offer(
    uow: Uow[Repository], principal: Principal, edition_id: str, signup_id: str, correlation_id: uuid.UUID, now: datetime
) -> SeatOffer:
    """The participant waits for their other choices; the seat goes to the next person (re-match)."""
    return await _answer(uow, principal, edition_id, signup_id, domain.decline, correlation_id, now)


async def _answer(
    uow: Uow[Repository],
    principal: Principal,
    edition_id: str,
    signup_id: str,
    answer: Callable[[SeatOffer], domain.SeatOfferDecision],
    correlation_id: uuid.UUID,
    now: datetime,
) -> SeatOffer:
    async with uow.transaction() as tx:
        # Locked: runs and consumers of the edition wait.
        found = await _visible_edition(tx, principal, edition_id, signup_id, lock=True)
        decision = answer(await _seat_offer(tx, edition_id, signup_id, now, principal))
        await _execute(tx, found, decision, correlation_id, now)
        return await _seat_offer(tx, edition_id, signup_id, now)


async def _seat_offer(
    tx: Tx[Repository], edition_id: str, signup_id: str, now: datetime, principal: Principal | None = None
) -> SeatOffer:
    """The sign-up's open seat offer, else its latest (as of `now`); 404 when none, or when `principal`'s
    link was made for a seat offer on another offer (an old e-mail never answers a later seat offer)."""
    found = await tx.repo.seat_offer_of(edition_id, signup_id, now)
    if found is None or (principal is not None and not principal.reaches(found.offer_id)):
        raise NotFound("unknown_seat_offer", f"sign-up {signup_id} has no seat offer in edition {edition_id}")
    return found


# --- a participant's link: the page and its one button ---------------------------------------------
@dataclass(frozen=True)
class SeatOfferLink:
    """What a participant's link page shows: their seat offer now, its offer, the participant's
    language, and what the link says (`domain.link_result`)."""

    seat_offer: SeatOffer
    offer: Offer
    language: str
    result: domain.LinkResult


async def seat_offer_link(uow: Uow[Repository], principal: Principal, answer: domain.Answer, now: datetime) -> SeatOfferLink:
    """A link opened (GET): the participant's seat offer as it is `now`. Changes nothing."""
    return await _link_view(uow, principal, answer, now, answered_now=False)


async def answer_by_link(
    uow: Uow[Repository], principal: Principal, answer: domain.Answer, correlation_id: uuid.UUID, now: datetime
) -> SeatOfferLink:
    """A link's button pressed (POST): one call of the organisers' answer use case, with the
    participant's principal. A second press, or a seat offer that is not open any more, changes
    nothing: the page then says so (`again`, `not_open`)."""
    signup_id, edition_id = _linked(principal)
    try:
        await _ANSWERS[answer](uow, principal, edition_id, signup_id, correlation_id, now)
    except Conflict:
        return await _link_view(uow, principal, answer, now, answered_now=False)
    return await _link_view(uow, principal, answer, now, answered_now=True)


def _linked(principal: Principal) -> tuple[str, str]:
    if principal.signup_id is None or principal.edition_id is None:
        raise NotFound("unknown_seat_offer", "a seat offer is answered through its participant's link")
    return principal.signup_id, principal.edition_id


async def _link_view(
    uow: Uow[Repository], principal: Principal, answer: domain.Answer, now: datetime, answered_now: bool
) -> SeatOfferLink:
    signup_id, edition_id = _linked(principal)
    async with uow.transaction() as tx:
        await _visible_edition(tx, principal, edition_id, signup_id)
        seat_offer = await _seat_offer(tx, edition_id, signup_id, now, principal)
        offer = await tx.repo.offer(seat_offer.offer_id)
        participant = await tx.repo.participant(signup_id)
    assert offer is not None and participant is not None
    return SeatOfferLink(seat_offer, offer, participant.language, domain.link_result(answer, seat_offer, answered_now))


_ANSWERS = {"accept": accept_seat_offer, "decline": decline_seat_offer}


async def expire_seat_offers(uow: Uow[Repository], now: datetime, regions: domain.Regions = None) -> int:
    """End the seat offers whose time is up at `now` (the platform clock) in editions of `regions`, one
    transaction per edition; return how many."""
    async with uow.transaction() as tx:
        editions = await tx.repo.editions_with_expired_seat_offers(now, regions)
    ended = 0
    for edition_id in editions:
        async with uow.transaction() as tx:
            found = await _known_edition(tx, edition_id, lock=True)
            decisions = domain.expire_due(await tx.repo.seat_offers_of(edition_id, now, open_only=True))
            fallback = uuid.uuid4()
            for decision in decisions:
                await _execute(tx, found, decision, fallback, now)
        ended += len(decisions)
    return ended


async def _execute(
    tx: Tx[Repository], edition: Edition, decision: domain.SeatOfferDecision, fallback: uuid.UUID, now: datetime
) -> None:
    """Carry out what an answer or an expiry means, and announce it."""
    seat_offer = decision.seat_offer
    await tx.repo.end_seat_offer(seat_offer.signup_id, seat_offer.offer_id, decision.status, now)
    await tx.repo.set_outcome(seat_offer.signup_id, decision.outcome)
    await _mark(tx, edition, decision.rematch)
    participant = await tx.repo.participant(seat_offer.signup_id)
    assert participant is not None
    envelope = {
        "region": edition.region, "edition": edition.id, "run_id": seat_offer.run_id,
        "correlation_id": domain.correlation_of(participant, fallback), "signup_id": seat_offer.signup_id,
    }
    if decision.ended is None:
        offer = await tx.repo.offer(seat_offer.offer_id)
        assert offer is not None
        tx.publish(MatchAssigned(**envelope, rank=seat_offer.rank, offer=_summary(offer)))
    else:
        tx.publish(SeatOfferEnded(**envelope, offer_id=seat_offer.offer_id, reason=decision.ended))


# --- runs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeatOfferRules:
    hours: float  # how long a seat offer is held
    timezone: tzinfo  # where "the day before the visit" ends


async def start_run(
    uow: Uow[Repository],
    principal: Principal,
    edition_id: str,
    run_id: uuid.UUID,
    regions: domain.Regions = None,
    correlation_id: uuid.UUID | None = None,
) -> MatchRun:
    """Record a new run: 404 unknown (or not visible) edition, 409 `edition_closed` / `edition_cancelled`
    (never matched again) or `run_in_progress` (one already queued or running). Incremental once seats
    are held. Running when this instance serves the edition's region (`regions`), otherwise queued for
    an instance that does (`domain.requested_status`)."""
    async with uow.transaction() as tx:
        found = await _visible_edition(tx, principal, edition_id)
        domain.check_matchable(found)
        kind = await _run_kind(tx, edition_id)
        status = domain.requested_status(regions, found.region)
        if not await tx.repo.start_run(run_id, edition_id, kind, status, correlation_id):
            raise Conflict("run_in_progress", f"a match run of edition {edition_id} is already queued or running")
        started = await tx.repo.run(run_id)
    assert started is not None
    return started


async def _run_kind(tx: Tx[Repository], edition_id: str) -> str:
    """Incremental once seats are held (published assignments or open seat offers), else full."""
    return "incremental" if await tx.repo.held_assignments(edition_id=edition_id) else "full"


@dataclass(frozen=True)
class Snapshot:
    """What a run reads in one transaction before it solves."""

    problem: engine.Problem
    offers: dict[str, Offer]
    participants: dict[str, Participant]
    previous: dict[str, MatchOutcome]  # what each participant was last told
    open_seat_offers: set[domain.Pair]
    declined: set[domain.Pair]
    expiry: dict[str, datetime | None]  # per offer: when a seat offer made now would end
    now: datetime  # the platform clock's, when the snapshot was taken: seat offers are made at it
    held: list[domain.Assignment] = dataclasses.field(default_factory=list)  # seats held (published, offered)


async def take_snapshot(
    uow: Uow[Repository], edition_id: str, rules: SeatOfferRules, now: datetime, *, preview: bool = False
) -> Snapshot:
    """What a run reads (one transaction), at `now` on the platform clock, with the organisers' live
    overrides (`domain.with_overrides`). 409 `edition_closed` / `edition_cancelled`: the edition is not
    matched any more. `preview`: a dry run's read, which writes nothing (the re-match mark stays)."""
    async with uow.transaction() as tx:
        domain.check_matchable(await _known_edition(tx, edition_id))
        if not preview:
            await tx.repo.clear_rematch(edition_id)
        pinned, forbidden = domain.override_pairs(await tx.repo.overrides_of(edition_id))
        offers = {o.id: o for o in await tx.repo.offers_of(edition_id)}
        participants = {p.signup_id: p for p in await tx.repo.participants_of(edition_id)}
        held = await tx.repo.held_assignments(edition_id=edition_id)
        displaced = await tx.repo.displaced_participants(edition_id)
        previous = await tx.repo.outcomes_of(edition_id)
        declined = await tx.repo.declined_pairs(edition_id)
    expiry = {o.id: domain.offer_expiry(now, o.date, rules.hours, rules.timezone) for o in offers.values()}
    waiting = {sid for sid, told in previous.items() if told.state in domain.WAITING_STATES} & participants.keys()
    too_late = {offer_id for offer_id, expires in expiry.items() if expires is None}
    problem = domain.build_problem(
        offers.values(), participants.values(), [(a.signup_id, a.offer_id) for a in held],
        displaced & participants.keys(), declined, waiting, too_late,
    )
    problem = domain.with_overrides(problem, pinned, forbidden)
    open_seat_offers = {(a.signup_id, a.offer_id) for a in held if a.status == "offered"}
    return Snapshot(problem, offers, participants, previous, open_seat_offers, declined, expiry, now, list(held))


async def record_result(
    uow: Uow[Repository],
    run_id: uuid.UUID,
    edition_id: str,
    correlation_id: uuid.UUID,
    snap: Snapshot,
    result: engine.Result,
    started: float,
    attempt: int = 1,
) -> domain.RunFigures:
    """Write a run's result and announce it. `correlation_id`: for participants whose own is unknown.
    `attempt`: the execution writing it; if the run was taken over by another instance meanwhile
    (it lost its lock), nothing is written: Conflict `run_taken_over`. If the edition was closed or
    cancelled while the engine worked, nothing is written either: Conflict `edition_closed` /
    `edition_cancelled` (checked under the edition's lock, which closing and cancelling take too)."""
    async with uow.transaction() as tx:
        found = await _known_edition(tx, edition_id, lock=True)
        ours = await tx.repo.run(run_id, lock=True)
        if ours is None or ours.status != "running" or ours.attempt != attempt:
            raise Conflict("run_taken_over", f"match run {run_id} was taken over by another instance")
        domain.check_matchable(found)
        # Whatever changed while the engine ran is not overwritten: such pairs are left for the next run.
        # That includes people whose seat offer was answered or expired meanwhile.
        still_valid = await tx.repo.still_valid(edition_id)
        answered = {sid for sid, _ in snap.open_seat_offers - still_valid.open_seat_offers}
        current = still_valid.participants - answered
        plan = domain.plan(snap.problem, result, snap.previous, snap.open_seat_offers, snap.declined)
        new = [a for a in plan.new_assignments if a.participant in current and a.offer in still_valid.offers]
        offered = [a for a in plan.new_seat_offers if a.participant in current and a.offer in still_valid.offers]
        if answered or len(new) + len(offered) < len(plan.new_assignments) + len(plan.new_seat_offers):
            await tx.repo.mark_for_rematch(edition_id)
        await tx.repo.insert_assignments(edition_id, run_id, new)
        # Never None here: build_problem kept waiting people off the offers that are too late to offer.
        expiry: dict[str, datetime] = {a.participant: snap.expiry[a.offer] for a in offered}  # type: ignore[misc]
        await tx.repo.insert_seat_offers(edition_id, run_id, [(a, expiry[a.participant]) for a in offered], snap.now)
        await tx.repo.upsert_outcomes(edition_id, run_id, [o for o in plan.outcomes if o.signup_id in current])
        await tx.repo.insert_explanations(run_id, domain.explanations(result, current))

        def about(signup_id: str) -> dict[str, Any]:
            participant = snap.participants[signup_id]
            return {
                "region": found.region, "edition": edition_id, "run_id": run_id, "signup_id": signup_id,
                "correlation_id": domain.correlation_of(participant, correlation_id),
            }

        for a in new:
            tx.publish(MatchAssigned(**about(a.participant), rank=a.rank, offer=_summary(snap.offers[a.offer])))
        for a in offered:
            tx.publish(SeatOffered(**about(a.participant), rank=a.rank, expires_at=expiry[a.participant],
                                   offer=_summary(snap.offers[a.offer])))
        for o in plan.announce:
            if o.signup_id not in current:
                continue
            if o.state == "waitlisted":
                tx.publish(MatchWaitlisted(**about(o.signup_id), position=o.position, reason_code=o.reason_code or ""))
            else:
                tx.publish(MatchUnmatched(**about(o.signup_id), reason_code=o.reason_code or "", reason=o.reason))
        figures = domain.figures(
            snap.problem, result, len(new), plan.outcomes, int((time.perf_counter() - started) * 1000), len(offered)
        )
        await tx.repo.finish_run(run_id, figures)
    return figures


async def fail_run(uow: Uow[Repository], run_id: uuid.UUID, error: str, attempt: int | None = None) -> None:
    """`attempt`: only if that execution still has the run."""
    async with uow.transaction() as tx:
        await tx.repo.fail_run(run_id, error, attempt)


async def set_progress(uow: Uow[Repository], run_id: uuid.UUID, attempt: int, stage: str, fraction: float) -> None:
    async with uow.transaction() as tx:
        await tx.repo.set_progress(run_id, attempt, stage, fraction)


class Locks(Protocol):
    """The locks an instance holds on the runs it executes (repository.RunLocks; a fake in unit tests)."""

    held: set[uuid.UUID]

    async def take(self, run_id: uuid.UUID) -> bool: ...

    async def release(self, run_id: uuid.UUID) -> None: ...

    async def check(self) -> set[uuid.UUID]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TakenOver:
    execute: list[MatchRun]  # started (queued) or resumed (interrupted) here: their locks are held now
    failed: list[MatchRun]  # edition closed or cancelled, or interrupted too often (domain.take_over): failed
    busy: int = 0  # runs of the regions a live instance executes (this one included): left alone


async def take_over_runs(uow: Uow[Repository], locks: Locks, regions: domain.Regions = None) -> TakenOver:
    """The queued and running runs of editions of `regions` that nobody executes: those whose lock this
    instance gets (a live instance holds the lock of every run it executes, this one included, so
    those are never touched). Each is started, resumed or failed (`domain.take_over`). One transaction;
    the run rows are locked and rows another instance is taking over are skipped, so two instances of
    one region never take the same run."""
    taken: list[uuid.UUID] = []
    execute: list[MatchRun] = []
    failed: list[MatchRun] = []
    busy = 0
    try:
        async with uow.transaction() as tx:
            for run in await tx.repo.runs_to_take_over(regions):
                if not await locks.take(run.id):
                    busy += 1  # executed by a live instance (or this one)
                    continue
                taken.append(run.id)
                edition = await tx.repo.edition(run.edition_id)
                if domain.take_over(run, edition) == "fail":
                    await tx.repo.fail_run(run.id, domain.take_over_error(run, edition))
                    failed.append(run)
                    continue
                await tx.repo.begin_run(run.id)
                begun = await tx.repo.run(run.id)  # running, its next attempt
                assert begun is not None
                execute.append(begun)
    except BaseException:
        for run_id in taken:
            await locks.release(run_id)
        raise
    for run in failed:
        await locks.release(run.id)
    return TakenOver(execute, failed, busy)


async def editions_to_rematch(uow: Uow[Repository], debounce: float, regions: domain.Regions = None) -> list[str]:
    """Editions of `regions` marked for re-match at least `debounce` seconds ago (more changes may follow)."""
    async with uow.transaction() as tx:
        return await tx.repo.editions_to_rematch(debounce, regions)


def _summary(o: Offer) -> OfferSummary:
    """The offer as events show it: matching's copy, changed by OfferChanged."""
    return OfferSummary(offer_id=o.id, host_org=o.host_org, title=o.title, date=o.date, format=o.format, location=o.location)


class RunMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("match_runs", "Match runs finished", ["kind", "status"], registry=registry)
        self.seconds = Histogram("match_run_seconds", "Duration of match runs", registry=registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.assigned = Counter("match_assignments_published", "Assignments published", registry=registry)


class Runner:
    """Executes runs in the background and remembers them, so shutdown can wait for them; runs the
    instance's loop (taking over runs, seat-offer expiry, re-matches). Every step is a use case above.

    `regions`: the regions this instance serves (None: every region). `locks`: the run locks it holds.
    `clock`: the platform clock (`rt.clock`). `stall_runs`: crash tests only (failpoint
    `match_run_stalls`): a run stops after its snapshot and waits until the process is killed, holding
    its lock."""

    def __init__(
        self,
        uow: Uow[Repository],
        metrics: RunMetrics,
        seat_offer_rules: SeatOfferRules,
        locks: Locks,
        regions: domain.Regions = None,
        stall_runs: bool = False,
        *,
        clock: Now,
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.metrics = metrics
        self.seat_offer_rules = seat_offer_rules
        self.locks = locks
        self.regions = regions
        self.stall_runs = stall_runs
        self.tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._started_up = False  # the first take-over (start-up) is logged even when it finds nothing

    async def start(self, principal: Principal, edition_id: str, correlation_id: uuid.UUID | None = None) -> MatchRun:
        """Record a new run (404 unknown or not visible edition, 409 one already queued or running) and
        execute it in the background, or leave it queued for an instance of the edition's region."""
        run_id = await self._locked_run_id()
        try:
            started = await start_run(self.uow, principal, edition_id, run_id, self.regions, correlation_id or run_id)
        except BaseException:
            await self.locks.release(run_id)
            raise
        if started.status == "queued":
            await self.locks.release(run_id)
            log.info("match run queued for an instance of the edition's region", run_id=str(run_id), edition_id=edition_id)
        else:
            self._spawn(started)
        return started

    async def preview(self, principal: Principal, edition_id: str) -> Preview:
        """A dry run of the edition as of the platform clock's now (nothing written)."""
        return await preview(self.uow, principal, edition_id, self.seat_offer_rules, self.clock.now())

    async def _locked_run_id(self) -> uuid.UUID:
        """A new run id, locked for this instance before the run is recorded: no other instance can
        take it over while it is being started here."""
        for _ in range(8):
            run_id = uuid.uuid4()
            if await self.locks.take(run_id):
                return run_id
        raise RuntimeError("no run lock could be taken")

    def _spawn(self, run: MatchRun) -> None:
        task = asyncio.create_task(self.execute(run))
        self.tasks[run.id] = task
        task.add_done_callback(lambda done: self.tasks.pop(run.id) if self.tasks.get(run.id) is done else None)

    async def execute(self, run: MatchRun) -> None:
        """Execute a run whose lock this instance holds; the lock is released when it ends."""
        with structlog.contextvars.bound_contextvars(run_id=str(run.id), edition_id=run.edition_id):
            try:
                await self._execute(run)
            finally:
                await self.locks.release(run.id)

    async def _execute(self, run: MatchRun) -> None:
        t0 = time.perf_counter()
        progress = {"stage": "loading", "fraction": 0.0}
        writer = asyncio.create_task(self._write_progress(run, progress))
        try:
            snap = await take_snapshot(self.uow, run.edition_id, self.seat_offer_rules, self.clock.now())
            if self.stall_runs:
                log.warning("failpoint match_run_stalls: the run waits until the process is killed")
                await asyncio.Event().wait()
            result = await asyncio.to_thread(
                engine.solve, snap.problem, lambda stage, fraction: progress.update(stage=stage, fraction=fraction)
            )
            writer.cancel()
            figures = await record_result(
                self.uow, run.id, run.edition_id, run.correlation_id or run.id, snap, result, t0, run.attempt
            )
            self.metrics.runs.labels(run.kind, "done").inc()
            self.metrics.assigned.inc(figures.newly_assigned)
            log.info(
                "match run done", assigned=figures.assigned, newly_assigned=figures.newly_assigned,
                newly_offered=figures.newly_offered, waitlisted=figures.waitlisted, unmatched=figures.unmatched,
                rank_cost=figures.rank_cost, duration_ms=figures.duration_ms, attempt=run.attempt,
            )
        except Exception as exc:  # noqa: BLE001 - recorded on the run, visible to the organiser
            if isinstance(exc, Conflict) and exc.code == "run_taken_over":
                log.warning("match run taken over by another instance: its result is not written here")
                return
            if isinstance(exc, Conflict) and exc.code in ("edition_closed", "edition_cancelled"):
                log.info("match run stopped: the edition is not matched any more", error=exc.code)
                await fail_run(self.uow, run.id, domain.run_error(exc), run.attempt)
                self.metrics.runs.labels(run.kind, "failed").inc()
                return
            log.exception("match run failed")
            await fail_run(self.uow, run.id, f"{type(exc).__name__}: {exc}", run.attempt)
            self.metrics.runs.labels(run.kind, "failed").inc()
        finally:
            writer.cancel()
            self.metrics.seconds.observe(time.perf_counter() - t0)

    async def _write_progress(self, run: MatchRun, progress: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(0.5)
            await set_progress(self.uow, run.id, run.attempt, progress["stage"], progress["fraction"])

    async def take_over(self) -> None:
        """Stop runs whose lock was lost to another instance; start, resume or fail the runs of the
        served regions that nobody executes (at start-up: also those this instance's predecessor left)."""
        for run_id in await self.locks.check():
            if task := self.tasks.get(run_id):
                task.cancel()
            log.warning("match run lost to another instance: stopped here", run_id=str(run_id))
        taken = await take_over_runs(self.uow, self.locks, self.regions)
        if not self._started_up:
            self._started_up = True
            log.info(
                "start-up: runs of the served regions checked", regions=",".join(self.regions or ("all",)),
                started=sum(r.attempt == 1 for r in taken.execute), resumed=sum(r.attempt > 1 for r in taken.execute),
                failed=len(taken.failed), executing_elsewhere=taken.busy,
            )
        for run in taken.failed:
            log.warning("match run failed on take-over (edition closed or cancelled, or interrupted too often)",
                        run_id=str(run.id), edition_id=run.edition_id, attempts=run.attempt)
            self.metrics.runs.labels(run.kind, "failed").inc()
        for run in taken.execute:
            how = "queued match run started" if run.attempt == 1 else "interrupted match run resumed"
            log.info(how, run_id=str(run.id), edition_id=run.edition_id, attempt=run.attempt)
            self._spawn(run)

    async def rematch_loop(self, stopping: asyncio.Event, debounce: float, poll: float) -> None:
        """Every `poll` seconds, for the editions of the served regions only: take over runs nobody
        executes (queued ones, interrupted ones), end seat offers whose time is up on the platform
        clock, and re-match open editions that changed after publication (withdrawals, cancellations,
        late or approved sign-ups, changed sign-ups, more seats, declined and expired seat offers). At
        shutdown: wait for the runs executing here."""
        while not stopping.is_set():
            try:
                await self.take_over()
                if expired := await expire_seat_offers(self.uow, self.clock.now(), self.regions):
                    log.info("seat offers expired", count=expired)
                for edition_id in await editions_to_rematch(self.uow, debounce, self.regions):
                    try:
                        await self.start(SELF, edition_id)
                    except Conflict:
                        pass  # a run is already queued or going; the edition stays marked for the next round
            except Exception:  # noqa: BLE001 - database away: try again next round
                log.exception("re-match round failed")
            await pause(stopping, poll)
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.locks.close()
