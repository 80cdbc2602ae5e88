"""The organisers' tools' part of the fake repository (issue 11): `PeopleFakeRepository` is
`FakeRepository` with what `PeopleQueries` (services/registration/people_repository.py) does in SQL:
the people list, a sign-up's history, edits, visitor lists, bulk inserts, exports and — with canned
text-search results, since stemming is PostgreSQL's — recommendations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any

from services.registration.domain import Offer, Placement, Signup
from services.registration.people import Cursor, ExportKind, HistoryEntry, PeopleFilter, Person, Visitor
from services.registration.people_repository import EXPORTS
from tests.unit.registration.fakes import FakeRepository


class PeopleFakeRepository(FakeRepository):
    def __init__(
        self, *args: Any, tokens: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        text_ranks: Mapping[str, tuple[float, Sequence[str]]] | None = None,
        export_data: Mapping[str, Sequence[tuple[Any, ...]]] | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.history_rows: list[tuple[str, str, HistoryEntry]] = []
        #: What PostgreSQL's parser and stemmer would make of a goal: goal -> (word, lexeme) pairs.
        self.tokens = dict(tokens or {})
        #: An offer's text rank and the goal lexemes it holds: offer id -> (rank, lexemes).
        self.text_ranks = dict(text_ranks or {})
        #: Each export's rows, as the SQL would give them.
        self.export_data = {k: list(v) for k, v in (export_data or {}).items()}
        self.copies: list[tuple[str, int]] = []
        #: Set by `export_rows` when its iteration ends or is closed (the cursor's transaction ends).
        self.export_closed = False
        #: The arguments of the last `offers_with_room` call: (config, lexemes, days).
        self.room_query: tuple[str, list[str], list[date] | None] | None = None
        #: The (config, goal) of each `goal_tokens` call.
        self.token_calls: list[tuple[str, str]] = []

    # --- the people list ------------------------------------------------------------------------------
    async def people(self, edition_id: str, where: PeopleFilter, after: Cursor | None, limit: int) -> list[Person]:
        out = []
        for s in sorted(self.signup_rows.values(), key=lambda s: (s.signed_up_at, s.id)):
            p = self.placement_rows.get(s.id)
            text = (where.text or "").lower()
            if (s.edition_id != edition_id or (where.status and s.status != where.status)
                    or (where.org and s.org != where.org)
                    or (where.offer and where.offer not in s.choices
                        and not (p and where.offer in (p.offer_id, p.seat_offer_id)))
                    or (text and text not in s.name.lower() and text not in s.email.lower())
                    or (after and (s.signed_up_at, s.id) <= after)):
                continue
            out.append(Person(s, p))
        return out[:limit]

    async def history(self, signup_id: str) -> list[HistoryEntry]:
        return [entry for sid, _, entry in self.history_rows if sid == signup_id]

    async def add_history(self, signup_id: str, edition_id: str, entry: HistoryEntry) -> None:
        self.history_rows.append((signup_id, edition_id, entry))

    async def update_signup(self, s: Signup) -> None:
        old = self.signup_rows[s.id]
        self.signup_rows[s.id] = old.__class__(**{**vars(old), "choices": s.choices, "available": s.available,
                                                  "max_visits": s.max_visits, "learning_goal": s.learning_goal})

    async def visitors(self, offer_id: str) -> list[Visitor]:
        found = [self.signup_rows[p.signup_id] for p in self.placement_rows.values()
                 if p.offer_id == offer_id and p.outcome == "assigned" and self.signup_rows[p.signup_id].status == "submitted"]
        return [Visitor(s.id, s.name, s.org, s.learning_goal, s.language) for s in sorted(found, key=lambda s: (s.name, s.id))]

    # --- bulk import ----------------------------------------------------------------------------------
    async def active_signups_by_email(self, edition_id: str, emails: Sequence[str]) -> dict[str, Signup]:
        return {s.email.lower(): s for s in self.signup_rows.values()
                if s.edition_id == edition_id and s.status == "submitted" and s.erased_at is None
                and s.email.lower() in emails}

    async def signup_ids_taken(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.signup_rows}

    async def insert_offers(self, offers: Sequence[Offer]) -> None:
        for o in offers:
            assert o.id not in self.offer_rows, f"primary key: offer {o.id} exists"
            self.offer_rows[o.id] = o
        self.copies.append(("offers", len(offers)))

    async def insert_signups(self, signups: Sequence[Signup]) -> None:
        for s in signups:
            assert await self.insert_signup(s), f"unique: sign-up {s.id} ({s.email})"
        self.copies.append(("signups", len(signups)))

    # --- exports --------------------------------------------------------------------------------------
    @staticmethod
    def export_columns(kind: ExportKind) -> tuple[str, ...]:
        return EXPORTS[kind][0]

    async def export_rows(self, kind: ExportKind, edition_id: str) -> AsyncIterator[tuple[Any, ...]]:
        try:
            for row in self.export_data.get(kind, []):
                yield row
        finally:
            self.export_closed = True

    # --- recommendations ------------------------------------------------------------------------------
    async def goal_tokens(self, config: str, goal: str) -> list[tuple[str, str]]:
        self.token_calls.append((config, goal))
        return list(self.tokens.get(goal, []))

    async def offers_with_room(
        self, edition_id: str, config: str, lexemes: Sequence[str], days: Sequence[date] | None
    ) -> list[tuple[Offer, int, float, list[str]]]:
        self.room_query = (config, list(lexemes), list(days) if days else None)
        taken: dict[str, int] = {}
        for p in self.placement_rows.values():
            seat = p.offer_id if p.outcome == "assigned" else p.seat_offer_id if p.outcome == "offered" else None
            if seat:
                taken[seat] = taken.get(seat, 0) + 1
        out = []
        for o in self.offer_rows.values():
            room = o.capacity - taken.get(o.id, 0)
            if o.edition_id != edition_id or o.status != "published" or room <= 0 or (days and o.date not in days):
                continue
            rank, held = self.text_ranks.get(o.id, (0.0, []))
            out.append((o, room, rank if lexemes else 0.0, [x for x in held if x in lexemes]))
        return out


def placement(signup_id: str, outcome: str, at: Any, **fields: Any) -> Placement:
    return Placement(signup_id=signup_id, outcome=outcome, updated_at=at, **fields)  # type: ignore[arg-type]
