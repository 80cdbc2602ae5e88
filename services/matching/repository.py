"""SQL for the matching schema. Every function takes the transaction's connection."""

from __future__ import annotations

import uuid
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
    """Cancel the offer and displace its active assignments; False if it was not published."""
    done = await conn.fetchval(
        "UPDATE offers SET status = 'cancelled' WHERE id = $1 AND status = 'published' RETURNING 1", offer_id
    )
    if done:
        await conn.execute("UPDATE assignments SET status = 'displaced' WHERE offer_id = $1 AND status = 'active'", offer_id)
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
        await conn.execute("UPDATE assignments SET status = 'released' WHERE signup_id = $1 AND status = 'active'", signup_id)
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


async def active_assignments(conn: asyncpg.Connection, edition_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT signup_id, offer_id, rank FROM assignments WHERE edition_id = $1 AND status = 'active'", edition_id
    )


async def displaced_participants(conn: asyncpg.Connection, edition_id: str) -> set[str]:
    """Participants whose assignment was displaced by a cancelled offer and who have none active now."""
    rows = await conn.fetch(
        "SELECT DISTINCT d.signup_id FROM assignments d JOIN participants p USING (signup_id)"
        " WHERE d.edition_id = $1 AND d.status = 'displaced' AND p.status = 'active'"
        " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.signup_id = d.signup_id AND a.status = 'active')",
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
        " unmatched = $8, rank_cost = $9, duration_ms = $10 WHERE id = $1",
        run_id, figures["input_hash"], figures["participants"], figures["offers"], figures["assigned"],
        figures["newly_assigned"], figures["waitlisted"], figures["unmatched"], figures["rank_cost"],
        figures["duration_ms"],
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
    def __init__(self, offers: set[str], participants: set[str]) -> None:
        self.offers, self.participants = offers, participants


async def still_valid(conn: asyncpg.Connection, edition_id: str) -> Valid:
    offers = await conn.fetch("SELECT id FROM offers WHERE edition_id = $1 AND status = 'published'", edition_id)
    people = await conn.fetch("SELECT signup_id FROM participants WHERE edition_id = $1 AND status = 'active'", edition_id)
    return Valid({r["id"] for r in offers}, {r["signup_id"] for r in people})


async def edition_overview(conn: asyncpg.Connection, edition_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT e.id, e.region, e.status, e.dirty_since IS NOT NULL AS rematch_pending,"
        " (SELECT count(*) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS offers,"
        " (SELECT coalesce(sum(capacity), 0) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS seats,"
        " (SELECT count(*) FROM participants p WHERE p.edition_id = e.id AND p.status = 'active') AS participants,"
        " (SELECT count(*) FROM assignments a WHERE a.edition_id = e.id AND a.status = 'active') AS assignments"
        " FROM editions e WHERE e.id = $1",
        edition_id,
    )
    return dict(row) if row else None
