"""SQL for the reporting schema: `Repository(conn)` on the transaction's connection, domain types in
and out.

Writes store the state that a domain rule decided (domain.py): the repository reads an entity
(locked `FOR UPDATE` for the rest of the transaction), the rule decides, the repository upserts the
result. All events about one entity come from one topic and key, so one consumer handles them in
order. Reads aggregate the rows into figures.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from services.reporting.public import DayCell
from services.reporting.domain import (
    DayFigures,
    Edition,
    EditionFigures,
    Feedback,
    KnowledgeItem,
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
        #: Editions this transaction has made sure of (a consumer's batch names the same few editions
        #: in most of its events: one statement each, not one per event).
        self._known_editions: set[str] = set()

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
        if e.edition_id in self._known_editions:
            return
        await self._upsert("editions", replace=False, id=e.edition_id, region=e.region, status=e.status)
        self._known_editions.add(e.edition_id)

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

    async def signups_by_id(self, ids: list[str]) -> dict[str, Signup]:
        """The stored sign-ups of these ids, locked (in id order) until the transaction ends."""
        rows = await self.conn.fetch(
            "SELECT id AS signup_id, edition_id, org, signed_up_at, withdrawn, approval FROM signups"
            " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", ids,
        )
        return {r["signup_id"]: Signup(**r) for r in rows}

    async def save_signups(self, signups: list[Signup]) -> None:
        """`save_signup` of each (one per id), in one statement."""
        if not signups:
            return
        await self.conn.execute(
            "INSERT INTO signups (id, edition_id, org, signed_up_at, withdrawn, approval)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::boolean[], $6::text[])"
            " ON CONFLICT (id) DO UPDATE SET edition_id = EXCLUDED.edition_id, org = EXCLUDED.org,"
            " signed_up_at = EXCLUDED.signed_up_at, withdrawn = EXCLUDED.withdrawn, approval = EXCLUDED.approval",
            [s.signup_id for s in signups], [s.edition_id for s in signups], [s.org for s in signups],
            [s.signed_up_at for s in signups], [s.withdrawn for s in signups], [s.approval for s in signups],
        )

    async def relay_leg(self, leg_id: str) -> RelayLeg | None:
        row = await self._locked(_RELAY_LEGS + " WHERE id = $1", leg_id)
        return _relay_leg(row) if row else None

    async def save_relay_leg(self, leg: RelayLeg) -> None:
        planned = leg.planned
        await self._upsert("relay_legs", id=leg.leg_id, region=leg.region, edition_id=leg.edition_id,
                           starts_on=leg.starts_on, handed_over_to=leg.handed_over_to,
                           handed_over_at=leg.handed_over_at, position=leg.position, first_day=leg.first_day,
                           last_day=leg.last_day, activity=leg.activity,
                           planned_at=planned and planned.occurred_at, planned_event=planned and planned.event_id,
                           to_leg_id=leg.to_leg_id, early=leg.early, knowledge_items=list(leg.knowledge_items))

    async def add_feedback(self, f: Feedback, submitted_at: datetime | None = None) -> None:
        """Store `f` unless this feedback is known already (with the moment it was given, for its day)."""
        await self._upsert("feedback", replace=False, id=f.feedback_id, edition_id=f.edition_id, rating=f.rating,
                           share_publicly=f.share_publicly, submitted_at=submitted_at)

    async def knowledge_item(self, feedback_id: str) -> KnowledgeItem | None:
        row = await self._locked(_KNOWLEDGE_ITEMS + " WHERE feedback_id = $1", feedback_id)
        return _knowledge_item(row) if row else None

    async def save_knowledge_item(self, k: KnowledgeItem) -> None:
        await self._upsert("knowledge_items", feedback_id=k.feedback_id, region=k.region, edition_id=k.edition_id,
                           status=k.status, offer_id=k.offer_id, text=k.text, language=k.language,
                           offer_title=k.offer_title, host_org=k.host_org, approved_at=k.approved_at,
                           occurred_at=k.version.occurred_at, event_id=k.version.event_id)

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

    async def notification_versions(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Version]:
        """The stored outcomes' versions of these notifications, locked (in id order)."""
        rows = await self.conn.fetch(
            "SELECT id, occurred_at, event_id FROM notifications WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids,
        )
        return {r["id"]: Version(r["occurred_at"], r["event_id"]) for r in rows}

    async def save_notifications(self, outcomes: list[NotificationOutcome]) -> None:
        """`save_notification` of each (one per id), in one statement."""
        if not outcomes:
            return
        await self.conn.execute(
            "INSERT INTO notifications (id, edition_id, status, occurred_at, event_id, template)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[], $6::text[])"
            " ON CONFLICT (id) DO UPDATE SET edition_id = EXCLUDED.edition_id, status = EXCLUDED.status,"
            " occurred_at = EXCLUDED.occurred_at, event_id = EXCLUDED.event_id, template = EXCLUDED.template",
            [o.notification_id for o in outcomes], [o.edition_id for o in outcomes], [o.status for o in outcomes],
            [o.version.occurred_at for o in outcomes], [o.version.event_id for o in outcomes],
            [o.template for o in outcomes],
        )

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
        rows = await self.conn.fetch(_RELAY_LEGS + " ORDER BY coalesce(starts_on, first_day) NULLS LAST, id")
        return [_relay_leg(r) for r in rows]

    async def knowledge_items(self) -> list[KnowledgeItem]:
        """Every moderated knowledge item (approved ones with their text; rejected ones without)."""
        rows = await self.conn.fetch(_KNOWLEDGE_ITEMS + " ORDER BY approved_at NULLS LAST, feedback_id")
        return [_knowledge_item(r) for r in rows]

    async def day_cells(self, timezone: str) -> list[DayCell]:
        """Per (region, edition, day): sign-ups made that day, visits assigned that day, feedback given."""
        rows = await self.conn.fetch(_DAY_CELLS, timezone)
        return [DayCell(**r) for r in rows]

    async def all_template_figures(self) -> dict[str, list[TemplateFigures]]:
        rows = await self.conn.fetch(_ALL_TEMPLATE_FIGURES)
        out: dict[str, list[TemplateFigures]] = {}
        for r in rows:
            out.setdefault(r["edition_id"], []).append(TemplateFigures(r["template"], r["sent"], r["failed"]))
        return out

    # --- the dashboard feed ---------------------------------------------------------------------
    async def lock_dashboard(self) -> None:
        """One refresh of the dashboard feed at a time (across instances), until the transaction ends."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('reporting.dashboard'))")

    async def dashboard_records(self) -> dict[str, dict[str, object]]:
        rows = await self.conn.fetch("SELECT key, figures FROM dashboard_records")
        return {r["key"]: json.loads(r["figures"]) for r in rows}

    async def save_dashboard_records(self, records: Iterable[tuple[str, dict[str, object]]], at: datetime) -> None:
        for key, figures in records:
            await self._upsert("dashboard_records", key=key, figures=json.dumps(figures, sort_keys=True),
                               published_at=at)

    async def bump_dashboard_generation(self) -> int:
        return await self.conn.fetchval("UPDATE dashboard_state SET generation = generation + 1 RETURNING generation")

    async def dashboard_generation(self) -> int:
        return await self.conn.fetchval("SELECT generation FROM dashboard_state")

    async def editions_by_status(self) -> dict[str, int]:
        rows = await self.conn.fetch("SELECT status, count(*) AS n FROM editions GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


_RELAY_LEGS = (
    "SELECT id AS leg_id, region, edition_id, starts_on, handed_over_to, handed_over_at, position, first_day,"
    " last_day, activity, planned_at, planned_event, to_leg_id, early, knowledge_items FROM relay_legs"
)
_KNOWLEDGE_ITEMS = (
    "SELECT feedback_id, region, edition_id, status, offer_id, text, language, offer_title, host_org, approved_at,"
    " occurred_at, event_id FROM knowledge_items"
)


def _relay_leg(row: asyncpg.Record) -> RelayLeg:
    r = dict(row)
    at, event = r.pop("planned_at"), r.pop("planned_event")
    r["planned"] = Version(at, event) if at else None
    r["knowledge_items"] = tuple(r["knowledge_items"] or ())
    return RelayLeg(**r)


def _knowledge_item(row: asyncpg.Record) -> KnowledgeItem:
    r = dict(row)
    r["version"] = Version(r.pop("occurred_at"), r.pop("event_id"))
    return KnowledgeItem(**r)


_DAY_CELLS = """
SELECT e.region, d.edition_id, d.day,
       sum(d.signups)::int AS signups, sum(d.assigned)::int AS assigned,
       sum(d.feedback)::int AS feedback, sum(d.rating)::int AS rating_total
  FROM (SELECT edition_id, (signed_up_at AT TIME ZONE $1)::date AS day, 1 AS signups, 0 AS assigned, 0 AS feedback, 0 AS rating
          FROM signups WHERE signed_up_at IS NOT NULL AND NOT withdrawn AND approval IS DISTINCT FROM 'refused'
        UNION ALL
        SELECT edition_id, offer_date, 0, 1, 0, 0 FROM match_outcomes WHERE outcome = 'assigned' AND offer_date IS NOT NULL
        UNION ALL
        SELECT edition_id, (submitted_at AT TIME ZONE $1)::date, 0, 0, 1, rating FROM feedback WHERE submitted_at IS NOT NULL
       ) d
  JOIN editions e ON e.id = d.edition_id
 GROUP BY e.region, d.edition_id, d.day
 ORDER BY e.region, d.edition_id, d.day
"""

_ALL_TEMPLATE_FIGURES = """
SELECT edition_id, coalesce(template, 'unknown') AS template,
       count(*) FILTER (WHERE status = 'sent')::int AS sent,
       count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM notifications
 GROUP BY 1, 2
 ORDER BY 1, 2
"""

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
