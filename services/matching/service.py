"""Matching use cases: start a run, execute it, re-match what changed after publication.

A run reads a snapshot of the edition (one transaction), solves it with the engine in a worker
thread (progress written to `match_runs` while it runs), and writes the result in one transaction:
new assignments, every participant's outcome, the events to announce (outbox) and the run's figures.
Published assignments are frozen: every run keeps them and only distributes what is free.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from estafette.runtime.http import Conflict, NotFound
from estafette.runtime.uow import Transaction, UnitOfWork
from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, OfferSummary, Recipient
from services.matching import domain, engine, repository as repo

log = structlog.get_logger(__name__)


class RunMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("match_runs", "Match runs finished", ["kind", "status"], registry=registry)
        self.seconds = Histogram("match_run_seconds", "Duration of match runs", registry=registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.assigned = Counter("match_assignments_published", "Assignments published", registry=registry)


class Runner:
    """Starts runs in the background and remembers them, so shutdown can wait for them."""

    def __init__(self, uow: UnitOfWork, metrics: RunMetrics) -> None:
        self.uow = uow
        self.metrics = metrics
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, edition_id: str, correlation_id: uuid.UUID | None = None) -> dict[str, Any]:
        """Record a new run (404 unknown edition, 409 one already running) and execute it in the background."""
        run_id = uuid.uuid4()
        async with self.uow.transaction() as tx:
            if await repo.get_edition(tx.conn, edition_id) is None:
                raise NotFound("unknown_edition", f"edition {edition_id} is not known to matching (yet)")
            kind = "incremental" if await repo.active_assignments(tx.conn, edition_id) else "full"
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
                problem, offers, people = await _snapshot(tx, edition_id)
            result = await asyncio.to_thread(
                engine.solve, problem, lambda stage, fraction: progress.update(stage=stage, fraction=fraction)
            )
            writer.cancel()
            async with self.uow.transaction() as tx:
                figures = await _publish(tx, run_id, edition_id, correlation_id, problem, result, offers, people, t0)
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
        """Re-match editions that changed after publication (withdrawals, cancellations, late sign-ups)."""
        async with self.uow.transaction() as tx:
            if interrupted := await repo.fail_interrupted_runs(tx.conn):
                log.warning("runs interrupted by a restart marked failed", count=interrupted)
        while not stopping.is_set():
            try:
                async with self.uow.transaction() as tx:
                    editions = await repo.dirty_editions(tx.conn, debounce)
                for edition_id in editions:
                    try:
                        await self.start(edition_id)
                    except Conflict:
                        pass  # a run is already going; the edition stays dirty for the next round
            except Exception:  # noqa: BLE001 - database away: try again next round
                log.exception("re-match round failed")
            try:
                await asyncio.wait_for(stopping.wait(), timeout=poll)
            except TimeoutError:
                pass
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _snapshot(
    tx: Transaction, edition_id: str
) -> tuple[engine.Problem, dict[str, domain.OfferRow], dict[str, domain.ParticipantRow]]:
    await repo.clear_dirty(tx.conn, edition_id)
    offers = {r["id"]: domain.OfferRow(**dict(r)) for r in await repo.offers_of(tx.conn, edition_id)}
    people = {r["signup_id"]: domain.ParticipantRow(**dict(r)) for r in await repo.participants_of(tx.conn, edition_id)}
    frozen = [(r["signup_id"], r["offer_id"]) for r in await repo.active_assignments(tx.conn, edition_id)]
    displaced = await repo.displaced_participants(tx.conn, edition_id)
    problem = domain.build_problem(offers.values(), people.values(), frozen, displaced & people.keys())
    return problem, offers, people


async def _publish(
    tx: Transaction,
    run_id: uuid.UUID,
    edition_id: str,
    correlation_id: uuid.UUID,
    problem: engine.Problem,
    result: engine.Result,
    offers: dict[str, domain.OfferRow],
    people: dict[str, domain.ParticipantRow],
    t0: float,
) -> dict[str, Any]:
    edition = await repo.lock_edition(tx.conn, edition_id)
    # Whatever changed while the engine ran is not overwritten: such pairs are left for the next run.
    still_valid = await repo.still_valid(tx.conn, edition_id)
    plan = domain.plan(problem, result, await repo.outcomes_of(tx.conn, edition_id))
    new = [a for a in plan.new_assignments if (a.participant in still_valid.participants and a.offer in still_valid.offers)]
    if len(new) < len(plan.new_assignments):
        await repo.mark_dirty(tx.conn, edition_id)
    await repo.insert_assignments(tx.conn, edition_id, run_id, [(a.participant, a.offer, a.rank) for a in new])
    await repo.upsert_outcomes(
        tx.conn, edition_id, run_id,
        [(o.signup_id, o.state, o.reason_code, o.position) for o in plan.outcomes if o.signup_id in still_valid.participants],
    )
    envelope = {"region": edition["region"], "edition": edition_id, "correlation_id": correlation_id, "run_id": run_id}
    for a in new:
        person, offer = people[a.participant], offers[a.offer]
        tx.publish(MatchAssigned(**envelope, signup_id=a.participant, rank=a.rank, recipient=_recipient(person), offer=OfferSummary(
            offer_id=offer.id, host_org=offer.host_org, title=offer.title, date=offer.date, format=offer.format, location=offer.location)))
    for o in plan.announce:
        if o.signup_id not in still_valid.participants:
            continue
        recipient = _recipient(people[o.signup_id])
        if o.state == "waitlisted":
            tx.publish(MatchWaitlisted(**envelope, signup_id=o.signup_id, position=o.position, reason_code=o.reason_code or "", recipient=recipient))
        else:
            tx.publish(MatchUnmatched(**envelope, signup_id=o.signup_id, reason_code=o.reason_code or "", reason=o.reason, recipient=recipient))
    figures = domain.figures(problem, result, len(new), plan.outcomes, int((time.perf_counter() - t0) * 1000))
    await repo.finish_run(tx.conn, run_id, figures)
    return figures


def _recipient(p: domain.ParticipantRow) -> Recipient:
    return Recipient(name=p.name, email=p.email, language=p.language)


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
