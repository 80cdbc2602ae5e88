"""The dashboard page: Jinja2 templates (autoescaped), labels and number formats per language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.reporting import domain
from services.reporting.domain import DayFigures, EditionFigures, Language

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

LABELS: dict[Language, dict[str, str]] = {
    "nl": {
        "title": "Cijfers",
        "intro": "Aanbod, aanmeldingen en plaatsingen per regio en editie.",
        "language": "Taal",
        "national": "Landelijk",
        "regions": "Regio's",
        "region": "Regio",
        "editions": "Edities",
        "edition": "Editie",
        "all_editions": "Alle edities",
        "no_editions": "Nog geen edities.",
        "status": "Status",
        "status_open": "open",
        "status_closed": "gesloten",
        "status_unknown": "onbekend",
        "period": "Periode",
        "offers": "Aanbod",
        "seats": "Plaatsen",
        "offers_cancelled": "Geannuleerd aanbod",
        "signups": "Aanmeldingen",
        "withdrawn": "Afgemeld",
        "organisations": "Organisaties",
        "assigned": "Geplaatst",
        "waitlisted": "Wachtlijst",
        "unmatched": "Niet geplaatst",
        "awaiting_rematch": "Wacht op herplaatsing",
        "seat_offers_open": "Open plekaanbiedingen",
        "first_choice_share": "Eerste keuze",
        "emails_sent": "E-mails verstuurd",
        "emails_failed": "E-mails mislukt",
        "feedback": "Feedback",
        "average_rating": "Gemiddelde beoordeling",
        "by_day": "Per dag",
        "by_day_note": "Aanmeldingen per dag van aanmelden; aanbod, plaatsen en plaatsingen per dag van het bezoek.",
        "date": "Datum",
        "relay": "Etappes van de estafette",
        "leg": "Etappe",
        "starts_on": "Start",
        "handed_over_to": "Overgedragen aan",
    },
    "de": {
        "title": "Kennzahlen",
        "intro": "Angebote, Anmeldungen und Zuteilungen nach Region und Ausgabe.",
        "language": "Sprache",
        "national": "Landesweit",
        "regions": "Regionen",
        "region": "Region",
        "editions": "Ausgaben",
        "edition": "Ausgabe",
        "all_editions": "Alle Ausgaben",
        "no_editions": "Noch keine Ausgaben.",
        "status": "Status",
        "status_open": "offen",
        "status_closed": "geschlossen",
        "status_unknown": "unbekannt",
        "period": "Zeitraum",
        "offers": "Angebote",
        "seats": "Plätze",
        "offers_cancelled": "Abgesagte Angebote",
        "signups": "Anmeldungen",
        "withdrawn": "Zurückgezogen",
        "organisations": "Organisationen",
        "assigned": "Zugeteilt",
        "waitlisted": "Warteliste",
        "unmatched": "Nicht zugeteilt",
        "awaiting_rematch": "Wartet auf Neuzuteilung",
        "seat_offers_open": "Offene Platzangebote",
        "first_choice_share": "Erstwunsch",
        "emails_sent": "E-Mails versendet",
        "emails_failed": "E-Mails fehlgeschlagen",
        "feedback": "Rückmeldungen",
        "average_rating": "Durchschnittliche Bewertung",
        "by_day": "Pro Tag",
        "by_day_note": "Anmeldungen nach Tag der Anmeldung; Angebote, Plätze und Zuteilungen nach Tag des Besuchs.",
        "date": "Datum",
        "relay": "Etappen der Staffel",
        "leg": "Etappe",
        "starts_on": "Beginn",
        "handed_over_to": "Übergeben an",
    },
    "en": {
        "title": "Figures",
        "intro": "Offers, sign-ups and assignments by region and edition.",
        "language": "Language",
        "national": "National",
        "regions": "Regions",
        "region": "Region",
        "editions": "Editions",
        "edition": "Edition",
        "all_editions": "All editions",
        "no_editions": "No editions yet.",
        "status": "Status",
        "status_open": "open",
        "status_closed": "closed",
        "status_unknown": "unknown",
        "period": "Period",
        "offers": "Offers",
        "seats": "Seats",
        "offers_cancelled": "Cancelled offers",
        "signups": "Sign-ups",
        "withdrawn": "Withdrawn",
        "organisations": "Organisations",
        "assigned": "Assigned",
        "waitlisted": "Waitlisted",
        "unmatched": "Unmatched",
        "awaiting_rematch": "Awaiting re-match",
        "seat_offers_open": "Open seat offers",
        "first_choice_share": "First choice",
        "emails_sent": "E-mails sent",
        "emails_failed": "E-mails failed",
        "feedback": "Feedback",
        "average_rating": "Average rating",
        "by_day": "By day",
        "by_day_note": "Sign-ups by the day they were made; offers, seats and assignments by the day of the visit.",
        "date": "Date",
        "relay": "Relay legs",
        "leg": "Leg",
        "starts_on": "Starts",
        "handed_over_to": "Handed over to",
    },
}
LANGUAGE_NAMES: dict[Language, str] = {"nl": "Nederlands", "de": "Deutsch", "en": "English"}
_SEPARATORS: dict[Language, tuple[str, str]] = {"nl": (".", ","), "de": (".", ","), "en": (",", ".")}
_PERCENT_SIGN: dict[Language, str] = {"nl": "%", "de": "\u00a0%", "en": "%"}
_DATE_FORMAT: dict[Language, str] = {"nl": "%d-%m-%Y", "de": "%d.%m.%Y", "en": "%Y-%m-%d"}
MISSING = "–"


def format_number(value: float | None, lang: Language, decimals: int = 0) -> str:
    """Thousands and decimal separators of the language: 1.234,5 (nl, de), 1,234.5 (en)."""
    if value is None:
        return MISSING
    thousands, decimal = _SEPARATORS[lang]
    return f"{value:,.{decimals}f}".translate(str.maketrans({",": thousands, ".": decimal}))


def format_share(share: float | None, lang: Language) -> str:
    """A 0..1 share as a percentage with one decimal: 66,7% (nl), 66,7 % (de), 66.7% (en)."""
    return MISSING if share is None else format_number(share * 100, lang, 1) + _PERCENT_SIGN[lang]


def format_date(day: date | None, lang: Language) -> str:
    return MISSING if day is None else day.strftime(_DATE_FORMAT[lang])


def _context(lang: Language, edition: str | None) -> dict[str, Any]:
    labels = LABELS[lang]
    formatters: dict[str, Callable[..., str]] = {
        "num": lambda value, decimals=0: format_number(value, lang, decimals),
        "pct": lambda share: format_share(share, lang),
        "day": lambda d: format_date(d, lang),
        "status": lambda status: labels[f"status_{status}"],
    }
    return {"lang": lang, "t": labels, "languages": LANGUAGE_NAMES, "edition_param": edition, **formatters}


def render_overview(lang: Language, editions: list[EditionFigures], relay: list[dict[str, Any]]) -> str:
    """National totals, a table of editions per region, and the relay legs."""
    national = domain.national_totals(domain.region_totals(editions))
    by_region = sorted(editions, key=lambda e: e.region)  # stable: keeps the order within a region
    regions = [(region, list(rows)) for region, rows in groupby(by_region, key=lambda e: e.region)]
    return _ENV.get_template("overview.html.j2").render(
        **_context(lang, None), national=national, regions=regions, relay=relay
    )


def render_edition(lang: Language, figures: EditionFigures, days: list[DayFigures]) -> str:
    """One edition's figures and its figures per day."""
    return _ENV.get_template("edition.html.j2").render(**_context(lang, figures.edition), e=figures, days=days)
