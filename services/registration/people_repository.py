"""SQL of the organisers' tools (issue 11): the people list, a sign-up's history, visitor lists, bulk
inserts, the exports' server-side cursors and the recommendations' full-text ranking. A mixin of
`Repository` (same connection, same transaction); returns domain types or plain rows for exports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

import asyncpg

from estafette.runtime.errors import Conflict
from services.registration.domain import Offer, Placement, Signup
from services.registration.people import Cursor, ExportKind, HistoryEntry, PeopleFilter, Person, Visitor

_S = (
    "s.id, s.edition_id, s.org, s.name, s.email, s.language, s.choices, s.available, s.max_visits, s.signed_up_at,"
    " s.status, s.erased_at, s.learning_goal, s.consented_at, s.approval"
)
_P = (
    "p.signup_id, p.outcome, p.updated_at, p.offer_id, p.rank, p.position, p.reason_code, p.seat_offer_id,"
    " p.seat_offer_rank, p.seat_offer_expires_at"
)
_SIGNUP_COLUMNS = [c.strip().removeprefix("s.") for c in _S.split(",")]
_PLACEMENT_COLUMNS = [c.strip().removeprefix("p.") for c in _P.split(",")]
_OFFER_COLUMNS = [
    "id", "edition_id", "host_org", "title", "date", "capacity", "max_per_org", "format", "location", "status",
    "themes", "attendance", "part_of_day", "starts_at", "ends_at", "join_url", "what_to_bring", "host_contact",
    "sequence",
]

#: Each export: its columns and its query ($1: the edition), in a stable order.
EXPORTS: dict[str, tuple[tuple[str, ...], str]] = {
    "signups": (
        ("signup_id", "org", "name", "email", "language", "status", "approval", "choices", "available", "max_visits",
         "learning_goal", "signed_up_at", "outcome", "offer_id"),
        "SELECT s.id, s.org, s.name, s.email, s.language, s.status, s.approval, array_to_string(s.choices, ';'),"
        " array_to_string(s.available, ';'), s.max_visits, s.learning_goal, s.signed_up_at, p.outcome, p.offer_id"
        " FROM signups s LEFT JOIN placements p ON p.signup_id = s.id WHERE s.edition_id = $1"
        " ORDER BY s.signed_up_at, s.id",
    ),
    "assignments": (
        ("signup_id", "name", "org", "outcome", "offer_id", "title", "date", "rank", "position", "reason_code",
         "updated_at"),
        "SELECT s.id, s.name, s.org, p.outcome, p.offer_id, o.title, o.date, p.rank, p.position, p.reason_code,"
        " p.updated_at FROM placements p JOIN signups s ON s.id = p.signup_id LEFT JOIN offers o ON o.id = p.offer_id"
        " WHERE s.edition_id = $1 ORDER BY s.id",
    ),
    "visitors": (
        ("offer_id", "title", "date", "signup_id", "name", "org", "learning_goal", "language"),
        "SELECT o.id, o.title, o.date, s.id, s.name, s.org, s.learning_goal, s.language"
        " FROM placements p JOIN signups s ON s.id = p.signup_id JOIN offers o ON o.id = p.offer_id"
        " WHERE o.edition_id = $1 AND p.outcome = 'assigned' AND s.status = 'submitted' ORDER BY o.date, o.id, s.name, s.id",
    ),
    "feedback": (
        ("feedback_id", "signup_id", "offer_id", "title", "rating", "learned", "share_publicly", "language",
         "submitted_at"),
        "SELECT f.id, f.signup_id, f.offer_id, o.title, f.rating, f.learned, f.share_publicly, f.language,"
        " f.submitted_at FROM feedback f JOIN signups s ON s.id = f.signup_id LEFT JOIN offers o ON o.id = f.offer_id"
        " WHERE s.edition_id = $1 ORDER BY f.submitted_at, f.id",
    ),
}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PeopleQueries:
    conn: asyncpg.Connection

    # --- the people list ------------------------------------------------------------------------------
    async def people(self, edition_id: str, where: PeopleFilter, after: Cursor | None, limit: int) -> list[Person]:
        """The edition's sign-ups by sign-up time and id, after `after`, at most `limit`, filtered."""
        rows = await self.conn.fetch(
            f"SELECT {_S}, {_P} FROM signups s LEFT JOIN placements p ON p.signup_id = s.id"
            " WHERE s.edition_id = $1"
            " AND ($2::text IS NULL OR s.status = $2)"
            " AND ($3::text IS NULL OR s.org = $3)"
            " AND ($4::text IS NULL OR $4 = ANY(s.choices) OR p.offer_id = $4 OR p.seat_offer_id = $4)"
            " AND ($5::text IS NULL OR s.name ILIKE $5 OR s.email ILIKE $5)"
            " AND ($6::timestamptz IS NULL OR (s.signed_up_at, s.id) > ($6, $7))"
            " ORDER BY s.signed_up_at, s.id LIMIT $8",
            edition_id, where.status, where.org, where.offer, _like(where.text) if where.text else None,
            after[0] if after else None, after[1] if after else "", limit,
        )
        out = []
        for r in rows:
            signup = Signup(**{c: r[c] for c in _SIGNUP_COLUMNS})
            placement = Placement(**{c: r[c] for c in _PLACEMENT_COLUMNS}) if r["outcome"] else None
            out.append(Person(signup, placement))
        return out

    async def history(self, signup_id: str) -> list[HistoryEntry]:
        rows = await self.conn.fetch(
            "SELECT kind, at, actor, reason, details::text AS details FROM signup_history WHERE signup_id = $1"
            " ORDER BY id", signup_id,  # the order they were written in (times come from two clocks in tests)
        )
        return [HistoryEntry(r["kind"], r["at"], r["actor"], r["reason"], json.loads(r["details"])) for r in rows]

    async def add_history(self, signup_id: str, edition_id: str, entry: HistoryEntry) -> None:
        await self.conn.execute(
            "INSERT INTO signup_history (signup_id, edition_id, kind, at, actor, reason, details)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            signup_id, edition_id, entry.kind, entry.at, entry.actor, entry.reason, json.dumps(dict(entry.details)),
        )

    async def update_signup(self, s: Signup) -> None:
        """Store an organiser's edit: choices, available dates, visits, learning goal."""
        await self.conn.execute(
            "UPDATE signups SET choices = $2, available = $3, max_visits = $4, learning_goal = $5 WHERE id = $1",
            s.id, s.choices, s.available, s.max_visits, s.learning_goal,
        )

    async def visitors(self, offer_id: str) -> list[Visitor]:
        rows = await self.conn.fetch(
            "SELECT s.id, s.name, s.org, s.learning_goal, s.language FROM placements p JOIN signups s ON s.id = p.signup_id"
            " WHERE p.offer_id = $1 AND p.outcome = 'assigned' AND s.status = 'submitted' ORDER BY s.name, s.id",
            offer_id,
        )
        return [Visitor(*r) for r in rows]

    # --- bulk import ----------------------------------------------------------------------------------
    async def active_signups_by_email(self, edition_id: str, emails: Sequence[str]) -> dict[str, Signup]:
        """The edition's active sign-ups of these e-mail addresses (lower case), by lower-case address."""
        rows = await self.conn.fetch(
            f"SELECT {_S} FROM signups s WHERE s.edition_id = $1 AND s.status = 'submitted' AND s.erased_at IS NULL"
            " AND lower(s.email) = ANY($2::text[])", edition_id, list(emails),
        )
        return {r["email"].lower(): Signup(**dict(r)) for r in rows}

    async def signup_ids_taken(self, ids: Sequence[str]) -> set[str]:
        rows = await self.conn.fetch("SELECT id FROM signups WHERE id = ANY($1::text[])", list(ids))
        return {r["id"] for r in rows}

    async def insert_offers(self, offers: Sequence[Offer]) -> None:
        """Many offers in one COPY (the import checked that none exists)."""
        records = []
        for o in offers:
            contact = json.dumps(vars(o.host_contact)) if o.host_contact else None
            records.append(tuple(contact if c == "host_contact" else getattr(o, c) for c in _OFFER_COLUMNS))
        await self.conn.copy_records_to_table("offers", records=records, columns=_OFFER_COLUMNS)

    async def insert_signups(self, signups: Sequence[Signup]) -> None:
        """Many sign-ups in one COPY (the import checked that none exists)."""
        records = [tuple(getattr(s, c) for c in _SIGNUP_COLUMNS) for s in signups]
        try:
            await self.conn.copy_records_to_table("signups", records=records, columns=_SIGNUP_COLUMNS)
        except asyncpg.UniqueViolationError:  # a sign-up of one of these addresses came in meanwhile
            raise Conflict("import_conflict", "a sign-up of one of these e-mail addresses came in meanwhile: "
                           "upload the file again") from None

    # --- exports ----------------------------------------------------------------------------------------
    @staticmethod
    def export_columns(kind: ExportKind) -> tuple[str, ...]:
        return EXPORTS[kind][0]

    async def export_rows(self, kind: ExportKind, edition_id: str) -> AsyncIterator[tuple[Any, ...]]:
        """The export's rows through a server-side cursor (the transaction must be open while iterating)."""
        _, query = EXPORTS[kind]
        async for record in self.conn.cursor(query, edition_id, prefetch=1000):
            yield tuple(record)

    # --- recommendations ----------------------------------------------------------------------------------
    async def goal_tokens(self, config: str, goal: str) -> list[tuple[str, str]]:
        """(word, lexeme) of the learning goal by PostgreSQL's parser and the language's stemmer (stop
        words give none)."""
        rows = await self.conn.fetch(
            "SELECT token, unnest(lexemes) AS lexeme FROM ts_debug($1::regconfig, $2) WHERE lexemes IS NOT NULL",
            config, goal,
        )
        return [(r["token"], r["lexeme"]) for r in rows if r["lexeme"]]

    async def offers_with_room(
        self, edition_id: str, config: str, lexemes: Sequence[str], days: Sequence[date] | None
    ) -> list[tuple[Offer, int, float, list[str]]]:
        """The edition's published offers with room (capacity minus assigned and offered seats), on one
        of `days` if given, each with its text rank against the lexemes (OR) and the lexemes it holds."""
        query = " | ".join("'" + lexeme.replace("'", "''").replace("\\", "\\\\") + "'" for lexeme in lexemes)
        rows = await self.conn.fetch(
            f"SELECT {', '.join('o.' + c for c in _OFFER_COLUMNS)}, o.capacity - coalesce(t.taken, 0) AS room,"
            " CASE WHEN $3 = '' THEN 0 ELSE ts_rank_cd(d.doc, to_tsquery('simple', $3)) END AS text_rank,"
            " ARRAY(SELECT unnest(tsvector_to_array(d.doc)) INTERSECT SELECT unnest($4::text[])) AS matched"
            " FROM offers o"
            " CROSS JOIN LATERAL (SELECT to_tsvector($2::regconfig, o.title || ' ' || array_to_string(o.themes, ' ')"
            "   || ' ' || o.what_to_bring || ' ' || o.format) AS doc) d"
            " LEFT JOIN (SELECT coalesce(CASE WHEN outcome = 'assigned' THEN offer_id END, seat_offer_id) AS offer_id,"
            "   count(*) AS taken FROM placements WHERE outcome IN ('assigned', 'offered') GROUP BY 1) t ON t.offer_id = o.id"
            " WHERE o.edition_id = $1 AND o.status = 'published' AND o.capacity - coalesce(t.taken, 0) > 0"
            " AND ($5::date[] IS NULL OR o.date = ANY($5::date[]))",
            edition_id, config, query, list(lexemes), list(days) if days else None,
        )
        from services.registration.repository import _offer  # the one row → Offer mapping

        return [(_offer({c: r[c] for c in _OFFER_COLUMNS}), r["room"], float(r["text_rank"]), list(r["matched"]))
                for r in rows]
