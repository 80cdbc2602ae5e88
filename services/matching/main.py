"""App factory: `uvicorn --factory services.matching.main:create_app` (or `estafette serve matching`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from estafette.runtime.app import Runtime, ServiceApp
from estafette.runtime.scheduler import Scheduler
from schemas.topics import MATCHES
from services.matching import handlers
from services.matching.api import build_api
from services.matching.config import MatchingSettings
from services.matching.link_pages import LinkPages
from services.matching.repository import Repository, RunLocks
from services.matching.service import Runner, RunMetrics, SeatOfferRules


def create_app(settings: MatchingSettings | None = None) -> ServiceApp:
    settings = settings or MatchingSettings()
    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    handlers.register(rt)
    rt.produces(MATCHES)

    async def lock_session() -> asyncpg.Connection:
        """The run locks' own connection (not the pool's): it lives as long as this instance."""
        return await asyncpg.connect(settings.database_url, server_settings={"application_name": "matching.run-locks"})

    runner = Runner(
        rt.uow, RunMetrics(rt.registry), SeatOfferRules(settings.seat_offer_hours, settings.zone),
        RunLocks(lock_session), regions=rt.served_regions, stall_runs=settings.failpoint("match_run_stalls"),
        clock=rt.clock,
    )

    async def rematch(stopping: asyncio.Event) -> None:
        await runner.rematch_loop(stopping, settings.rematch_debounce_seconds, settings.rematch_poll_seconds)

    rt.background(rematch)
    # Scheduled steps (the automatic run at an edition's sign-up deadline), due on the platform clock.
    rt.background(Scheduler(rt.uow, handlers.STEPS, rt.clock, poll_seconds=settings.scheduler_poll_seconds).run)
    pages = LinkPages(settings.zone)
    http_api = build_api(
        rt.uow, runner, rt.links, pages, link_max_age_seconds=settings.link_max_age_hours * 3600, clock=rt.clock
    )
    return rt.asgi_app(http_api=http_api)
