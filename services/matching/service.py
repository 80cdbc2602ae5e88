"""Matching use cases: start a run, execute it, re-match what changed after publication, and the
answers to seat offers (accept, decline, expiry).

A run reads a snapshot of the edition (one transaction), solves it with the engine in a worker
thread (progress written to `match_runs` while it runs), and writes the result in one transaction:
new assignments and seat offers, every participant's outcome, the events to announce (outbox) and
the run's figures. Published assignments and open seat offers are frozen: every run keeps them and
only distributes what is free.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from estafette.runtime.http import Conflict, NotFound
from estafette.runtime.loops import pause
from estafette.runtime.uow import Transaction, UnitOfWork
from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, OfferSummary, Recipient, SeatOfferEnded, SeatOffered
from services.matching import domain, engine, repository as repo

Pair = tuple[str, str]

log = structlog.get_logger(__name__)


class RunMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("match_runs", "Match runs finished", ["kind", "status"], registry=registry)
        self.seconds = Histogram("match_run_seconds", "Duration of match runs", registry=registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.assigned = Counter("match_assignments_published", "Assignments published", registry=registry)


@dataclass(frozen=True)
class SeatOfferRules:
    hours: float  # how long a seat offer is held
    timezone: tzinfo  # where "the day before the visit" ends


class Runner:
    """Starts runs in the background and remembers them, so shutdown can wait for them."""

    def __init__(self, uow: UnitOfWork, metrics: RunMetrics, offer_rules: SeatOfferRules) -> None:
        self.uow = uow
        self.metrics = metrics
        self.offer_rules = offer_rules
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, edition_id: str, correlation_id: uuid.UUID | None = None) -> dict[str, Any]:
        """Record a new run (404 unknown edition, 409 one already running) and execute it in the background."""
        run_id = uuid.uuid4()
        async with self.uow.transaction() as tx:
            if await repo.get_edition(tx.conn, edition_id) is None:
                raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching (yet)")
            kind = "incremental" if await repo.held_assignments(tx.conn, edition_id) else "full"
            if not await repo.start_run(tx.conn, run_id, edition_id, kind):
                raise Conflict("run_in_progress", f"a match run of edition {edition_id} is already running")
            run = await repo.get_run(tx.conn, run_id)
        task = asyncio.create_task(self.execute(run_id, edition_id, kind, correlation_id or run_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        assert run is not None
        return run

    async def execute(self, run_id: uuid.UUID, edition_id: str, kind: str, correlation_id: uuid.UUID) -> None:
        t0 = time.perf_counter()
        progress = {"stage": "loading", "fraction": 0.0}
        writer = asyncio.create_task(self._write_progress(run_id, progress))
        try:
            async with self.uow.transaction() as tx:
                snap = await _snapshot(tx, edition_id, self.offer_rules)
            result = await asyncio.to_thread(
                engine.solve, snap.problem, lambda stage, fraction: progress.update(stage=stage, fraction=fraction)
            )
            writer.cancel()
            async with self.uow.transaction() as tx:
                figures = await _publish(tx, run_id, edition_id, correlation_id, snap, result, t0)
            self.metrics.runs.labels(kind, "done").inc()
            self.metrics.assigned.inc(figures["newly_assigned"])
            log.info("match run done", run_id=str(run_id), edition=edition_id, **{k: v for k, v in figures.items() if k != "input_hash"})
        except Exception as exc:  # noqa: BLE001 - recorded on the run, visible to the organiser
            writer.cancel()
            log.exception("match run failed", run_id=str(run_id), edition=edition_id)
            async with self.uow.transaction() as tx:
                await repo.fail_run(tx.conn, run_id, f"{type(exc).__name__}: {exc}")
            self.metrics.runs.labels(kind, "failed").inc()
        finally:
            self.metrics.seconds.observe(time.perf_counter() - t0)

    async def _write_progress(self, run_id: uuid.UUID, progress: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(0.5)
            async with self.uow.transaction() as tx:
                await repo.set_progress(tx.conn, run_id, progress["stage"], progress["fraction"])

    async def rematch_loop(self, stopping: asyncio.Event, debounce: float, poll: float) -> None:
        """End seat offers whose time is up, and re-match editions that changed after publication
        (withdrawals, cancellations, late sign-ups, declined and expired seat offers)."""
        async with self.uow.transaction() as tx:
            if interrupted := await repo.fail_interrupted_runs(tx.conn):
                log.warning("runs interrupted by a restart marked failed", count=interrupted)
        while not stopping.is_set():
            try:
                if expired := await expire_seat_offers(self.uow):
                    log.info("seat offers expired", count=expired)
                async with self.uow.transaction() as tx:
                    editions = await repo.dirty_editions(tx.conn, debounce)
                for edition_id in editions:
                    try:
                        await self.start(edition_id)
                    except Conflict:
                        pass  # a run is already going; the edition stays dirty for the next round
            except Exception:  # noqa: BLE001 - database away: try again next round
                log.exception("re-match round failed")
            await pause(stopping, poll)
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass(frozen=True)
class Snapshot:
    """What a run reads in one transaction before it solves."""

    problem: engine.Problem
    offers: dict[str, domain.OfferRow]
    people: dict[str, domain.ParticipantRow]
    previous: dict[str, tuple[str, str | None]]  # what each participant was last told
    open_offers: set[Pair]
    declined: set[Pair]
    expiry: dict[str, datetime | None]  # per offer: when a seat offer made now would end


async def _snapshot(tx: Transaction, edition_id: str, rules: SeatOfferRules) -> Snapshot:
    await repo.clear_dirty(tx.conn, edition_id)
    now = await repo.now(tx.conn)
    offers = {r["id"]: domain.OfferRow(**dict(r)) for r in await repo.offers_of(tx.conn, edition_id)}
    people = {r["signup_id"]: domain.ParticipantRow(**dict(r)) for r in await repo.participants_of(tx.conn, edition_id)}
    held = await repo.held_assignments(tx.conn, edition_id)
    frozen = [(r["signup_id"], r["offer_id"]) for r in held]
    displaced = await repo.displaced_participants(tx.conn, edition_id)
    previous = await repo.outcomes_of(tx.conn, edition_id)
    declined = await repo.declined_pairs(tx.conn, edition_id)
    expiry = {o.id: domain.offer_expiry(now, o.date, rules.hours, rules.timezone) for o in offers.values()}
    waiting = {pid for pid, (state, _) in previous.items() if state in domain.WAITING_STATES} & people.keys()
    too_late = {oid for oid, expires in expiry.items() if expires is None}
    problem = domain.build_problem(
        offers.values(), people.values(), frozen, displaced & people.keys(), declined, waiting, too_late
    )
    open_offers = {(r["signup_id"], r["offer_id"]) for r in held if r["status"] == "offered"}
    return Snapshot(problem, offers, people, previous, open_offers, declined, expiry)


async def _publish(
    tx: Transaction,
    run_id: uuid.UUID,
    edition_id: str,
    correlation_id: uuid.UUID,
    snap: Snapshot,
    result: engine.Result,
    t0: float,
) -> dict[str, Any]:
    edition = await repo.lock_edition(tx.conn, edition_id)
    # Whatever changed while the engine ran is not overwritten: such pairs are left for the next run.
    # That includes people whose seat offer was answered or expired meanwhile.
    still_valid = await repo.still_valid(tx.conn, edition_id)
    answered = {pid for pid, _ in snap.open_offers - still_valid.open_offers}
    current = still_valid.participants - answered
    plan = domain.plan(snap.problem, result, snap.previous, snap.open_offers, snap.declined)
    new = [a for a in plan.new_assignments if a.participant in current and a.offer in still_valid.offers]
    offered = [a for a in plan.new_offers if a.participant in current and a.offer in still_valid.offers]
    if answered or len(new) + len(offered) < len(plan.new_assignments) + len(plan.new_offers):
        await repo.mark_dirty(tx.conn, edition_id)
    await repo.insert_assignments(tx.conn, edition_id, run_id, [(a.participant, a.offer, a.rank) for a in new])
    # Never None here: build_problem kept waiting people off the offers that are too late to offer.
    expiry = {a.participant: snap.expiry[a.offer] for a in offered}
    await repo.insert_seat_offers(
        tx.conn, edition_id, run_id, [(a.participant, a.offer, a.rank, expiry[a.participant]) for a in offered]
    )
    await repo.upsert_outcomes(
        tx.conn, edition_id, run_id,
        [(o.signup_id, o.state, o.reason_code, o.position) for o in plan.outcomes if o.signup_id in current],
    )
    envelope = {"region": edition["region"], "edition": edition_id, "correlation_id": correlation_id, "run_id": run_id}
    for a in new:
        tx.publish(MatchAssigned(**envelope, signup_id=a.participant, rank=a.rank,
                                 recipient=_recipient(snap.people[a.participant]), offer=_summary(snap.offers[a.offer])))
    for a in offered:
        tx.publish(SeatOffered(**envelope, signup_id=a.participant, rank=a.rank, expires_at=expiry[a.participant],
                               recipient=_recipient(snap.people[a.participant]), offer=_summary(snap.offers[a.offer])))
    for o in plan.announce:
        if o.signup_id not in current:
            continue
        recipient = _recipient(snap.people[o.signup_id])
        if o.state == "waitlisted":
            tx.publish(MatchWaitlisted(**envelope, signup_id=o.signup_id, position=o.position, reason_code=o.reason_code or "", recipient=recipient))
        else:
            tx.publish(MatchUnmatched(**envelope, signup_id=o.signup_id, reason_code=o.reason_code or "", reason=o.reason, recipient=recipient))
    figures = domain.figures(
        snap.problem, result, len(new), plan.outcomes, int((time.perf_counter() - t0) * 1000), newly_offered=len(offered)
    )
    await repo.finish_run(tx.conn, run_id, figures)
    return figures


def _recipient(p: domain.ParticipantRow) -> Recipient:
    return Recipient(name=p.name, email=p.email, language=p.language)


def _summary(o: domain.OfferRow) -> OfferSummary:
    return OfferSummary(offer_id=o.id, host_org=o.host_org, title=o.title, date=o.date, format=o.format, location=o.location)


# --- seat offers -------------------------------------------------------------------------------
async def accept_seat_offer(uow: UnitOfWork, edition_id: str, signup_id: str, correlation_id: uuid.UUID) -> dict[str, Any]:
    """The seat becomes the participant's assignment: MatchAssigned, as if a run had placed them."""
    async with uow.transaction() as tx:
        edition, offer = await _open_seat_offer(tx, edition_id, signup_id)
        await repo.end_seat_offer(tx.conn, signup_id, offer["offer_id"], "active")
        await repo.set_outcome(tx.conn, signup_id, "assigned")
        person = domain.ParticipantRow(**dict(await repo.participant(tx.conn, signup_id)))
        host_offer = domain.OfferRow(**dict(await repo.offer(tx.conn, offer["offer_id"])))
        tx.publish(MatchAssigned(
            region=edition["region"], edition=edition_id, correlation_id=correlation_id, run_id=offer["run_id"],
            signup_id=signup_id, rank=offer["rank"], recipient=_recipient(person), offer=_summary(host_offer),
        ))
        return _seat_offer_view(await repo.seat_offer_of(tx.conn, edition_id, signup_id))


async def decline_seat_offer(uow: UnitOfWork, edition_id: str, signup_id: str, correlation_id: uuid.UUID) -> dict[str, Any]:
    """The participant waits for their other choices; the seat goes to the next person (re-match)."""
    async with uow.transaction() as tx:
        edition, offer = await _open_seat_offer(tx, edition_id, signup_id)
        await repo.end_seat_offer(tx.conn, signup_id, offer["offer_id"], "declined")
        await _back_to_waiting(tx, edition, offer, "declined", correlation_id)
        return _seat_offer_view(await repo.seat_offer_of(tx.conn, edition_id, signup_id))


async def expire_seat_offers(uow: UnitOfWork) -> int:
    """End the seat offers whose time is up, one transaction per edition; return how many."""
    async with uow.transaction() as tx:
        editions = await repo.editions_with_expired_offers(tx.conn)
    ended = 0
    for edition_id in editions:
        async with uow.transaction() as tx:
            edition = await repo.lock_edition(tx.conn, edition_id)
            expired = await repo.expire_seat_offers(tx.conn, edition_id)
            correlation_id = uuid.uuid4()
            for offer in expired:
                await _back_to_waiting(tx, edition, offer, "expired", correlation_id)
        ended += len(expired)
    return ended


async def _open_seat_offer(tx: Transaction, edition_id: str, signup_id: str) -> tuple[asyncpg.Record, asyncpg.Record]:
    """The edition (locked: runs and consumers wait) and the participant's open seat offer; 404/409 otherwise."""
    edition = await repo.lock_edition(tx.conn, edition_id)
    if edition is None:
        raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching")
    offer = await repo.seat_offer_of(tx.conn, edition_id, signup_id)
    if offer is None:
        raise NotFound("unknown_seat_offer", f"sign-up {signup_id} has no seat offer in edition {edition_id}")
    state = domain.seat_offer_state(offer["status"], offer["expires_at"], offer["checked_at"])
    if state != "open":
        raise Conflict(f"seat_offer_{state}", _NOT_OPEN[state].format(offer=offer["offer_id"], expires_at=offer["expires_at"].isoformat()))
    return edition, offer


_NOT_OPEN = {
    "expired": "the seat offer on {offer} expired at {expires_at}; the seat has been offered to the next person on the waiting list",
    "accepted": "the seat offer on {offer} has been accepted already: the place is yours",
    "declined": "the seat offer on {offer} was declined; the seat has been offered to the next person on the waiting list",
    "withdrawn": "the sign-up was withdrawn, so its seat offer on {offer} is void",
    "cancelled": "the host cancelled {offer}, so its seat offer is void",
}


async def _back_to_waiting(tx: Transaction, edition: asyncpg.Record, offer: asyncpg.Record, reason: str, correlation_id: uuid.UUID) -> None:
    """After a declined or expired seat offer: the pair is never placed again (its row says so), the
    participant waits for their other choices, and the re-matcher offers the seat to the next person."""
    await repo.set_outcome(tx.conn, offer["signup_id"], "waitlisted")
    await repo.mark_dirty(tx.conn, edition["id"])
    tx.publish(SeatOfferEnded(
        region=edition["region"], edition=edition["id"], correlation_id=correlation_id, run_id=offer["run_id"],
        signup_id=offer["signup_id"], offer_id=offer["offer_id"], reason=reason,
    ))


def _seat_offer_view(row: asyncpg.Record) -> dict[str, Any]:
    view = {k: row[k] for k in ("signup_id", "offer_id", "rank", "run_id", "offered_at", "expires_at", "ended_at")}
    return {**view, "state": domain.seat_offer_state(row["status"], row["expires_at"], row["checked_at"])}


async def seat_offers(uow: UnitOfWork, edition_id: str) -> dict[str, Any]:
    """Every seat offer of the edition and what became of it, oldest first, with counts per state."""
    async with uow.transaction() as tx:
        if await repo.get_edition(tx.conn, edition_id) is None:
            raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching")
        items = [_seat_offer_view(r) for r in await repo.seat_offers_view(tx.conn, edition_id)]
    counts = dict.fromkeys(("open", "accepted", "declined", "expired", "withdrawn", "cancelled"), 0)
    for item in items:
        counts[item["state"]] += 1
    return {"counts": counts, "seat_offers": items}


async def edition(uow: UnitOfWork, edition_id: str) -> dict[str, Any]:
    """What matching has received of an edition so far (it learns through Kafka, a moment after registration)."""
    async with uow.transaction() as tx:
        found = await repo.edition_overview(tx.conn, edition_id)
    if found is None:
        raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching (yet)")
    return found


async def runs(uow: UnitOfWork, edition_id: str) -> list[dict[str, Any]]:
    async with uow.transaction() as tx:
        return await repo.runs_of(tx.conn, edition_id)


async def run(uow: UnitOfWork, run_id: uuid.UUID) -> dict[str, Any]:
    async with uow.transaction() as tx:
        found = await repo.get_run(tx.conn, run_id)
    if found is None:
        raise NotFound("unknown_run", f"match run {run_id} does not exist")
    return found


async def assignments(uow: UnitOfWork, edition_id: str) -> dict[str, Any]:
    async with uow.transaction() as tx:
        if await repo.get_edition(tx.conn, edition_id) is None:
            raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching")
        return {
            "assignments": await repo.assignments_view(tx.conn, edition_id),
            "waiting_list": await repo.waiting_list(tx.conn, edition_id),
        }
