"""The dashboard page: Jinja2 templates (autoescaped) translated by the gettext catalogs in `locale/`
(runtime.i18n.Catalogs); numbers, shares and dates formatted by Babel for the page's language."""

from __future__ import annotations

import copy
import functools
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.numbers import NumberPattern, format_decimal, format_percent
from jinja2 import FileSystemLoader

from estafette.runtime.i18n import LANGUAGES, Catalogs
from services.reporting.charts import bar_chart
from services.reporting.domain import EditionReport, Overview
from services.reporting.public import DayCell, Figure, PublicFigures, public_figures
from services.reporting.relay import RelayView

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
MISSING = "–"
#: A count withheld (complementary suppression) so that a small count cannot be derived from a total.
WITHHELD = "×"


def N_(message: str) -> str:
    """Marks a text for extraction (`pybabel extract`); it is translated where it is shown."""
    return message


LEG_STATES: dict[str, str] = {"done": N_("handed over"), "holding": N_("holds the baton"), "ahead": N_("ahead")}
STATUS_TEXTS: dict[str, str] = {
    "unknown": N_("unknown"), "open": N_("open"), "closed": N_("closed"), "cancelled": N_("cancelled"),
}
#: The e-mail templates (kinds of message) by name; a template not listed here is shown by its name.
TEMPLATE_TEXTS: dict[str, str] = {
    "signup_confirmed": N_("Sign-up confirmation"),
    "assigned": N_("Match result: placed"),
    "match_assigned": N_("Match result: placed"),
    "waitlisted": N_("Match result: waiting list"),
    "match_waitlisted": N_("Match result: waiting list"),
    "unmatched": N_("Match result: not placed"),
    "match_unmatched": N_("Match result: not placed"),
    "seat_offered": N_("Seat offer"),
    "reminder": N_("Reminder"),
    "offer_changed": N_("Offer changed"),
    "offer_cancelled": N_("Offer cancelled"),
    "edition_cancelled": N_("Edition cancelled"),
    "feedback_request": N_("Feedback request"),
    "approval_refused": N_("Sign-up refused by the employer"),
    "approval_requested": N_("Approval request to the employer"),
    "visitor_list": N_("Visitor list (host)"),
    "visitor_withdrew": N_("Visitor withdrew (host)"),
    "host_edition_cancelled": N_("Edition cancelled (host)"),
    "generic": N_("Other message"),
}


def format_number(value: float | None, lang: str, decimals: int = 0) -> str:
    """With the language's separators: 1.234,5 (nl, de), 1,234.5 (en); exactly `decimals` decimals."""
    if value is None:
        return MISSING
    return format_decimal(value, format="#,##0" + ("." + "0" * decimals if decimals else ""), locale=lang)


@functools.cache
def _percent_pattern(lang: str) -> NumberPattern:
    """The language's percent pattern (66,7 % in German, with a no-break space) with one decimal."""
    pattern = copy.copy(Locale.parse(lang).percent_formats[None])
    pattern.frac_prec = (1, 1)
    return pattern


def format_share(share: float | None, lang: str) -> str:
    """A 0..1 share as a percentage with one decimal: 66,7% (nl), 66,7 % (de), 66.7% (en)."""
    return MISSING if share is None else format_percent(share, format=_percent_pattern(lang), locale=lang)


def format_date(day: date | None, lang: str) -> str:
    """The language's medium date: 7 jun 2027 (nl), 07.06.2027 (de), Jun 7, 2027 (en)."""
    return MISSING if day is None else babel_format_date(day, "medium", locale=lang)


class Dashboard:
    """Renders the overview and edition pages in each language of the catalogs."""

    def __init__(self, locale_dir: Path = LOCALE_DIR) -> None:
        self.catalogs = Catalogs(
            FileSystemLoader(HERE / "templates"), locale_dir, autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        #: Each language by its own name (Nederlands, Deutsch, English), for the language links.
        self.language_names = {code: Locale.parse(code).get_display_name(code) for code in LANGUAGES}

    def overview(self, lang: str, overview: Overview, public: PublicFigures | None = None, threshold: int = 5) -> str:
        """National totals, a table of editions per region, placements per region, and the relay legs;
        every count of people as `public` shows it (suppressed below the threshold)."""
        public = public or public_figures(overview.editions, [], {}, threshold)
        by_region = sorted(overview.editions, key=lambda e: e.region)  # stable: keeps the order within a region
        regions = [(region, list(rows)) for region, rows in groupby(by_region, key=lambda e: e.region)]
        return self._render(lang, "overview.html.j2", None, public, national=overview.national, regions=regions,
                            relay_legs=overview.relay_legs, live=True,
                            placements=[(r, public.region("assigned", r)) for r in public.regions()])

    def edition(self, lang: str, report: EditionReport, public: PublicFigures | None = None, threshold: int = 5) -> str:
        """One edition's figures, its e-mails per template and its figures per day (sign-ups per day as a chart)."""
        if public is None:
            f = report.figures
            cells = [DayCell(f.region, f.edition_id, d.date, signups=d.signups, assigned=d.assigned) for d in report.days]
            public = public_figures([f], cells, {f.edition_id: report.emails}, threshold)
        edition_id = report.figures.edition_id
        signups_per_day = [(format_date(d.date, lang), public.day("signups", edition_id, d.date))
                           for d in report.days if public.day("signups", edition_id, d.date).exact_value]
        return self._render(lang, "edition.html.j2", edition_id, public, e=report.figures,
                            days=report.days, emails=report.emails, live=True, signups_per_day=signups_per_day)

    def relay(self, lang: str, view: RelayView) -> str:
        """The public relay page: the holder today, the route as a timeline, the days and the knowledge items."""
        return self._render(lang, "relay.html.j2", None, None, view=view, live=False,
                            leg_state=lambda state: self.catalogs.gettext(lang, LEG_STATES[state]))

    def _render(self, lang: str, template: str, edition_id: str | None, public: PublicFigures | None,
                **values: Any) -> str:
        threshold = public.threshold if public else getattr(values.get("view"), "threshold", 5)

        def shown(figure: Figure, decimals: int = 0) -> str:
            """A count as published: the number, "< 5" below the threshold, "×" withheld to protect one."""
            if figure.shown == "small":
                return f"< {threshold}"
            if figure.shown == "withheld":
                return WITHHELD
            return format_number(figure.value, lang, decimals)

        def chart(title: str, desc: str, bars: list[tuple[str, Figure]], label: str, value_label: str) -> str:
            return bar_chart(title, desc, [(name, figure.value, shown(figure)) for name, figure in bars],
                             label, value_label)

        context = {
            "pub": public,
            "fig": shown,
            "chart": chart,
            "threshold": threshold,
            "lang": lang,
            "languages": self.language_names,
            "edition_param": edition_id,
            "num": lambda value, decimals=0: format_number(value, lang, decimals),
            "pct": lambda share: format_share(share, lang),
            "day": lambda d: format_date(d, lang),
            "status": lambda status: self.catalogs.gettext(lang, STATUS_TEXTS[status]),
            "template_name": lambda name: (
                self.catalogs.gettext(lang, TEMPLATE_TEXTS[name]) if name in TEMPLATE_TEXTS else name),
        }
        return self.catalogs.env(lang).get_template(template).render(**context, **values)
