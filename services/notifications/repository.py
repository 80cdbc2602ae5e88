"""SQL for the notifications schema. Every function takes the transaction's connection."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.notifications.domain import NewNotification

#: NOTIFY channel that wakes the sender when a message was queued (delivered at commit).
PENDING_CHANNEL = "notifications_pending"

#: What the HTTP API shows: status and tracing, no personal data, no body.
_PUBLIC_COLUMNS = (
    "id, kind, template, region, edition, signup_id, language, status, attempts, last_error,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
    " created_at, sent_at, failed_at, source_event_id, correlation_id"
)


@dataclass(frozen=True)
class Due:
    """A pending message, locked by the transaction that claimed it."""

    id: uuid.UUID
    kind: str
    template: str
    region: str
    edition: str
    signup_id: str | None
    correlation_id: uuid.UUID
    name: str
    email: str
    language: str
    data: dict[str, Any]
    attempts: int


async def insert(conn: asyncpg.Connection, n: NewNotification) -> bool:
    """False when a message with this id (or from this source event) exists already."""
    row = await conn.fetchval(
        "INSERT INTO notifications (id, source_event_id, kind, template, region, edition, signup_id,"
        " correlation_id, recipient_name, recipient_email, language, data)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
        n.id, n.source_event_id, n.kind, n.template, n.region, n.edition, n.signup_id,
        n.correlation_id, n.name, n.email, n.language, json.dumps(n.data),
    )
    return row is not None


async def wake_sender(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)


async def claim_due(conn: asyncpg.Connection) -> Due | None:
    """Lock the oldest due pending message that no other sender holds."""
    row = await conn.fetchrow(
        "SELECT id, kind, template, region, edition, signup_id, correlation_id, recipient_name AS name,"
        " recipient_email AS email, language, data::text AS data, attempts"
        " FROM notifications WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()"
        " ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    return Due(**{**dict(row), "data": json.loads(row["data"])}) if row else None


async def mark_sent(conn: asyncpg.Connection, notification_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = clock_timestamp()"
        " WHERE id = $1",
        notification_id,
    )


async def mark_retry(conn: asyncpg.Connection, notification_id: uuid.UUID, error: str, retry_in: float) -> None:
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1",
        notification_id, error, retry_in,
    )


async def mark_failed(conn: asyncpg.Connection, notification_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = $2,"
        " failed_at = clock_timestamp() WHERE id = $1",
        notification_id, error,
    )


async def get(conn: asyncpg.Connection, notification_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_PUBLIC_COLUMNS} FROM notifications WHERE id = $1", notification_id)
    return dict(row) if row else None


async def search(
    conn: asyncpg.Connection,
    *,
    edition: str | None,
    signup_id: str | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Oldest first; `after` continues after that message (keyset on created_at, id)."""
    rows = await conn.fetch(
        f"SELECT {_PUBLIC_COLUMNS} FROM notifications n"
        " WHERE ($1::text IS NULL OR edition = $1) AND ($2::text IS NULL OR signup_id = $2)"
        " AND ($3::text IS NULL OR status = $3)"
        " AND ($4::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM notifications WHERE id = $4))"
        " ORDER BY created_at, id LIMIT $5",
        edition, signup_id, status, after, limit,
    )
    return [dict(r) for r in rows]


async def pending_stats(conn: asyncpg.Connection) -> tuple[int, float]:
    """How many messages are pending, and the age in seconds of the oldest one (0 when none)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS pending, coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age"
        " FROM notifications WHERE status = 'pending'"
    )
    return row["pending"], float(row["age"])
