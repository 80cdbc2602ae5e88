"""The matching HTTP API (OpenAPI at /docs): start a run, follow its progress, see the results, and
answer seat offers. Each route is one typed call of the service; the models below are the answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.uow import Uow
from services.matching import service
from services.matching.domain import MatchRun

if TYPE_CHECKING:
    from services.matching.repository import Repository


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EditionOut(Out):
    id: str
    region: str
    status: Literal["open", "closed"]
    rematch_pending: bool = Field(description="Changed after publication; the re-matcher will run it shortly.")
    offers: int = Field(description="Published offers received.")
    seats: int = Field(description="Seats on the published offers (sum of their capacities).")
    participants: int = Field(description="Active participants received.")
    assignments: int
    seat_offers_open: int


class MatchRunOut(Out):
    id: uuid.UUID
    edition_id: str
    kind: Literal["full", "incremental"]
    status: Literal["running", "done", "failed"]
    stage: str = Field(description="loading, prepare, build, solve, explain, done or failed.")
    progress: float = Field(ge=0, le=1)
    started_at: datetime
    finished_at: datetime | None
    error: str | None = Field(description="Why a failed run failed.")
    # The figures of a finished run (null until then):
    input_hash: str | None = Field(None, description="Fingerprint of the run's input.")
    participants: int | None = None
    offers: int | None = None
    assigned: int | None = Field(None, description="Placements in the result, frozen ones included.")
    newly_assigned: int | None = None
    newly_offered: int | None = Field(None, description="Seats offered to people on the waiting list.")
    waitlisted: int | None = None
    unmatched: int | None = None
    rank_cost: int | None = Field(None, description="Sum of rank² over all placements.")
    duration_ms: int | None = None

    @classmethod
    def of(cls, run: MatchRun) -> MatchRunOut:
        fields = {name: getattr(run, name) for name in ("id", "edition_id", "kind", "status", "stage", "progress",
                                                       "started_at", "finished_at", "error")}
        return cls(**fields, **(vars(run.figures) if run.figures else {}))


class AssignmentOut(Out):
    signup_id: str
    offer_id: str
    rank: int
    run_id: uuid.UUID
    assigned_at: datetime


class WaitingOut(Out):
    signup_id: str
    state: Literal["offered", "waitlisted", "unmatched"]
    reason_code: str | None = Field(description="One of schemas/reasons.py, e.g. all_full.")
    position: int | None = Field(description="Place on the waiting list, from 1.")


class AssignmentsOut(Out):
    assignments: list[AssignmentOut]
    waiting_list: list[WaitingOut] = Field(description="Everyone not assigned: the waiting list in order, then the others.")


SeatOfferState = Literal["open", "accepted", "declined", "expired", "withdrawn", "cancelled"]


class SeatOfferOut(Out):
    signup_id: str
    offer_id: str
    rank: int
    run_id: uuid.UUID
    offered_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    state: SeatOfferState


class SeatOfferCounts(Out):
    open: int
    accepted: int
    declined: int
    expired: int
    withdrawn: int
    cancelled: int


class SeatOffersOut(Out):
    counts: SeatOfferCounts
    seat_offers: list[SeatOfferOut]


def build_api(uow: Uow[Repository], runner: service.Runner) -> FastAPI:
    api = create_http_api(
        "Estafette matching",
        "Optimal matching of participants to offers: runs, their progress and figures, assignments, the waiting"
        " list, and seat offers to people on the waiting list.",
    )

    @api.get("/editions/{edition_id}", responses=errors(404))
    async def edition(edition_id: str) -> EditionOut:
        """Offers, seats and participants received so far, and whether a re-match is pending."""
        return EditionOut.model_validate(await service.edition(uow, edition_id))

    @api.post("/editions/{edition_id}/match-runs", status_code=202, responses=errors(404, 409))
    async def start_run(edition_id: str, correlation_id: CorrelationId) -> MatchRunOut:
        """Start a match run. Published assignments are kept; only free seats are distributed.
        409 when a run of the edition is already running."""
        return MatchRunOut.of(await runner.start(edition_id, correlation_id))

    @api.get("/editions/{edition_id}/match-runs")
    async def list_runs(edition_id: str) -> list[MatchRunOut]:
        """The edition's runs, newest first."""
        return [MatchRunOut.of(r) for r in await service.runs(uow, edition_id)]

    @api.get("/match-runs/{run_id}", responses=errors(404))
    async def get_run(run_id: uuid.UUID) -> MatchRunOut:
        """A run's stage and progress while it runs, then its figures (or its error)."""
        return MatchRunOut.of(await service.run(uow, run_id))

    @api.get("/editions/{edition_id}/assignments", responses=errors(404))
    async def assignments(edition_id: str) -> AssignmentsOut:
        """The active assignments and the waiting list."""
        return AssignmentsOut.model_validate(await service.assignments(uow, edition_id))

    @api.get("/editions/{edition_id}/seat-offers", responses=errors(404))
    async def seat_offers(edition_id: str) -> SeatOffersOut:
        """Seats offered to people on the waiting list and what became of each: open, accepted,
        declined, expired, withdrawn (the participant withdrew) or cancelled (the host cancelled)."""
        return SeatOffersOut.model_validate(await service.seat_offers(uow, edition_id))

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/accept", responses=errors(404, 409))
    async def accept_seat_offer(edition_id: str, signup_id: str, correlation_id: CorrelationId) -> SeatOfferOut:
        """Take the seat: it becomes an assignment (MatchAssigned). 409 when the seat offer is not
        open (seat_offer_expired, _declined, _accepted, _withdrawn, _cancelled); 404 when the
        sign-up never had one."""
        return SeatOfferOut.model_validate(await service.accept_seat_offer(uow, edition_id, signup_id, correlation_id))

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/decline", responses=errors(404, 409))
    async def decline_seat_offer(edition_id: str, signup_id: str, correlation_id: CorrelationId) -> SeatOfferOut:
        """Let the seat go to the next person on the waiting list; the participant keeps waiting
        for their other choices. 409 when the seat offer is not open; 404 when there was none."""
        return SeatOfferOut.model_validate(await service.decline_seat_offer(uow, edition_id, signup_id, correlation_id))

    return api
