"""SQL for the reporting schema: `Repository(conn)` on the transaction's connection, domain types in
and out.

Writes store the state that a domain rule decided (domain.py): the repository reads an entity
(locked `FOR UPDATE` for the rest of the transaction), the rule decides, the repository upserts the
result. All events about one entity come from one topic and key, so one consumer handles them in
order. Reads aggregate the rows into figures.
"""

from __future__ import annotations

import uuid

import asyncpg

from services.reporting.domain import (
    DayFigures,
    Edition,
    EditionFigures,
    Feedback,
    MatchOutcome,
    NotificationOutcome,
    Offer,
    RelayLeg,
    Signup,
    TemplateFigures,
    Version,
)


def _version(row: asyncpg.Record | None) -> Version | None:
    return Version(row["occurred_at"], row["event_id"]) if row else None


class Repository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _locked(self, sql: str, key: object) -> asyncpg.Record | None:
        """The row of `sql` (`... WHERE id = $1`), locked until the transaction ends."""
        return await self.conn.fetchrow(sql + " FOR UPDATE", key)

    async def _upsert(self, table: str, *, replace: bool = True, **row: object) -> None:
        """Store `row` (its first column is the primary key): replace the stored row, or, with
        `replace=False`, keep it when there is one."""
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        on_conflict = "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:]) if replace else "NOTHING"
        await self.conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT ({columns[0]}) DO {on_conflict}",
            *row.values(),
        )

    # --- editions, offers, sign-ups, relay legs, feedback ---------------------------------------
    async def edition(self, edition_id: str) -> Edition | None:
        row = await self._locked(
            "SELECT id AS edition_id, region, status, name, starts_on, ends_on, cancellation_reason, cancelled_at"
            "  FROM editions WHERE id = $1", edition_id
        )
        return Edition(**row) if row else None

    async def add_edition(self, e: Edition) -> None:
        """Store `e` unless the edition is known already."""
        await self._upsert("editions", replace=False, id=e.edition_id, region=e.region, status=e.status)

    async def save_edition(self, e: Edition) -> None:
        await self._upsert("editions", id=e.edition_id, region=e.region, status=e.status, name=e.name,
                           starts_on=e.starts_on, ends_on=e.ends_on, cancellation_reason=e.cancellation_reason,
                           cancelled_at=e.cancelled_at)

    async def offer(self, offer_id: str) -> Offer | None:
        row = await self._locked(
            "SELECT id AS offer_id, edition_id, date AS day, capacity, cancelled, sequence FROM offers WHERE id = $1",
            offer_id,
        )
        return Offer(**row) if row else None

    async def save_offer(self, o: Offer) -> None:
        await self._upsert("offers", id=o.offer_id, edition_id=o.edition_id, date=o.day, capacity=o.capacity,
                           cancelled=o.cancelled, sequence=o.sequence)

    async def signup(self, signup_id: str) -> Signup | None:
        row = await self._locked(
            "SELECT id AS signup_id, edition_id, org, signed_up_at, withdrawn, approval FROM signups WHERE id = $1",
            signup_id,
        )
        return Signup(**row) if row else None

    async def save_signup(self, s: Signup) -> None:
        await self._upsert("signups", id=s.signup_id, edition_id=s.edition_id, org=s.org,
                           signed_up_at=s.signed_up_at, withdrawn=s.withdrawn, approval=s.approval)

    async def relay_leg(self, leg_id: str) -> RelayLeg | None:
        row = await self._locked(_RELAY_LEGS + " WHERE id = $1", leg_id)
        return RelayLeg(**row) if row else None

    async def save_relay_leg(self, leg: RelayLeg) -> None:
        await self._upsert("relay_legs", id=leg.leg_id, region=leg.region, edition_id=leg.edition_id,
                           starts_on=leg.starts_on, handed_over_to=leg.handed_over_to,
                           handed_over_at=leg.handed_over_at)

    async def add_feedback(self, f: Feedback) -> None:
        """Store `f` unless this feedback is known already."""
        await self._upsert("feedback", replace=False, id=f.feedback_id, edition_id=f.edition_id, rating=f.rating,
                           share_publicly=f.share_publicly)

    # --- outcomes (the latest wins: the service compares versions) -----------------------------
    async def match_version(self, signup_id: str) -> Version | None:
        return _version(await self._locked("SELECT occurred_at, event_id FROM matches WHERE signup_id = $1", signup_id))

    async def save_match(self, m: MatchOutcome) -> None:
        p = m.placement
        await self._upsert("matches", signup_id=m.signup_id, edition_id=m.edition_id, outcome=m.outcome,
                           offer_id=p and p.offer_id, offer_date=p and p.offer_date, rank=p and p.rank,
                           occurred_at=m.version.occurred_at, event_id=m.version.event_id)

    async def notification_version(self, notification_id: uuid.UUID) -> Version | None:
        return _version(await self._locked("SELECT occurred_at, event_id FROM notifications WHERE id = $1", notification_id))

    async def save_notification(self, n: NotificationOutcome) -> None:
        await self._upsert("notifications", id=n.notification_id, edition_id=n.edition_id, status=n.status,
                           occurred_at=n.version.occurred_at, event_id=n.version.event_id, template=n.template)

    # --- reads ----------------------------------------------------------------------------------
    async def read_snapshot(self) -> None:
        """Make the rest of the transaction read one consistent snapshot (first statement only)."""
        await self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    async def edition_figures(self, edition_id: str) -> EditionFigures | None:
        row = await self.conn.fetchrow(_EDITION_FIGURES + " WHERE e.id = $1", edition_id)
        return EditionFigures(**row) if row else None

    async def all_edition_figures(self) -> list[EditionFigures]:
        rows = await self.conn.fetch(_EDITION_FIGURES + " ORDER BY e.region, e.starts_on NULLS LAST, e.id")
        return [EditionFigures(**r) for r in rows]

    async def day_figures(self, edition_id: str, timezone: str) -> list[DayFigures]:
        rows = await self.conn.fetch(_DAY_FIGURES, edition_id, timezone)
        return [DayFigures(**r) for r in rows]

    async def template_figures(self, edition_id: str) -> list[TemplateFigures]:
        """The edition's notifications by template (sorted); `unknown` for rows stored before templates were."""
        rows = await self.conn.fetch(_TEMPLATE_FIGURES, edition_id)
        return [TemplateFigures(**r) for r in rows]

    async def relay_legs(self) -> list[RelayLeg]:
        rows = await self.conn.fetch(_RELAY_LEGS + " ORDER BY starts_on NULLS LAST, id")
        return [RelayLeg(**r) for r in rows]

    async def editions_by_status(self) -> dict[str, int]:
        rows = await self.conn.fetch("SELECT status, count(*) AS n FROM editions GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


_RELAY_LEGS = "SELECT id AS leg_id, region, edition_id, starts_on, handed_over_to, handed_over_at FROM relay_legs"

_EDITION_FIGURES = """
SELECT e.id AS edition_id, e.region, e.name, e.status, e.starts_on, e.ends_on,
       e.cancellation_reason, e.cancelled_at,
       o.offers, o.seats, o.offers_cancelled,
       s.signups, s.withdrawn, s.organisations, s.not_required, s.pending_approval, s.approved, s.refused,
       m.assigned, m.first_choice, m.waitlisted, m.unmatched, m.awaiting_rematch, m.seat_offers_open,
       n.emails_sent, n.emails_failed,
       f.feedback_count, f.rating_total, f.feedback_shareable
  FROM editions e
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE NOT cancelled) AS offers,
              coalesce(sum(capacity) FILTER (WHERE NOT cancelled), 0) AS seats,
              count(*) FILTER (WHERE cancelled) AS offers_cancelled
         FROM offers WHERE edition_id = e.id) o
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE active) AS signups,
              count(*) FILTER (WHERE withdrawn) AS withdrawn,
              count(DISTINCT org) FILTER (WHERE active) AS organisations,
              count(*) FILTER (WHERE active AND approval = 'not_required') AS not_required,
              count(*) FILTER (WHERE active AND approval = 'pending') AS pending_approval,
              count(*) FILTER (WHERE active AND approval = 'approved') AS approved,
              count(*) FILTER (WHERE NOT withdrawn AND approval = 'refused') AS refused
         FROM (SELECT *, NOT withdrawn AND approval IS DISTINCT FROM 'refused' AS active
                 FROM signups WHERE edition_id = e.id) active_signups) s
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE outcome = 'assigned') AS assigned,
              count(*) FILTER (WHERE outcome = 'assigned' AND rank = 1) AS first_choice,
              count(*) FILTER (WHERE outcome = 'waitlisted') AS waitlisted,
              count(*) FILTER (WHERE outcome = 'unmatched') AS unmatched,
              count(*) FILTER (WHERE outcome = 'awaiting_rematch') AS awaiting_rematch,
              count(*) FILTER (WHERE outcome = 'offered') AS seat_offers_open
         FROM match_outcomes WHERE edition_id = e.id) m
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE status = 'sent') AS emails_sent,
              count(*) FILTER (WHERE status = 'failed') AS emails_failed
         FROM notifications WHERE edition_id = e.id) n
 CROSS JOIN LATERAL (
       SELECT count(*) AS feedback_count, coalesce(sum(rating), 0) AS rating_total,
              count(*) FILTER (WHERE share_publicly) AS feedback_shareable
         FROM feedback WHERE edition_id = e.id) f
"""

_DAY_FIGURES = """
SELECT date, sum(signups)::int AS signups, sum(offers)::int AS offers,
       sum(seats)::int AS seats, sum(assigned)::int AS assigned
  FROM (SELECT (signed_up_at AT TIME ZONE $2)::date AS date, 1 AS signups, 0 AS offers, 0 AS seats, 0 AS assigned
          FROM signups WHERE edition_id = $1 AND NOT withdrawn AND approval IS DISTINCT FROM 'refused'
        UNION ALL
        SELECT date, 0, 1, capacity, 0 FROM offers WHERE edition_id = $1 AND NOT cancelled
        UNION ALL
        SELECT offer_date, 0, 0, 0, 1 FROM match_outcomes WHERE edition_id = $1 AND outcome = 'assigned') d
 GROUP BY date
 ORDER BY date
"""

_TEMPLATE_FIGURES = """
SELECT coalesce(template, 'unknown') AS template,
       count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM notifications WHERE edition_id = $1
 GROUP BY 1
 ORDER BY 1
"""
