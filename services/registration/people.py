"""Organisers' tools (issue 11): the types and rules of the people list, a sign-up's history, late
admissions, bulk imports and recommendations. Pure like `domain` (no I/O, no framework): the service
passes the state in and executes the decisions.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from estafette.runtime.errors import DomainError, RuleViolation
from services.registration import domain
from services.registration.domain import Edition, Offer, Organisation, Placement, Signup

#: The namespace of the ids an import derives from a row's natural key.
IMPORT_NAMESPACE = uuid.UUID("0f8d2b64-6a8e-4d53-9a1c-3b7e5e2f4c11")
#: The people list's largest page.
MAX_PAGE = 200
#: What an import's rows are.
ImportKind = Literal["offers", "signups"]
#: What an export holds.
ExportKind = Literal["signups", "assignments", "visitors", "feedback"]
#: The theme bonus of a recommendation, per theme asked for that the offer has (a text match of a few
#: words ranks ~0.1-0.5 with `ts_rank_cd`: a chosen theme counts more than a word).
THEME_BONUS = 0.5
#: The text search configurations of the languages (PostgreSQL's own stemmers and stop words).
TEXT_SEARCH = {"nl": "dutch", "de": "german", "en": "english"}


# --- the people list and a sign-up's history --------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """A sign-up as the organisers' list shows it, with what matching last told the participant."""

    signup: Signup
    placement: Placement | None = None


@dataclass(frozen=True)
class PeopleFilter:
    status: str | None = None
    org: str | None = None
    offer: str | None = None
    #: Text searched in the name and the e-mail address (any case, anywhere in them).
    text: str | None = None


#: A position in the people list: (signed_up_at, signup id) of the last sign-up of the previous page.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class PeoplePage:
    people: list[Person]
    #: Where the next page starts (None: this was the last page).
    next: Cursor | None


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a sign-up's history: an event of the sign-up (`kind` = its type) or an organiser's
    audited act (`LateAdmission`; `actor` = who, `reason` = why)."""

    kind: str
    at: datetime
    actor: str | None = None
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


#: The history kind of an organiser's admission of a sign-up after the deadline.
LATE_ADMISSION = "LateAdmission"
#: The history kind of an organiser's edit on the participant's behalf (details: the fields changed).
CHANGED_ON_BEHALF = "ChangedOnBehalf"


@dataclass(frozen=True)
class PersonDetails:
    details: domain.SignupDetails
    history: list[HistoryEntry]


@dataclass(frozen=True)
class Visitor:
    """A participant assigned to an offer, as the host's visitor list shows them."""

    signup_id: str
    name: str
    org: str
    learning_goal: str
    language: str


def page_of(people: list[Person], limit: int) -> PeoplePage:
    """A page of at most `limit` people from `limit + 1` fetched: the extra one says there is more."""
    shown = people[:limit]
    more = len(people) > limit
    return PeoplePage(shown, (shown[-1].signup.signed_up_at, shown[-1].signup.id) if more and shown else None)


def check_late_admission(
    edition: Edition, signup: Signup, offers: Mapping[str, Offer], organisation: Organisation | None, reason: str
) -> None:
    """An organiser admits a sign-up after the deadline (an explicit override, with a reason): every rule
    of a sign-up holds except the deadline (the edition must still be open)."""
    if not reason.strip():
        raise RuleViolation("reason_required", "admitting a sign-up after the deadline needs a reason", "reason")
    domain.check_signup(edition, replace(signup, signed_up_at=min(signup.signed_up_at, edition.signup_deadline)),
                        offers, organisation)


def check_available(edition: Edition, available: Sequence[date] | None) -> None:
    """Available dates are days of the edition."""
    for i, day in enumerate(available or []):
        if not edition.starts_on <= day <= edition.ends_on:
            raise RuleViolation("date_outside_edition", f"available date {day} is outside edition {edition.id}",
                                f"available.{i}")


# --- bulk import --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowError:
    """A row's problem: the spreadsheet row (the header is row 1), the column, a code and its English
    message (the API translates the code into the organiser's language)."""

    row: int
    column: str | None
    code: str
    message: str


@dataclass(frozen=True)
class RowOutcome:
    row: int
    id: str
    action: Literal["created", "unchanged"]


@dataclass(frozen=True)
class ImportResult:
    kind: ImportKind
    dry_run: bool
    committed: bool
    rows: list[RowOutcome]
    errors: list[RowError]

    @property
    def created(self) -> int:
        return sum(1 for r in self.rows if r.action == "created")

    @property
    def unchanged(self) -> int:
        return sum(1 for r in self.rows if r.action == "unchanged")


def derived_offer_id(edition_id: str, host_org: str, title: str, day: date) -> str:
    """The id of an imported offer without an id column: from its natural key (host, title, date)."""
    key = f"offer\x1f{edition_id}\x1f{host_org}\x1f{' '.join(title.split()).casefold()}\x1f{day.isoformat()}"
    return f"o-{uuid.uuid5(IMPORT_NAMESPACE, key).hex[:16]}"


def derived_signup_id(edition_id: str, email: str) -> str:
    """The id of an imported sign-up: from its natural key, the e-mail address (any case) in the edition."""
    key = f"signup\x1f{edition_id}\x1f{email.strip().lower()}"
    return f"s-{uuid.uuid5(IMPORT_NAMESPACE, key).hex[:16]}"


#: The fields an import compares with an existing offer or sign-up of the same key.
OFFER_FIELDS = (
    "host_org", "title", "date", "capacity", "max_per_org", "format", "location", "themes", "attendance",
    "part_of_day", "starts_at", "ends_at", "join_url", "what_to_bring", "host_contact",
)
SIGNUP_FIELDS = ("org", "name", "language", "choices", "available", "max_visits", "learning_goal")


def differing(existing: object, new: object, fields: Sequence[str]) -> list[str]:
    """The fields whose values differ (empty: the same thing)."""
    return [f for f in fields if getattr(existing, f) != getattr(new, f)]


def column_of(error: DomainError, columns: Mapping[str, str] | None = None) -> str | None:
    """The spreadsheet column a domain error's field names (`choices.2` → `choices`)."""
    if error.field is None:
        return None
    head = error.field.split(".")[0]
    return (columns or {}).get(head, head)


# --- recommendations ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    """An offer with room, its score and why: the themes asked for that it has, and the words of the
    learning goal found in it (as the participant wrote them)."""

    offer: Offer
    room: int
    score: float
    themes: list[str]
    words: list[str]

    @property
    def reason(self) -> str:
        parts = []
        if self.themes:
            parts.append(f"theme: {', '.join(self.themes)}")
        if self.words:
            parts.append(f"words: {', '.join(self.words)}")
        return "; ".join(parts)


def goal_words(tokens: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each lexeme of the learning goal (from PostgreSQL's parser and stemmer: (word, lexeme) pairs) with
    the first word that gave it."""
    out: dict[str, str] = {}
    for word, lexeme in tokens:
        out.setdefault(lexeme, word)
    return out


def recommendation(
    offer: Offer, room: int, text_rank: float, lexemes: Sequence[str], words: Mapping[str, str], themes: Sequence[str]
) -> Recommendation:
    """Score an offer: the text rank plus THEME_BONUS per theme asked for that it has."""
    matched_themes = [t for t in themes if t in offer.themes]
    matched_words = list(dict.fromkeys(words[lexeme] for lexeme in words if lexeme in set(lexemes)))
    return Recommendation(offer, room, round(text_rank + THEME_BONUS * len(matched_themes), 6), matched_themes,
                          matched_words)


def ranked(recommendations: Sequence[Recommendation]) -> list[Recommendation]:
    """Best first: score, then the most room, then date and id."""
    return sorted(recommendations, key=lambda r: (-r.score, -r.room, r.offer.date, r.offer.id))
