"""SQL for the registration schema, on one transaction's connection. Returns domain types only."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from estafette.runtime import scheduler
from services.registration.domain import (
    Contact,
    Counts,
    Edition,
    Feedback,
    KnowledgeItem,
    Offer,
    Organisation,
    Placement,
    RelayLeg,
    Signup,
)
from services.registration.people_repository import PeopleQueries

_EDITION = (
    "id, region, name, signup_deadline, starts_on, ends_on, languages, status, themes, requires_approval,"
    " match_at_deadline"
)
_OFFER = (
    "id, edition_id, host_org, title, date, capacity, max_per_org, format, location, status, themes, attendance,"
    " part_of_day, starts_at, ends_at, join_url, what_to_bring, host_contact, sequence"
)
_SIGNUP = (
    "id, edition_id, org, name, email, language, choices, available, max_visits, signed_up_at, status, erased_at,"
    " learning_goal, consented_at, approval"
)
_ORGANISATION = "edition_id, id, name, contact_name, contact_email, contact_language"
_PLACEMENT = (
    "signup_id, outcome, updated_at, offer_id, rank, position, reason_code, seat_offer_id, seat_offer_rank,"
    " seat_offer_expires_at"
)
_FEEDBACK = "id, signup_id, offer_id, rating, learned, share_publicly, language, submitted_at"
#: Outbox rows that carry a participant's name and e-mail address (SignupSubmitted did until contract v2).
_PERSONAL_EVENTS = ["ParticipantRegistered", "SignupSubmitted"]

_TABLES = {Edition: "editions", Offer: "offers", Signup: "signups"}


def _offer(row: Mapping[str, Any]) -> Offer:
    fields = dict(row)
    contact = fields.pop("host_contact")
    return Offer(**fields, host_contact=Contact(**json.loads(contact)) if contact else None)


def _offer_values(o: Offer) -> tuple[object, ...]:
    contact = json.dumps(vars(o.host_contact)) if o.host_contact else None
    return (
        o.id, o.edition_id, o.host_org, o.title, o.date, o.capacity, o.max_per_org, o.format, o.location, o.status,
        o.themes, o.attendance, o.part_of_day, o.starts_at, o.ends_at, o.join_url, o.what_to_bring, contact, o.sequence,
    )


def _organisation(row: Mapping[str, Any]) -> Organisation:
    return Organisation(row["edition_id"], row["id"], row["name"],
                        Contact(row["contact_name"], row["contact_email"], row["contact_language"]))


def _lock(for_update: bool) -> str:
    return " FOR UPDATE" if for_update else ""


class Repository(PeopleQueries):  # PeopleQueries: the organisers' tools (issue 11)
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _insert(self, table: str, columns: str, values: Sequence[object]) -> bool:
        """INSERT one row; False when a unique key (id, or one sign-up per e-mail) already holds it."""
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        row = await self.conn.fetchval(
            f"INSERT INTO {table} ({columns}) VALUES ({params}) ON CONFLICT DO NOTHING RETURNING 1", *values
        )
        return row is not None

    async def set_status(self, thing: Edition | Offer | Signup, status: str) -> None:
        """Store a decided status (closed, cancelled, withdrawn)."""
        await self.conn.execute(f"UPDATE {_TABLES[type(thing)]} SET status = $2 WHERE id = $1", thing.id, status)

    # --- editions -------------------------------------------------------------------------------
    async def insert_edition(self, e: Edition) -> bool:
        """False when an edition with this id exists."""
        values = (
            e.id, e.region, e.name, e.signup_deadline, e.starts_on, e.ends_on, e.languages, e.status, e.themes,
            e.requires_approval, e.match_at_deadline,
        )
        return await self._insert("editions", _EDITION, values)

    async def edition(self, edition_id: str, *, for_update: bool = False) -> Edition | None:
        row = await self.conn.fetchrow(f"SELECT {_EDITION} FROM editions WHERE id = $1{_lock(for_update)}", edition_id)
        return Edition(**row) if row else None

    async def editions_by_id(self, ids: Sequence[str]) -> dict[str, Edition]:
        """The editions with these ids that exist."""
        rows = await self.conn.fetch(f"SELECT {_EDITION} FROM editions WHERE id = ANY($1::text[])", list(ids))
        return {r["id"]: Edition(**r) for r in rows}


    async def counts(self, edition_id: str) -> Counts:
        row = await self.conn.fetchrow(
            "SELECT (SELECT count(*) FROM offers WHERE edition_id = $1 AND status = 'published') AS offers,"
            " (SELECT count(*) FROM signups WHERE edition_id = $1 AND status = 'submitted') AS signups",
            edition_id,
        )
        return Counts(**row)

    # --- offers ---------------------------------------------------------------------------------
    async def insert_offer(self, o: Offer) -> bool:
        """False when an offer with this id exists (in any edition)."""
        return await self._insert("offers", _OFFER, _offer_values(o))

    async def update_offer(self, o: Offer) -> None:
        """Store an edited offer (`domain.offer_change`): every field, its sequence too."""
        columns = _OFFER.replace(" ", "").split(",")
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, 1) if c not in ("id", "edition_id"))
        await self.conn.execute(f"UPDATE offers SET {assignments} WHERE id = $1 AND edition_id = $2", *_offer_values(o))

    async def offer(self, edition_id: str, offer_id: str, *, for_update: bool = False) -> Offer | None:
        row = await self.conn.fetchrow(
            f"SELECT {_OFFER} FROM offers WHERE id = $2 AND edition_id = $1{_lock(for_update)}", edition_id, offer_id
        )
        return _offer(row) if row else None

    async def offers_by_id(self, ids: list[str]) -> dict[str, Offer]:
        """The offers with these ids that exist, in any edition."""
        rows = await self.conn.fetch(f"SELECT {_OFFER} FROM offers WHERE id = ANY($1::text[])", ids)
        return {r["id"]: _offer(r) for r in rows}

    async def offers(self, edition_id: str) -> list[Offer]:
        rows = await self.conn.fetch(f"SELECT {_OFFER} FROM offers WHERE edition_id = $1 ORDER BY date, id", edition_id)
        return [_offer(r) for r in rows]


    # --- sign-ups -------------------------------------------------------------------------------
    async def insert_signup(self, s: Signup) -> bool:
        """False when this e-mail address already has an active sign-up for the edition (unique index)."""
        return await self._insert("signups", _SIGNUP, _signup_values(s))

    async def insert_signups(self, signups: Sequence[Signup]) -> set[str]:
        """`insert_signup` of each, in order, in one round trip; the ids inserted (a second sign-up of an
        e-mail address, in the table or earlier in `signups`, is not)."""
        if not signups:
            return set()
        params = ", ".join(f"${i}" for i in range(1, 16))
        await self.conn.executemany(
            f"INSERT INTO signups ({_SIGNUP}) VALUES ({params}) ON CONFLICT DO NOTHING",
            [_signup_values(s) for s in signups],
        )
        rows = await self.conn.fetch("SELECT id FROM signups WHERE id = ANY($1::text[])", [s.id for s in signups])
        return {r["id"] for r in rows}

    async def signup(self, edition_id: str, signup_id: str, *, for_update: bool = False) -> Signup | None:
        row = await self.conn.fetchrow(
            f"SELECT {_SIGNUP} FROM signups WHERE id = $2 AND edition_id = $1{_lock(for_update)}", edition_id, signup_id
        )
        return Signup(**row) if row else None

    async def signup_by_id(self, signup_id: str, *, for_update: bool = False) -> Signup | None:
        """A sign-up of any edition."""
        row = await self.conn.fetchrow(f"SELECT {_SIGNUP} FROM signups WHERE id = $1{_lock(for_update)}", signup_id)
        return Signup(**row) if row else None

    async def set_approval(self, s: Signup) -> None:
        """Store an employer's answer (`domain.answered`): the approval, and the status it leaves."""
        await self.conn.execute("UPDATE signups SET approval = $2, status = $3 WHERE id = $1", s.id, s.approval, s.status)

    async def set_choices(self, s: Signup) -> None:
        await self.conn.execute("UPDATE signups SET choices = $2 WHERE id = $1", s.id, s.choices)

    # --- participating organisations ------------------------------------------------------------
    async def insert_organisation(self, o: Organisation) -> bool:
        """False when the edition has an organisation with this id."""
        values = (o.edition_id, o.id, o.name, o.contact.name, o.contact.email, o.contact.language)
        return await self._insert("organisations", _ORGANISATION, values)

    async def organisation(self, edition_id: str, org_id: str) -> Organisation | None:
        row = await self.conn.fetchrow(
            f"SELECT {_ORGANISATION} FROM organisations WHERE edition_id = $1 AND id = $2", edition_id, org_id
        )
        return _organisation(row) if row else None

    async def organisations(self, edition_id: str) -> list[Organisation]:
        rows = await self.conn.fetch(f"SELECT {_ORGANISATION} FROM organisations WHERE edition_id = $1 ORDER BY id", edition_id)
        return [_organisation(r) for r in rows]

    # --- placements -------------------------------------------------------------------------------
    async def placement(self, signup_id: str, *, for_update: bool = False) -> Placement | None:
        row = await self.conn.fetchrow(f"SELECT {_PLACEMENT} FROM placements WHERE signup_id = $1{_lock(for_update)}", signup_id)
        return Placement(**row) if row else None

    async def store_placement(self, p: Placement) -> None:
        """Insert or replace the participant's placement (one row per sign-up)."""
        columns = _PLACEMENT.replace(" ", "").split(",")
        params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
        await self.conn.execute(
            f"INSERT INTO placements ({_PLACEMENT}) VALUES ({params}) ON CONFLICT (signup_id) DO UPDATE SET {updates}",
            *(getattr(p, c) for c in columns),
        )

    # --- feedback ---------------------------------------------------------------------------------
    async def insert_feedback(self, f: Feedback) -> bool:
        """False when this sign-up already gave feedback on this offer."""
        values = (f.id, f.signup_id, f.offer_id, f.rating, f.learned, f.share_publicly, f.language, f.submitted_at)
        return await self._insert("feedback", _FEEDBACK, values)

    async def feedback(self, signup_id: str, offer_id: str) -> Feedback | None:
        row = await self.conn.fetchrow(
            f"SELECT {_FEEDBACK} FROM feedback WHERE signup_id = $1 AND offer_id = $2", signup_id, offer_id
        )
        return Feedback(**row) if row else None

    async def erase_personal_data(self, s: Signup) -> None:
        """Store the erased sign-up (`domain.erased`: name and e-mail address blank) and blank them in the
        outbox too: published rows lose them; a ParticipantRegistered not yet published is dropped (the
        erasure's tombstone, queued after it, is published instead)."""
        await self.conn.execute(
            "UPDATE signups SET name = $2, email = $3, learning_goal = $4, erased_at = $5 WHERE id = $1",
            s.id, s.name, s.email, s.learning_goal, s.erased_at,
        )
        await self.conn.execute(
            "DELETE FROM outbox WHERE key = $1 AND event_type = 'ParticipantRegistered' AND published_at IS NULL", s.id
        )
        await self.conn.execute(
            "UPDATE outbox SET payload = payload || jsonb_build_object('name', $2::text, 'email', $3::text)"
            " WHERE key = $1 AND event_type = ANY($4::text[]) AND payload ?| array['name', 'email']",
            s.id, s.name, s.email, _PERSONAL_EVENTS,
        )
        await self.conn.execute(
            "UPDATE outbox SET payload = payload || jsonb_build_object('learning_goal', '')"
            " WHERE key = $1 AND event_type = 'ParticipantRegistered' AND payload ? 'learning_goal'", s.id,
        )

    async def erase_approval_request(self, notification_key: str) -> None:
        """Blank the participant's name and learning goal in their approval request (the outbox row keyed
        by its notification id); the organisation contact's own details stay."""
        await self.conn.execute(
            "UPDATE outbox SET payload = jsonb_set(jsonb_set(payload, '{context,participant_name}', '\"\"'),"
            " '{context,learning_goal}', '\"\"')"
            " WHERE key = $1 AND event_type = 'NotificationRequested' AND payload ? 'context'",
            notification_key,
        )

    # --- relay (issue 10) -------------------------------------------------------------------------
    async def lock_relay(self) -> None:
        """Serialise changes of the relay plan and the baton (until the transaction ends)."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('estafette.registration.relay'))")

    async def relay_legs(self) -> list[RelayLeg]:
        """The relay plan, in the order of its positions."""
        rows = await self.conn.fetch(f"SELECT {_RELAY_LEG} FROM relay_legs ORDER BY position")
        return [RelayLeg(**r) for r in rows]

    async def store_relay_leg(self, leg: RelayLeg) -> None:
        """Insert or replace a leg (every field)."""
        columns = _RELAY_LEG.replace(" ", "").split(",")
        params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
        await self.conn.execute(
            f"INSERT INTO relay_legs ({_RELAY_LEG}) VALUES ({params}) ON CONFLICT (id) DO UPDATE SET {updates}",
            *(getattr(leg, c) for c in columns),
        )

    async def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any] | None = None) -> None:
        """Schedule (or move) a durable step in this transaction (estafette/runtime/scheduler.py)."""
        await scheduler.schedule(self, kind, key, due_at, payload)

    async def knowledge_items(self, edition_id: str, status: str) -> list[KnowledgeItem]:
        """The edition's shareable feedback in moderation state `status` (pending: not decided yet)."""
        where = "k.feedback_id IS NULL" if status == "pending" else "k.status = $2"
        rows = await self.conn.fetch(
            f"{_KNOWLEDGE} WHERE s.edition_id = $1 AND f.share_publicly AND {where}"
            " ORDER BY f.submitted_at, f.id",
            edition_id, *([] if status == "pending" else [status]),
        )
        return [_knowledge_item(r) for r in rows]

    async def knowledge_item(self, edition_id: str, feedback_id: str, *, for_update: bool = False) -> KnowledgeItem | None:
        """A feedback of the edition as a knowledge item (shareable or not: the rule decides)."""
        row = await self.conn.fetchrow(
            f"{_KNOWLEDGE} WHERE s.edition_id = $1 AND f.id = $2{' FOR UPDATE OF f' if for_update else ''}",
            edition_id, feedback_id,
        )
        return _knowledge_item(row) if row else None

    async def store_knowledge_decision(self, item: KnowledgeItem) -> None:
        await self.conn.execute(
            "INSERT INTO knowledge_items (feedback_id, region, status, text, reason, decided_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            item.feedback.id, item.region, item.status, item.text, item.reason, item.decided_at,
        )

    async def carry_knowledge_items(self, region: str, leg_id: str, until: datetime) -> list[str]:
        """The approved knowledge items of `region` (approved up to `until`) that have not travelled with
        a leg yet now travel with `leg_id`: their feedback ids, in the order they were approved."""
        rows = await self.conn.fetch(
            "UPDATE knowledge_items SET leg_id = $2 WHERE region = $1 AND status = 'approved' AND leg_id IS NULL"
            " AND decided_at <= $3 RETURNING feedback_id, decided_at",
            region, leg_id, until,
        )
        return [r["feedback_id"] for r in sorted(rows, key=lambda r: (r["decided_at"], r["feedback_id"]))]


_RELAY_LEG = (
    "id, region, edition, first_day, last_day, position, activity, allow_gap, timezone, status, started_at,"
    " handed_over_at, early, to_leg_id"
)
_KNOWLEDGE = (
    "SELECT f.id, f.signup_id, f.offer_id, f.rating, f.learned, f.share_publicly, f.language, f.submitted_at,"
    " s.edition_id, e.region, coalesce(o.title, '') AS offer_title, coalesce(o.host_org, '') AS host_org,"
    " coalesce(k.status, 'pending') AS status, coalesce(k.text, '') AS text, coalesce(k.reason, '') AS reason,"
    " k.decided_at, k.leg_id"
    " FROM feedback f JOIN signups s ON s.id = f.signup_id JOIN editions e ON e.id = s.edition_id"
    " LEFT JOIN offers o ON o.id = f.offer_id LEFT JOIN knowledge_items k ON k.feedback_id = f.id"
)


def _knowledge_item(row: Mapping[str, Any]) -> KnowledgeItem:
    fields = dict(row)
    feedback = Feedback(**{name: fields.pop(name) for name in _FEEDBACK.replace(" ", "").split(",")})
    return KnowledgeItem(feedback=feedback, **fields)


def _signup_values(s: Signup) -> tuple[object, ...]:
    """A sign-up's values in `_SIGNUP`'s column order."""
    return (
        s.id, s.edition_id, s.org, s.name, s.email, s.language, s.choices, s.available, s.max_visits,
        s.signed_up_at, s.status, s.erased_at, s.learning_goal, s.consented_at, s.approval,
    )
