"""SQL for the notifications schema, on one transaction's connection. Returns domain types only."""

from __future__ import annotations

import json
import uuid

import asyncpg

from services.notifications.domain import Backlog, Due, NewNotification, NotificationView, Status

#: NOTIFY channel that wakes the sender when a message was queued (delivered at commit).
PENDING_CHANNEL = "notifications_pending"

#: What the HTTP API shows: status and tracing, no personal data, no body.
_VIEW_COLUMNS = (
    "id, kind, template, region, edition, signup_id, language, status, attempts, last_error,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
    " created_at, sent_at, failed_at, source_event_id, correlation_id"
)


class Repository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert(self, n: NewNotification) -> bool:
        """False when a message with this id (or from this source event) exists already."""
        row = await self.conn.fetchval(
            "INSERT INTO notifications (id, source_event_id, kind, template, region, edition, signup_id,"
            " correlation_id, recipient_name, recipient_email, language, data)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
            n.id, n.source_event_id, n.kind, n.template, n.region, n.edition, n.signup_id,
            n.correlation_id, n.name, n.email, n.language, json.dumps(n.data),
        )
        return row is not None

    async def wake_sender(self) -> None:
        """Wake the sender when this transaction commits."""
        await self.conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)

    async def claim_due(self) -> Due | None:
        """Lock the oldest due pending message that no other sender holds."""
        row = await self.conn.fetchrow(
            "SELECT id, source_event_id, kind, template, region, edition, signup_id, correlation_id,"
            " recipient_name AS name, recipient_email AS email, language, data::text AS data, attempts"
            " FROM notifications WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()"
            " ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        return Due(**{**dict(row), "data": json.loads(row["data"])}) if row else None

    async def mark_sent(self, notification_id: uuid.UUID) -> None:
        await self.conn.execute(
            "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = clock_timestamp()"
            " WHERE id = $1",
            notification_id,
        )

    async def mark_retry(self, notification_id: uuid.UUID, error: str, retry_in: float) -> None:
        await self.conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = $2,"
            " next_attempt_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1",
            notification_id, error, retry_in,
        )

    async def mark_failed(self, notification_id: uuid.UUID, error: str) -> None:
        await self.conn.execute(
            "UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = $2,"
            " failed_at = clock_timestamp() WHERE id = $1",
            notification_id, error,
        )

    async def get(self, notification_id: uuid.UUID) -> NotificationView | None:
        row = await self.conn.fetchrow(f"SELECT {_VIEW_COLUMNS} FROM notifications WHERE id = $1", notification_id)
        return NotificationView(**dict(row)) if row else None

    async def search(
        self,
        *,
        region: str | None,
        edition: str | None,
        signup_id: str | None,
        status: Status | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[NotificationView]:
        """Oldest first, of `region` only (None: every region); `after` continues after that message
        (keyset on created_at, id)."""
        rows = await self.conn.fetch(
            f"SELECT {_VIEW_COLUMNS} FROM notifications n"
            " WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR edition = $2)"
            " AND ($3::text IS NULL OR signup_id = $3) AND ($4::text IS NULL OR status = $4)"
            " AND ($5::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM notifications WHERE id = $5))"
            " ORDER BY created_at, id LIMIT $6",
            region, edition, signup_id, status, after, limit,
        )
        return [NotificationView(**dict(r)) for r in rows]

    async def backlog(self) -> Backlog:
        """How many messages are pending, and the age of the oldest one."""
        row = await self.conn.fetchrow(
            "SELECT count(*) AS pending, coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age"
            " FROM notifications WHERE status = 'pending'"
        )
        return Backlog(row["pending"], float(row["age"]))
