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
        "Optimal matching of participants to offers: runs, their progress and figures, assignments and the waiting list.",
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

    return api
