"""SQL of the webhooks (issue 11), mixed into `repository.Repository`: endpoints, deliveries and their
attempts. Returns domain types only; decides nothing (the rules are domain.py's webhooks section)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.notifications.domain import DueDelivery, WebhookAttempt, WebhookDelivery, WebhookEndpoint

_ENDPOINT = "id, region, url, event_types, description, created_by, created_at, deleted_at, secret"
_DELIVERY = (
    "id, endpoint_id, event_id, event_type, status, attempts,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, created_at, delivered_at,"
    " last_status_code, last_error"
)

def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(**{**dict(row), "event_types": list(row["event_types"])})

class WebhookRepository:
    conn: asyncpg.Connection

    async def add_webhook(self, e: WebhookEndpoint) -> None:
        await self.conn.execute(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            e.id, e.region, e.url, e.event_types, e.description, e.created_by, e.created_at, e.deleted_at, e.secret,
        )

    async def webhooks(self, region: str | None) -> list[WebhookEndpoint]:
        """Live endpoints of `region` (None: every region), oldest first."""
        rows = await self.conn.fetch(
            f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE deleted_at IS NULL AND ($1::text IS NULL OR region = $1)"
            " ORDER BY created_at, id",
            region,
        )
        return [_endpoint(r) for r in rows]

    async def webhook(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        row = await self.conn.fetchrow(f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE id = $1", endpoint_id)
        return _endpoint(row) if row else None

    async def delete_webhook(self, endpoint_id: uuid.UUID, now: datetime) -> None:
        """The endpoint gets nothing more: its pending deliveries end as failed."""
        await self.conn.execute("UPDATE webhook_endpoints SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                                endpoint_id, now)
        await self.conn.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted'"
            " WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
        )

    async def record_deliveries(
        self, region: str, event_id: uuid.UUID, event_type: str, body: str, now: datetime
    ) -> int:
        """One pending delivery per live endpoint of `region` subscribed to `event_type`; an event
        already recorded for an endpoint adds nothing. Returns how many were added."""
        added = await self.conn.fetch(
            "INSERT INTO webhook_deliveries (id, endpoint_id, region, event_id, event_type, body, next_attempt_at, created_at)"
            " SELECT gen_random_uuid(), id, region, $2, $3, $4, $5, $5 FROM webhook_endpoints"
            " WHERE region = $1 AND deleted_at IS NULL AND $3 = ANY(event_types)"
            " ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING 1",
            region, event_id, event_type, body, now,
        )
        return len(added)

    async def deliveries(self, endpoint_id: uuid.UUID, limit: int) -> list[WebhookDelivery]:
        """Newest first, each with its attempts."""
        rows = await self.conn.fetch(
            f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            endpoint_id, limit,
        )
        attempts = await self.conn.fetch(
            "SELECT delivery_id, number, attempted_at, status, response_code, duration_ms, error FROM webhook_attempts"
            " WHERE delivery_id = ANY($1::uuid[]) ORDER BY number",
            [r["id"] for r in rows],
        )
        log: dict[uuid.UUID, list[WebhookAttempt]] = {}
        for a in attempts:
            log.setdefault(a["delivery_id"], []).append(
                WebhookAttempt(**{k: a[k] for k in a.keys() if k != "delivery_id"})
            )
        return [WebhookDelivery(**dict(r), log=log.get(r["id"], [])) for r in rows]

    async def delivery(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        row = await self.conn.fetchrow(
            f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2", delivery_id, endpoint_id
        )
        return WebhookDelivery(**dict(row)) if row else None

    async def redeliver(self, delivery_id: uuid.UUID, now: datetime) -> None:
        """Pending again, due now, with a fresh round of attempts (its attempt log stays)."""
        await self.conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', tries = 0, next_attempt_at = $2 WHERE id = $1",
            delivery_id, now,
        )

    async def claim_deliveries(
        self, now: datetime, lease_seconds: float, limit: int, busy: Sequence[uuid.UUID], regions: Sequence[str] | None
    ) -> list[DueDelivery]:
        """Due pending deliveries of live endpoints (not of the endpoints in `busy`), at most one per
        endpoint per call; each is leased (its next attempt moved `lease_seconds` on) so no other
        instance takes it while it is being sent. Rows another instance is claiming are skipped."""
        rows = await self.conn.fetch(
            "WITH due AS (SELECT DISTINCT ON (d.endpoint_id) d.id FROM webhook_deliveries d"
            "  JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.deleted_at IS NULL"
            "  WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND NOT (d.endpoint_id = ANY($3::uuid[]))"
            "  AND ($5::text[] IS NULL OR d.region = ANY($5::text[]))"
            "  ORDER BY d.endpoint_id, d.next_attempt_at LIMIT $4),"
            " leased AS (SELECT d.id FROM webhook_deliveries d JOIN due USING (id) FOR UPDATE OF d SKIP LOCKED)"
            " UPDATE webhook_deliveries d SET next_attempt_at = $1 + $2 * interval '1 second' FROM leased, webhook_endpoints e"
            " WHERE d.id = leased.id AND e.id = d.endpoint_id"
            " RETURNING d.id, d.endpoint_id, e.url, e.secret, d.body, d.tries",
            now, lease_seconds, list(busy), limit, None if regions is None else list(regions),
        )
        return [DueDelivery(**dict(r)) for r in rows]

    async def record_attempt(
        self, delivery_id: uuid.UUID, attempted_at: datetime, status_code: int | None, duration_ms: int,
        error: str | None, new_status: str, retry_in: float | None,
    ) -> None:
        """Log one attempt and set the delivery's state after it (delivered, pending again, failed)."""
        number = await self.conn.fetchval(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, tries = tries + 1, status = $2,"
            " last_status_code = $3, last_error = $4,"
            " delivered_at = CASE WHEN $2 = 'delivered' THEN $5::timestamptz ELSE delivered_at END,"
            " next_attempt_at = $5::timestamptz + coalesce($6::float8, 0) * interval '1 second'"
            " WHERE id = $1 RETURNING attempts",
            delivery_id, new_status, status_code, error, attempted_at, retry_in,
        )
        await self.conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, number, attempted_at, status, response_code, duration_ms, error)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7)",
            delivery_id, number, attempted_at, "succeeded" if new_status == "delivered" else "failed",
            status_code, duration_ms, error,
        )

