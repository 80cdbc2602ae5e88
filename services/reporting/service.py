"""Reporting use cases: record what the events say (inside the consumer's transaction), read reports."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog

from estafette.runtime.http import NotFound
from estafette.runtime.uow import UnitOfWork
from services.reporting import domain, repository as repo

log = structlog.get_logger(__name__)


# --- recording (called by the handlers, once per new event) ----------------------------------
async def edition_opened(
    conn: asyncpg.Connection, region: str, edition: str, name: str, starts_on: date, ends_on: date
) -> None:
    await repo.open_edition(conn, region, edition, name, starts_on, ends_on)


async def edition_closed(conn: asyncpg.Connection, region: str, edition: str) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.close_edition(conn, edition)


async def offer_published(
    conn: asyncpg.Connection, region: str, edition: str, offer_id: str, day: date, capacity: int
) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.publish_offer(conn, offer_id, edition, day, capacity)


async def offer_cancelled(conn: asyncpg.Connection, region: str, edition: str, offer_id: str) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.cancel_offer(conn, offer_id, edition)


async def signup_submitted(
    conn: asyncpg.Connection, region: str, edition: str, signup_id: str, org: str, signed_up_at: datetime
) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.submit_signup(conn, signup_id, edition, org, signed_up_at)


async def signup_withdrawn(conn: asyncpg.Connection, region: str, edition: str, signup_id: str) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.withdraw_signup(conn, signup_id, edition)


async def match_changed(conn: asyncpg.Connection, region: str, match: domain.MatchState) -> None:
    """Keep the latest outcome per sign-up; an outcome older than the stored one is ignored."""
    await repo.ensure_edition(conn, region, match.edition)
    if domain.supersedes(match.version, await repo.match_version(conn, match.signup_id)):
        await repo.save_match(conn, match)
    else:
        log.info("older match outcome ignored", signup_id=match.signup_id, state=match.state)


async def notification_outcome(conn: asyncpg.Connection, region: str, outcome: domain.NotificationOutcome) -> None:
    """Keep the latest outcome per notification; an outcome older than the stored one is ignored."""
    await repo.ensure_edition(conn, region, outcome.edition)
    if domain.supersedes(outcome.version, await repo.notification_version(conn, outcome.notification_id)):
        await repo.save_notification(conn, outcome)
    else:
        log.info("older notification outcome ignored", notification_id=str(outcome.notification_id))


async def feedback_submitted(conn: asyncpg.Connection, region: str, edition: str, feedback_id: str, rating: int) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.insert_feedback(conn, feedback_id, edition, rating)


async def relay_leg_started(conn: asyncpg.Connection, region: str, edition: str, leg_id: str, starts_on: date) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.start_relay_leg(conn, leg_id, region, edition, starts_on)


async def relay_leg_handed_over(
    conn: asyncpg.Connection, region: str, edition: str, leg_id: str, to_region: str, at: datetime
) -> None:
    await repo.ensure_edition(conn, region, edition)
    await repo.hand_over_relay_leg(conn, leg_id, region, edition, to_region, at)


# --- reading ----------------------------------------------------------------------------------
async def edition_detail(
    uow: UnitOfWork, edition: str, timezone: str
) -> tuple[domain.EditionFigures, list[domain.DayFigures]]:
    async with uow.transaction() as tx:
        await repo.read_snapshot(tx.conn)
        figures = await repo.edition_figures(tx.conn, edition)
        if figures is None:
            raise NotFound("unknown_edition", f"edition {edition} is not known to reporting")
        return figures, await repo.day_figures(tx.conn, edition, timezone)


async def edition_report(uow: UnitOfWork, edition: str, timezone: str) -> dict[str, Any]:
    figures, days = await edition_detail(uow, edition, timezone)
    return {**figures.report(), "by_day": [asdict(d) for d in days]}


async def overview(uow: UnitOfWork) -> tuple[list[domain.EditionFigures], list[dict[str, Any]]]:
    """Every edition's figures and the relay legs, from one snapshot."""
    async with uow.transaction() as tx:
        await repo.read_snapshot(tx.conn)
        return await repo.all_edition_figures(tx.conn), await repo.relay_legs(tx.conn)


async def regions_report(uow: UnitOfWork) -> dict[str, Any]:
    editions, relay = await overview(uow)
    regions = domain.region_totals(editions)
    return {
        "regions": [asdict(r) for r in regions],
        "national": domain.national_totals(regions),
        "relay": relay,
    }


async def editions_by_status(uow: UnitOfWork) -> dict[str, int]:
    async with uow.transaction() as tx:
        return await repo.editions_by_status(tx.conn)
