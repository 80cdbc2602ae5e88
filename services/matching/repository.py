"""SQL for the matching schema. Every function takes the transaction's connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from schemas import OfferPublished, SignupSubmitted


# --- the copy of registration's data -----------------------------------------------------------
async def upsert_edition(conn: asyncpg.Connection, edition_id: str, region: str) -> None:
    await conn.execute(
        "INSERT INTO editions (id, region) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET region = $2", edition_id, region
    )


async def close_edition(conn: asyncpg.Connection, edition_id: str) -> None:
    await conn.execute("UPDATE editions SET status = 'closed' WHERE id = $1", edition_id)


async def upsert_offer(conn: asyncpg.Connection, e: OfferPublished) -> None:
    await conn.execute(
        "INSERT INTO offers (id, edition_id, host_org, title, date, capacity, max_per_org, format, location)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
        e.offer_id, e.edition, e.host_org, e.title, e.date, e.capacity, e.max_per_org, e.format, e.location,
    )


async def cancel_offer(conn: asyncpg.Connection, offer_id: str) -> bool:
    """Cancel the offer and displace its assignments and open seat offers; False if it was not published."""
    done = await conn.fetchval(
        "UPDATE offers SET status = 'cancelled' WHERE id = $1 AND status = 'published' RETURNING 1", offer_id
    )
    if done:
        await conn.execute(
            "UPDATE assignments SET status = 'displaced' WHERE offer_id = $1 AND status IN ('active', 'offered')", offer_id
        )
    return bool(done)


async def insert_participant(conn: asyncpg.Connection, e: SignupSubmitted) -> None:
    await conn.execute(
        "INSERT INTO participants (signup_id, edition_id, org, name, email, language, choices, available, max_visits,"
        " signed_up_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (signup_id) DO NOTHING",
        e.signup_id, e.edition, e.org, e.name, str(e.email), e.language, e.choices, e.available, e.max_visits,
        e.signed_up_at,
    )


async def withdraw_participant(conn: asyncpg.Connection, signup_id: str) -> bool:
    done = await conn.fetchval(
        "UPDATE participants SET status = 'withdrawn' WHERE signup_id = $1 AND status = 'active' RETURNING 1", signup_id
    )
    if done:
        await conn.execute(
            "UPDATE assignments SET status = 'released' WHERE signup_id = $1 AND status IN ('active', 'offered')", signup_id
        )
        await conn.execute("DELETE FROM outcomes WHERE signup_id = $1", signup_id)
    return bool(done)


async def mark_dirty_if_published(conn: asyncpg.Connection, edition_id: str) -> None:
    """Flag the edition for an incremental re-match, once it has published assignments."""
    await conn.execute(
        "UPDATE editions SET dirty_since = coalesce(dirty_since, now()) WHERE id = $1"
        " AND EXISTS (SELECT 1 FROM match_runs WHERE edition_id = $1 AND status = 'done')",
        edition_id,
    )


# --- inputs of a run ---------------------------------------------------------------------------
async def now(conn: asyncpg.Connection) -> datetime:
    """The database's clock: seat offers are made, checked and expired against this one clock."""
    return await conn.fetchval("SELECT now()")


async def get_edition(conn: asyncpg.Connection, edition_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, region, status, dirty_since FROM editions WHERE id = $1", edition_id)


async def offers_of(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    """All offers, cancelled ones included (the engine gives those no seats but keeps choice ranks)."""
    return await conn.fetch(
        "SELECT id, host_org, title, date, capacity, max_per_org, format, location, status FROM offers"
        " WHERE edition_id = $1",
        edition_id,
    )


async def participants_of(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT signup_id, org, name, email, language, choices, available, max_visits, signed_up_at FROM participants"
        " WHERE edition_id = $1 AND status = 'active'",
        edition_id,
    )


async def held_assignments(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    """Pairs that hold a seat: active assignments and open seat offers (a run keeps both frozen)."""
    return await conn.fetch(
        "SELECT signup_id, offer_id, rank, status FROM assignments WHERE edition_id = $1 AND status IN ('active', 'offered')",
        edition_id,
    )


async def declined_pairs(conn: asyncpg.Connection, edition_id: str) -> set[tuple[str, str]]:
    """Pairs whose seat offer was declined or expired: never placed again in this edition."""
    rows = await conn.fetch(
        "SELECT signup_id, offer_id FROM assignments WHERE edition_id = $1 AND status IN ('declined', 'expired')", edition_id
    )
    return {(r["signup_id"], r["offer_id"]) for r in rows}


async def displaced_participants(conn: asyncpg.Connection, edition_id: str) -> set[str]:
    """Participants whose assignment was displaced by a cancelled offer and who have none active now."""
    rows = await conn.fetch(
        "SELECT DISTINCT d.signup_id FROM assignments d JOIN participants p USING (signup_id)"
        " WHERE d.edition_id = $1 AND d.status = 'displaced' AND p.status = 'active'"
        " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.signup_id = d.signup_id AND a.status IN ('active', 'offered'))",
        edition_id,
    )
    return {r["signup_id"] for r in rows}


async def outcomes_of(conn: asyncpg.Connection, edition_id: str) -> dict[str, tuple[str, str | None]]:
    rows = await conn.fetch("SELECT signup_id, state, reason_code FROM outcomes WHERE edition_id = $1", edition_id)
    return {r["signup_id"]: (r["state"], r["reason_code"]) for r in rows}


# --- runs --------------------------------------------------------------------------------------
async def start_run(conn: asyncpg.Connection, run_id: uuid.UUID, edition_id: str, kind: str) -> bool:
    """False when another run of this edition is running."""
    row = await conn.fetchval(
        "INSERT INTO match_runs (id, edition_id, kind, stage) VALUES ($1, $2, $3, 'loading')"
        " ON CONFLICT (edition_id) WHERE status = 'running' DO NOTHING RETURNING 1",
        run_id, edition_id, kind,
    )
    return row is not None


async def clear_dirty(conn: asyncpg.Connection, edition_id: str) -> None:
    await conn.execute("UPDATE editions SET dirty_since = NULL WHERE id = $1", edition_id)


async def set_progress(conn: asyncpg.Connection, run_id: uuid.UUID, stage: str, progress: float) -> None:
    await conn.execute("UPDATE match_runs SET stage = $2, progress = $3 WHERE id = $1 AND status = 'running'", run_id, stage, progress)


async def finish_run(conn: asyncpg.Connection, run_id: uuid.UUID, figures: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE match_runs SET status = 'done', stage = 'done', progress = 1, finished_at = now(),"
        " input_hash = $2, participants = $3, offers = $4, assigned = $5, newly_assigned = $6, waitlisted = $7,"
        " unmatched = $8, rank_cost = $9, duration_ms = $10, newly_offered = $11 WHERE id = $1",
        run_id, figures["input_hash"], figures["participants"], figures["offers"], figures["assigned"],
        figures["newly_assigned"], figures["waitlisted"], figures["unmatched"], figures["rank_cost"],
        figures["duration_ms"], figures["newly_offered"],
    )


async def fail_run(conn: asyncpg.Connection, run_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE match_runs SET status = 'failed', stage = 'failed', error = $2, finished_at = now() WHERE id = $1",
        run_id, error[:2000],
    )


async def fail_interrupted_runs(conn: asyncpg.Connection) -> int:
    """Runs left 'running' by a process that died: mark them failed (their results were never written)."""
    result = await conn.execute(
        "UPDATE match_runs SET status = 'failed', stage = 'failed', error = 'interrupted', finished_at = now()"
        " WHERE status = 'running'"
    )
    return int(result.split()[-1])


async def insert_assignments(conn: asyncpg.Connection, edition_id: str, run_id: uuid.UUID, rows: list[tuple[str, str, int]]) -> None:
    await conn.executemany(
        "INSERT INTO assignments (signup_id, offer_id, edition_id, rank, run_id) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (signup_id, offer_id) DO UPDATE SET status = 'active', rank = $4, run_id = $5, assigned_at = now()",
        [(s, o, edition_id, r, run_id) for s, o, r in rows],
    )


async def insert_seat_offers(
    conn: asyncpg.Connection, edition_id: str, run_id: uuid.UUID, rows: list[tuple[str, str, int, datetime]]
) -> None:
    """(signup_id, offer_id, rank, expires_at): the pair holds its seat until it is answered or expires."""
    await conn.executemany(
        "INSERT INTO assignments (signup_id, offer_id, edition_id, rank, run_id, status, offered_at, offer_expires_at)"
        " VALUES ($1, $2, $3, $4, $5, 'offered', now(), $6)"
        " ON CONFLICT (signup_id, offer_id) DO UPDATE SET status = 'offered', rank = $4, run_id = $5,"
        " assigned_at = now(), offered_at = now(), offer_expires_at = $6, offer_ended_at = NULL",
        [(s, o, edition_id, r, run_id, expires) for s, o, r, expires in rows],
    )


async def upsert_outcomes(conn: asyncpg.Connection, edition_id: str, run_id: uuid.UUID, rows: list[tuple[str, str, str | None, int | None]]) -> None:
    await conn.executemany(
        "INSERT INTO outcomes (signup_id, edition_id, state, reason_code, position, run_id) VALUES ($1,$2,$3,$4,$5,$6)"
        " ON CONFLICT (signup_id) DO UPDATE SET state = $3, reason_code = $4, position = $5, run_id = $6, updated_at = now()",
        [(s, edition_id, state, code, pos, run_id) for s, state, code, pos in rows],
    )


async def dirty_editions(conn: asyncpg.Connection, older_than_seconds: float) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM editions WHERE dirty_since < now() - make_interval(secs => $1) ORDER BY dirty_since",
        older_than_seconds,
    )
    return [r["id"] for r in rows]


async def runs_of(conn: asyncpg.Connection, edition_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM match_runs WHERE edition_id = $1 ORDER BY started_at DESC", edition_id)
    return [dict(r) for r in rows]


async def get_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM match_runs WHERE id = $1", run_id)
    return dict(row) if row else None


async def assignments_view(conn: asyncpg.Connection, edition_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT a.signup_id, a.offer_id, a.rank, a.run_id, a.assigned_at FROM assignments a"
        " WHERE a.edition_id = $1 AND a.status = 'active' ORDER BY a.offer_id, a.signup_id",
        edition_id,
    )
    return [dict(r) for r in rows]


async def waiting_list(conn: asyncpg.Connection, edition_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT signup_id, state, reason_code, position FROM outcomes WHERE edition_id = $1 AND state <> 'assigned'"
        " ORDER BY position NULLS LAST, signup_id",
        edition_id,
    )
    return [dict(r) for r in rows]


async def lock_edition(conn: asyncpg.Connection, edition_id: str) -> asyncpg.Record:
    """Serialises a run's write with the consumers that change this edition (they lock it too)."""
    return await conn.fetchrow("SELECT id, region FROM editions WHERE id = $1 FOR UPDATE", edition_id)


async def mark_dirty(conn: asyncpg.Connection, edition_id: str) -> None:
    await conn.execute("UPDATE editions SET dirty_since = coalesce(dirty_since, now()) WHERE id = $1", edition_id)


class Valid:
    def __init__(self, offers: set[str], participants: set[str], open_offers: set[tuple[str, str]]) -> None:
        self.offers, self.participants, self.open_offers = offers, participants, open_offers


async def still_valid(conn: asyncpg.Connection, edition_id: str) -> Valid:
    offers = await conn.fetch("SELECT id FROM offers WHERE edition_id = $1 AND status = 'published'", edition_id)
    people = await conn.fetch("SELECT signup_id FROM participants WHERE edition_id = $1 AND status = 'active'", edition_id)
    return Valid({r["id"] for r in offers}, {r["signup_id"] for r in people}, await open_offers(conn, edition_id))


async def open_offers(conn: asyncpg.Connection, edition_id: str) -> set[tuple[str, str]]:
    rows = await conn.fetch("SELECT signup_id, offer_id FROM assignments WHERE edition_id = $1 AND status = 'offered'", edition_id)
    return {(r["signup_id"], r["offer_id"]) for r in rows}


async def edition_overview(conn: asyncpg.Connection, edition_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT e.id, e.region, e.status, e.dirty_since IS NOT NULL AS rematch_pending,"
        " (SELECT count(*) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS offers,"
        " (SELECT coalesce(sum(capacity), 0) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS seats,"
        " (SELECT count(*) FROM participants p WHERE p.edition_id = e.id AND p.status = 'active') AS participants,"
        " (SELECT count(*) FROM assignments a WHERE a.edition_id = e.id AND a.status = 'active') AS assignments,"
        " (SELECT count(*) FROM assignments a WHERE a.edition_id = e.id AND a.status = 'offered') AS seat_offers_open"
        " FROM editions e WHERE e.id = $1",
        edition_id,
    )
    return dict(row) if row else None


# --- seat offers -------------------------------------------------------------------------------
_SEAT_OFFER_COLUMNS = (
    "a.signup_id, a.offer_id, a.rank, a.run_id, a.status, a.offered_at, a.offer_expires_at AS expires_at,"
    " a.offer_ended_at AS ended_at, now() AS checked_at"
)


async def seat_offer_of(conn: asyncpg.Connection, edition_id: str, signup_id: str) -> asyncpg.Record | None:
    """The participant's open seat offer, else their latest one (for saying what became of it)."""
    return await conn.fetchrow(
        f"SELECT {_SEAT_OFFER_COLUMNS} FROM assignments a WHERE a.edition_id = $1 AND a.signup_id = $2"
        " AND a.offered_at IS NOT NULL ORDER BY a.status = 'offered' DESC, a.offered_at DESC LIMIT 1",
        edition_id, signup_id,
    )


async def seat_offers_view(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_SEAT_OFFER_COLUMNS} FROM assignments a WHERE a.edition_id = $1 AND a.offered_at IS NOT NULL"
        " ORDER BY a.offered_at, a.signup_id",
        edition_id,
    )


async def end_seat_offer(conn: asyncpg.Connection, signup_id: str, offer_id: str, status: str) -> None:
    """Accepted ('active') or declined ('declined')."""
    await conn.execute(
        "UPDATE assignments SET status = $3, offer_ended_at = now() WHERE signup_id = $1 AND offer_id = $2 AND status = 'offered'",
        signup_id, offer_id, status,
    )


async def editions_with_expired_offers(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT edition_id FROM assignments WHERE status = 'offered' AND offer_expires_at <= now() ORDER BY edition_id"
    )
    return [r["edition_id"] for r in rows]


async def expire_seat_offers(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    """End the edition's open seat offers whose time is up; return them."""
    return await conn.fetch(
        "UPDATE assignments SET status = 'expired', offer_ended_at = now()"
        " WHERE edition_id = $1 AND status = 'offered' AND offer_expires_at <= now()"
        " RETURNING signup_id, offer_id, run_id",
        edition_id,
    )


async def set_outcome(conn: asyncpg.Connection, signup_id: str, state: str) -> None:
    """After an answer to a seat offer: 'assigned', or back to 'waitlisted' (the next run sets the position)."""
    await conn.execute(
        "UPDATE outcomes SET state = $2, reason_code = NULL, position = NULL, updated_at = now() WHERE signup_id = $1",
        signup_id, state,
    )


async def offer(conn: asyncpg.Connection, offer_id: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT id, host_org, title, date, capacity, max_per_org, format, location, status FROM offers WHERE id = $1", offer_id
    )


async def participant(conn: asyncpg.Connection, signup_id: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT signup_id, org, name, email, language, choices, available, max_visits, signed_up_at FROM participants"
        " WHERE signup_id = $1",
        signup_id,
    )
