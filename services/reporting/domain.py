"""Reporting rules (pure: no I/O): which outcome is the latest, derived ratios, roll-ups, languages."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, Literal, get_args

Language = Literal["nl", "de", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "nl"
MatchStateName = Literal["assigned", "offered", "waitlisted", "unmatched"]
#: The figures that /reports/regions adds up per region and nationally (besides `editions`).
REGION_FIGURES = ("offers", "signups", "assigned", "emails_sent")


@dataclass(frozen=True, order=True)
class Version:
    """Orders the outcomes of one entity: by occurred_at; the event id breaks ties, so that the
    result does not depend on the order in which the events arrive."""

    occurred_at: datetime
    event_id: uuid.UUID


def supersedes(new: Version, stored: Version | None) -> bool:
    """True when an outcome at `new` replaces the stored one (a newer match or notification outcome)."""
    return stored is None or new > stored


@dataclass(frozen=True)
class MatchState:
    signup_id: str
    edition: str
    state: MatchStateName
    version: Version
    offer_id: str | None = None
    offer_date: date | None = None
    rank: int | None = None


@dataclass(frozen=True)
class NotificationOutcome:
    notification_id: uuid.UUID
    edition: str
    status: Literal["sent", "failed"]
    version: Version


def share(part: int, whole: int) -> float | None:
    """part/whole rounded to 3 decimals; None when there is nothing to divide."""
    return round(part / whole, 3) if whole else None


def average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


@dataclass(frozen=True)
class EditionFigures:
    """One edition's figures, as aggregated by the repository."""

    edition: str
    region: str
    name: str | None
    status: str
    starts_on: date | None
    ends_on: date | None
    offers: int
    seats: int
    offers_cancelled: int
    signups: int
    withdrawn: int
    organisations: int
    assigned: int
    first_choice: int
    waitlisted: int
    unmatched: int
    awaiting_rematch: int
    seat_offers_open: int
    emails_sent: int
    emails_failed: int
    feedback_count: int
    rating_total: int

    @property
    def first_choice_share(self) -> float | None:
        """Of the participants with an assignment, the share that got their first choice."""
        return share(self.first_choice, self.assigned)

    @property
    def average_rating(self) -> float | None:
        return average(self.rating_total, self.feedback_count)

    def report(self) -> dict[str, Any]:
        """The JSON shape of /reports/editions/{edition} (without by_day)."""
        body = {f.name: getattr(self, f.name) for f in fields(self)}
        del body["first_choice"], body["feedback_count"], body["rating_total"]
        return {
            **body,
            "first_choice_share": self.first_choice_share,
            "feedback": {"count": self.feedback_count, "average_rating": self.average_rating},
        }


@dataclass(frozen=True)
class DayFigures:
    """One calendar day: sign-ups made that day; offers, seats and assignments for visits on that day."""

    date: date
    signups: int
    offers: int
    seats: int
    assigned: int


@dataclass(frozen=True)
class RegionTotals:
    region: str
    editions: int
    offers: int
    signups: int
    assigned: int
    emails_sent: int


def region_totals(editions: Iterable[EditionFigures]) -> list[RegionTotals]:
    """Per region (sorted by name): the number of editions and the sums of REGION_FIGURES."""
    sums: dict[str, dict[str, int]] = {}
    for e in editions:
        totals = sums.setdefault(e.region, dict.fromkeys(("editions", *REGION_FIGURES), 0))
        totals["editions"] += 1
        for name in REGION_FIGURES:
            totals[name] += getattr(e, name)
    return [RegionTotals(region, **totals) for region, totals in sorted(sums.items())]


def national_totals(regions: Iterable[RegionTotals]) -> dict[str, int]:
    regions = list(regions)
    totals = {"regions": len(regions), "editions": sum(r.editions for r in regions)}
    return totals | {name: sum(getattr(r, name) for r in regions) for name in REGION_FIGURES}


def negotiate_language(requested: str | None, accept_language: str | None) -> Language:
    """The `lang` parameter if it is supported, else the best supported Accept-Language, else nl."""
    if requested and requested.lower() in LANGUAGES:
        return requested.lower()  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE  # type: ignore[return-value]
