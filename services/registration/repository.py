"""SQL for the registration schema, on one transaction's connection. Returns domain types only."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.registration.domain import Counts, Edition, Offer, Signup

_EDITION = "id, region, name, signup_deadline, starts_on, ends_on, languages, status"
_OFFER = "id, edition_id, host_org, title, date, capacity, max_per_org, format, location, status"
_SIGNUP = "id, edition_id, org, name, email, language, choices, available, max_visits, signed_up_at, status, erased_at"
#: Outbox rows that carry a participant's name and e-mail address (SignupSubmitted did until contract v2).
_PERSONAL_EVENTS = ["ParticipantRegistered", "SignupSubmitted"]

_TABLES = {Edition: "editions", Offer: "offers", Signup: "signups"}


def _lock(for_update: bool) -> str:
    return " FOR UPDATE" if for_update else ""


class Repository:
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
        values = (e.id, e.region, e.name, e.signup_deadline, e.starts_on, e.ends_on, e.languages, e.status)
        return await self._insert("editions", _EDITION, values)

    async def edition(self, edition_id: str, *, for_update: bool = False) -> Edition | None:
        row = await self.conn.fetchrow(f"SELECT {_EDITION} FROM editions WHERE id = $1{_lock(for_update)}", edition_id)
        return Edition(**row) if row else None


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
        values = (o.id, o.edition_id, o.host_org, o.title, o.date, o.capacity, o.max_per_org, o.format, o.location, o.status)
        return await self._insert("offers", _OFFER, values)

    async def offer(self, edition_id: str, offer_id: str, *, for_update: bool = False) -> Offer | None:
        row = await self.conn.fetchrow(
            f"SELECT {_OFFER} FROM offers WHERE id = $2 AND edition_id = $1{_lock(for_update)}", edition_id, offer_id
        )
        return Offer(**row) if row else None

    async def offers_by_id(self, ids: list[str]) -> dict[str, Offer]:
        """The offers with these ids that exist, in any edition."""
        rows = await self.conn.fetch(f"SELECT {_OFFER} FROM offers WHERE id = ANY($1::text[])", ids)
        return {r["id"]: Offer(**r) for r in rows}

    async def offers(self, edition_id: str) -> list[Offer]:
        rows = await self.conn.fetch(f"SELECT {_OFFER} FROM offers WHERE edition_id = $1 ORDER BY date, id", edition_id)
        return [Offer(**r) for r in rows]


    # --- sign-ups -------------------------------------------------------------------------------
    async def insert_signup(self, s: Signup) -> bool:
        """False when this e-mail address already has an active sign-up for the edition (unique index)."""
        values = (
            s.id, s.edition_id, s.org, s.name, s.email, s.language, s.choices, s.available, s.max_visits,
            s.signed_up_at, s.status, s.erased_at,
        )
        return await self._insert("signups", _SIGNUP, values)

    async def signup(self, edition_id: str, signup_id: str, *, for_update: bool = False) -> Signup | None:
        row = await self.conn.fetchrow(
            f"SELECT {_SIGNUP} FROM signups WHERE id = $2 AND edition_id = $1{_lock(for_update)}", edition_id, signup_id
        )
        return Signup(**row) if row else None

    async def signup_by_id(self, signup_id: str, *, for_update: bool = False) -> Signup | None:
        """A sign-up of any edition."""
        row = await self.conn.fetchrow(f"SELECT {_SIGNUP} FROM signups WHERE id = $1{_lock(for_update)}", signup_id)
        return Signup(**row) if row else None

    async def erase_personal_data(self, s: Signup) -> None:
        """Store the erased sign-up (`domain.erased`: name and e-mail address blank) and blank them in the
        outbox too: published rows lose them; a ParticipantRegistered not yet published is dropped (the
        erasure's tombstone, queued after it, is published instead)."""
        await self.conn.execute(
            "UPDATE signups SET name = $2, email = $3, erased_at = $4 WHERE id = $1", s.id, s.name, s.email, s.erased_at
        )
        await self.conn.execute(
            "DELETE FROM outbox WHERE key = $1 AND event_type = 'ParticipantRegistered' AND published_at IS NULL", s.id
        )
        await self.conn.execute(
            "UPDATE outbox SET payload = payload || jsonb_build_object('name', $2::text, 'email', $3::text)"
            " WHERE key = $1 AND event_type = ANY($4::text[]) AND payload ?| array['name', 'email']",
            s.id, s.name, s.email, _PERSONAL_EVENTS,
        )
