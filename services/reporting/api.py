"""The reporting HTTP API (OpenAPI at /docs): figures as JSON, and the dashboard page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, Query
from fastapi.responses import HTMLResponse

from estafette.runtime.http import create_http_api
from estafette.runtime.uow import UnitOfWork
from services.reporting import dashboard, domain, service


def build_api(uow: UnitOfWork, timezone: str) -> FastAPI:
    api = create_http_api("Estafette reporting", "Figures per region and edition, as JSON and as a dashboard page.")

    @api.get("/reports/editions/{edition}")
    async def edition_report(edition: str) -> dict[str, Any]:
        return await service.edition_report(uow, edition, timezone)

    @api.get("/reports/regions")
    async def regions_report() -> dict[str, Any]:
        return await service.regions_report(uow)

    @api.get("/dashboard", response_class=HTMLResponse)
    async def dashboard_page(
        lang: Annotated[str | None, Query(description="nl, de or en; else Accept-Language, else nl")] = None,
        edition: Annotated[str | None, Query(description="show one edition")] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:
        language = domain.negotiate_language(lang, accept_language)
        if edition is None:
            editions, relay = await service.overview(uow)
            page = dashboard.render_overview(language, editions, relay)
        else:
            page = dashboard.render_edition(language, *await service.edition_detail(uow, edition, timezone))
        return HTMLResponse(page, headers={"Content-Language": language, "Vary": "Accept-Language"})

    return api
