"""SQL for the reporting schema. Every function takes the transaction's connection.

Writes are idempotent upserts whose terminal states (closed, cancelled, withdrawn) are never undone,
whatever the order the events arrive in; reads aggregate those rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from services.reporting.domain import DayFigures, EditionFigures, MatchState, NotificationOutcome, Version


async def read_snapshot(conn: asyncpg.Connection) -> None:
    """Make the rest of the transaction read one consistent snapshot (first statement only)."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


# --- writes -----------------------------------------------------------------------------------
async def ensure_edition(conn: asyncpg.Connection, region: str, edition: str) -> None:
    await conn.execute(
        "INSERT INTO editions (id, region) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", edition, region
    )


async def open_edition(
    conn: asyncpg.Connection, region: str, edition: str, name: str, starts_on: date, ends_on: date
) -> None:
    await conn.execute(
        "INSERT INTO editions (id, region, name, starts_on, ends_on, status) VALUES ($1, $2, $3, $4, $5, 'open')"
        " ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region, name = EXCLUDED.name,"
        " starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on,"
        " status = CASE WHEN editions.status = 'closed' THEN 'closed' ELSE 'open' END",
        edition, region, name, starts_on, ends_on,
    )


async def close_edition(conn: asyncpg.Connection, edition: str) -> None:
    await conn.execute("UPDATE editions SET status = 'closed' WHERE id = $1", edition)


async def publish_offer(conn: asyncpg.Connection, offer_id: str, edition: str, day: date, capacity: int) -> None:
    await conn.execute(
        "INSERT INTO offers (id, edition, date, capacity) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO UPDATE SET edition = EXCLUDED.edition, date = EXCLUDED.date, capacity = EXCLUDED.capacity",
        offer_id, edition, day, capacity,
    )


async def cancel_offer(conn: asyncpg.Connection, offer_id: str, edition: str) -> None:
    await conn.execute(
        "INSERT INTO offers (id, edition, cancelled) VALUES ($1, $2, true)"
        " ON CONFLICT (id) DO UPDATE SET cancelled = true",
        offer_id, edition,
    )


async def submit_signup(
    conn: asyncpg.Connection, signup_id: str, edition: str, org: str, signed_up_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO signups (id, edition, org, signed_up_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO UPDATE SET edition = EXCLUDED.edition, org = EXCLUDED.org,"
        " signed_up_at = EXCLUDED.signed_up_at",
        signup_id, edition, org, signed_up_at,
    )


async def withdraw_signup(conn: asyncpg.Connection, signup_id: str, edition: str) -> None:
    await conn.execute(
        "INSERT INTO signups (id, edition, withdrawn) VALUES ($1, $2, true)"
        " ON CONFLICT (id) DO UPDATE SET withdrawn = true",
        signup_id, edition,
    )


async def match_version(conn: asyncpg.Connection, signup_id: str) -> Version | None:
    row = await conn.fetchrow("SELECT occurred_at, event_id FROM matches WHERE signup_id = $1 FOR UPDATE", signup_id)
    return Version(row["occurred_at"], row["event_id"]) if row else None


async def save_match(conn: asyncpg.Connection, m: MatchState) -> None:
    await conn.execute(
        "INSERT INTO matches (signup_id, edition, state, offer_id, offer_date, rank, occurred_at, event_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (signup_id) DO UPDATE SET edition = EXCLUDED.edition, state = EXCLUDED.state,"
        " offer_id = EXCLUDED.offer_id, offer_date = EXCLUDED.offer_date, rank = EXCLUDED.rank,"
        " occurred_at = EXCLUDED.occurred_at, event_id = EXCLUDED.event_id",
        m.signup_id, m.edition, m.state, m.offer_id, m.offer_date, m.rank, m.version.occurred_at, m.version.event_id,
    )


async def notification_version(conn: asyncpg.Connection, notification_id: uuid.UUID) -> Version | None:
    row = await conn.fetchrow(
        "SELECT occurred_at, event_id FROM notifications WHERE id = $1 FOR UPDATE", notification_id
    )
    return Version(row["occurred_at"], row["event_id"]) if row else None


async def save_notification(conn: asyncpg.Connection, n: NotificationOutcome) -> None:
    await conn.execute(
        "INSERT INTO notifications (id, edition, status, occurred_at, event_id) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET edition = EXCLUDED.edition, status = EXCLUDED.status,"
        " occurred_at = EXCLUDED.occurred_at, event_id = EXCLUDED.event_id",
        n.notification_id, n.edition, n.status, n.version.occurred_at, n.version.event_id,
    )


async def insert_feedback(conn: asyncpg.Connection, feedback_id: str, edition: str, rating: int) -> None:
    await conn.execute(
        "INSERT INTO feedback (id, edition, rating) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        feedback_id, edition, rating,
    )


async def start_relay_leg(conn: asyncpg.Connection, leg_id: str, region: str, edition: str, starts_on: date) -> None:
    await conn.execute(
        "INSERT INTO relay_legs (id, region, edition, starts_on) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region, edition = EXCLUDED.edition,"
        " starts_on = EXCLUDED.starts_on",
        leg_id, region, edition, starts_on,
    )


async def hand_over_relay_leg(
    conn: asyncpg.Connection, leg_id: str, region: str, edition: str, to_region: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO relay_legs (id, region, edition, handed_over_to, handed_over_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET handed_over_to = EXCLUDED.handed_over_to,"
        " handed_over_at = EXCLUDED.handed_over_at",
        leg_id, region, edition, to_region, at,
    )


# --- reads ------------------------------------------------------------------------------------
_EDITION_FIGURES = """
SELECT e.id AS edition, e.region, e.name, e.status, e.starts_on, e.ends_on,
       o.offers, o.seats, o.offers_cancelled,
       s.signups, s.withdrawn, s.organisations,
       m.assigned, m.first_choice, m.waitlisted, m.unmatched, m.awaiting_rematch, m.seat_offers_open,
       n.emails_sent, n.emails_failed,
       f.feedback_count, f.rating_total
  FROM editions e
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE NOT cancelled) AS offers,
              coalesce(sum(capacity) FILTER (WHERE NOT cancelled), 0) AS seats,
              count(*) FILTER (WHERE cancelled) AS offers_cancelled
         FROM offers WHERE edition = e.id) o
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE NOT withdrawn) AS signups,
              count(*) FILTER (WHERE withdrawn) AS withdrawn,
              count(DISTINCT org) FILTER (WHERE NOT withdrawn) AS organisations
         FROM signups WHERE edition = e.id) s
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE outcome = 'assigned') AS assigned,
              count(*) FILTER (WHERE outcome = 'assigned' AND rank = 1) AS first_choice,
              count(*) FILTER (WHERE outcome = 'waitlisted') AS waitlisted,
              count(*) FILTER (WHERE outcome = 'unmatched') AS unmatched,
              count(*) FILTER (WHERE outcome = 'awaiting_rematch') AS awaiting_rematch,
              count(*) FILTER (WHERE outcome = 'offered') AS seat_offers_open
         FROM match_outcomes WHERE edition = e.id) m
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE status = 'sent') AS emails_sent,
              count(*) FILTER (WHERE status = 'failed') AS emails_failed
         FROM notifications WHERE edition = e.id) n
 CROSS JOIN LATERAL (
       SELECT count(*) AS feedback_count, coalesce(sum(rating), 0) AS rating_total
         FROM feedback WHERE edition = e.id) f
"""


async def edition_figures(conn: asyncpg.Connection, edition: str) -> EditionFigures | None:
    row = await conn.fetchrow(_EDITION_FIGURES + " WHERE e.id = $1", edition)
    return EditionFigures(**dict(row)) if row else None


async def all_edition_figures(conn: asyncpg.Connection) -> list[EditionFigures]:
    rows = await conn.fetch(_EDITION_FIGURES + " ORDER BY e.region, e.starts_on NULLS LAST, e.id")
    return [EditionFigures(**dict(r)) for r in rows]


async def day_figures(conn: asyncpg.Connection, edition: str, timezone: str) -> list[DayFigures]:
    rows = await conn.fetch(
        """
        SELECT date, sum(signups)::int AS signups, sum(offers)::int AS offers,
               sum(seats)::int AS seats, sum(assigned)::int AS assigned
          FROM (SELECT (signed_up_at AT TIME ZONE $2)::date AS date, 1 AS signups, 0 AS offers, 0 AS seats, 0 AS assigned
                  FROM signups WHERE edition = $1 AND NOT withdrawn
                UNION ALL
                SELECT date, 0, 1, capacity, 0 FROM offers WHERE edition = $1 AND NOT cancelled
                UNION ALL
                SELECT offer_date, 0, 0, 0, 1 FROM match_outcomes WHERE edition = $1 AND outcome = 'assigned') d
         GROUP BY date
         ORDER BY date
        """,
        edition, timezone,
    )
    return [DayFigures(**dict(r)) for r in rows]


async def relay_legs(conn: asyncpg.Connection) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT id AS leg, region, edition, starts_on, handed_over_to, handed_over_at"
        " FROM relay_legs ORDER BY starts_on NULLS LAST, id"
    )
    return [dict(r) for r in rows]


async def editions_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM editions GROUP BY status")
    return {r["status"]: r["n"] for r in rows}
