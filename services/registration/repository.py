"""SQL for the registration schema. Every function takes the transaction's connection."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

from services.registration.domain import Edition, OfferRef


async def insert_edition(conn: asyncpg.Connection, e: Edition) -> bool:
    row = await conn.fetchval(
        "INSERT INTO editions (id, region, name, signup_deadline, starts_on, ends_on, languages, status)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING RETURNING 1",
        e.id, e.region, e.name, e.signup_deadline, e.starts_on, e.ends_on, e.languages, e.status,
    )
    return row is not None


async def get_edition(conn: asyncpg.Connection, edition_id: str, *, for_update: bool = False) -> Edition | None:
    row = await conn.fetchrow(
        "SELECT id, region, name, signup_deadline, starts_on, ends_on, languages, status FROM editions WHERE id = $1"
        + (" FOR UPDATE" if for_update else ""),
        edition_id,
    )
    return Edition(**dict(row)) if row else None


async def close_edition(conn: asyncpg.Connection, edition_id: str) -> None:
    await conn.execute("UPDATE editions SET status = 'closed' WHERE id = $1", edition_id)


async def insert_offer(conn: asyncpg.Connection, offer: dict[str, Any]) -> bool:
    row = await conn.fetchval(
        "INSERT INTO offers (id, edition_id, host_org, title, date, capacity, max_per_org, format, location)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING RETURNING 1",
        offer["id"], offer["edition_id"], offer["host_org"], offer["title"], offer["date"],
        offer["capacity"], offer["max_per_org"], offer["format"], offer["location"],
    )
    return row is not None


async def offer_refs(conn: asyncpg.Connection, ids: list[str]) -> dict[str, OfferRef]:
    rows = await conn.fetch("SELECT id, edition_id, host_org, date, status FROM offers WHERE id = ANY($1::text[])", ids)
    return {r["id"]: OfferRef(**dict(r)) for r in rows}


async def list_offers(conn: asyncpg.Connection, edition_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, host_org, title, date, capacity, max_per_org, format, location, status"
        " FROM offers WHERE edition_id = $1 ORDER BY date, id",
        edition_id,
    )
    return [dict(r) for r in rows]


async def cancel_offer(conn: asyncpg.Connection, edition_id: str, offer_id: str) -> str | None:
    """Return the previous status, or None when the offer does not exist in this edition."""
    return await conn.fetchval(
        "UPDATE offers o SET status = 'cancelled' FROM (SELECT status FROM offers WHERE id = $2 AND edition_id = $1"
        " FOR UPDATE) old WHERE o.id = $2 RETURNING old.status",
        edition_id, offer_id,
    )


async def insert_signup(
    conn: asyncpg.Connection,
    signup_id: str,
    edition_id: str,
    org: str,
    name: str,
    email: str,
    language: str,
    choices: list[str],
    available: list[date] | None,
    max_visits: int,
    signed_up_at: datetime,
) -> bool:
    """False when this e-mail address already has an active sign-up for the edition."""
    row = await conn.fetchval(
        "INSERT INTO signups (id, edition_id, org, name, email, language, choices, available, max_visits, signed_up_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING RETURNING 1",
        signup_id, edition_id, org, name, email, language, choices, available, max_visits, signed_up_at,
    )
    return row is not None


async def withdraw_signup(conn: asyncpg.Connection, edition_id: str, signup_id: str) -> str | None:
    return await conn.fetchval(
        "UPDATE signups s SET status = 'withdrawn' FROM (SELECT status FROM signups WHERE id = $2 AND edition_id = $1"
        " FOR UPDATE) old WHERE s.id = $2 RETURNING old.status",
        edition_id, signup_id,
    )


async def counts(conn: asyncpg.Connection, edition_id: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM offers WHERE edition_id = $1 AND status = 'published') AS offers,"
        " (SELECT count(*) FROM signups WHERE edition_id = $1 AND status = 'submitted') AS signups",
        edition_id,
    )
    return dict(row)
