"""The matching HTTP API (OpenAPI at /docs): start a run, follow its progress, see the results."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Header

from estafette.runtime.http import create_http_api
from estafette.runtime.uow import UnitOfWork
from services.matching import service


def build_api(uow: UnitOfWork, runner: service.Runner) -> FastAPI:
    api = create_http_api(
        "Estafette matching",
        "Optimal matching of participants to offers: runs, their progress and figures, assignments, the waiting"
        " list, and seat offers to people on the waiting list.",
    )

    @api.get("/editions/{edition_id}")
    async def edition(edition_id: str) -> dict[str, Any]:
        """Offers, seats and participants received so far, and whether a re-match is pending."""
        return await service.edition(uow, edition_id)

    @api.post("/editions/{edition_id}/match-runs", status_code=202)
    async def start_run(
        edition_id: str, x_correlation_id: Annotated[uuid.UUID | None, Header(alias="X-Correlation-ID")] = None
    ) -> dict[str, Any]:
        """Start a match run. Published assignments are kept; only free seats are distributed."""
        return await runner.start(edition_id, x_correlation_id)

    @api.get("/editions/{edition_id}/match-runs")
    async def list_runs(edition_id: str) -> list[dict[str, Any]]:
        return await service.runs(uow, edition_id)

    @api.get("/match-runs/{run_id}")
    async def get_run(run_id: uuid.UUID) -> dict[str, Any]:
        return await service.run(uow, run_id)

    @api.get("/editions/{edition_id}/assignments")
    async def assignments(edition_id: str) -> dict[str, Any]:
        return await service.assignments(uow, edition_id)

    @api.get("/editions/{edition_id}/seat-offers")
    async def seat_offers(edition_id: str) -> dict[str, Any]:
        """Seats offered to people on the waiting list and what became of each: open, accepted,
        declined, expired, withdrawn (the participant withdrew) or cancelled (the host cancelled)."""
        return await service.seat_offers(uow, edition_id)

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/accept")
    async def accept_seat_offer(
        edition_id: str, signup_id: str,
        x_correlation_id: Annotated[uuid.UUID | None, Header(alias="X-Correlation-ID")] = None,
    ) -> dict[str, Any]:
        """Take the seat: it becomes an assignment (MatchAssigned). 409 when the offer is not open
        (expired, declined, accepted already); 404 when the sign-up never had one."""
        return await service.accept_seat_offer(uow, edition_id, signup_id, x_correlation_id or uuid.uuid4())

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/decline")
    async def decline_seat_offer(
        edition_id: str, signup_id: str,
        x_correlation_id: Annotated[uuid.UUID | None, Header(alias="X-Correlation-ID")] = None,
    ) -> dict[str, Any]:
        """Let the seat go to the next person on the waiting list; the participant keeps waiting
        for their other choices. 409 when the offer is not open; 404 when there was none."""
        return await service.decline_seat_offer(uow, edition_id, signup_id, x_correlation_id or uuid.uuid4())

    return api
