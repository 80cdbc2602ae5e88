"""The dashboard page in Dutch, German and English: gettext catalogs, Babel number and date formats,
escaping, no external assets."""

import re
from datetime import UTC, date, datetime

import pytest

from estafette.runtime.i18n import LANGUAGES
from services.reporting.dashboard import Dashboard, format_date, format_number, format_share
from services.reporting.domain import EditionReport, Overview, RelayLeg
from tests.unit.reporting.builders import day, figures, template

TWENTE = figures(
    "wvdu-2027-twente", "twente", name="Week van de Uitwisseling Twente", starts_on=date(2027, 6, 7),
    ends_on=date(2027, 6, 11), offers=12, seats=1234, offers_cancelled=1, signups=2345, withdrawn=3,
    organisations=41, assigned=900, first_choice=600, waitlisted=17, unmatched=5, awaiting_rematch=2,
    seat_offers_open=1, emails_sent=1500, emails_failed=4, feedback_count=6, rating_total=26,
)
EVIL = figures(
    **{**TWENTE.__dict__, "edition_id": "wvdu-2027-x", "region": "achterhoek", "status": "closed",
       "name": "<script>alert('x')</script> & Co"},
)
DAYS = [day(date(2027, 5, 3), signups=1100), day(date(2027, 6, 8), offers=12, seats=1234, assigned=900)]
RELAY = [RelayLeg("leg-1", "twente", "wvdu-2027-twente", date(2027, 6, 7), "achterhoek", None)]

#: Labels that exist in one language only: each page must show its own and none of the others.
OWN_WORDS = {
    "nl": ["Landelijk", "Aanmeldingen", "Geplaatst", "Wachtlijst", "E-mails verstuurd", "Etappes van de estafette"],
    "de": ["Landesweit", "Anmeldungen", "Zugeteilt", "Warteliste", "E-Mails versendet", "Etappen der Staffel"],
    "en": ["National", "Sign-ups", "Assigned", "Waitlisted", "E-mails sent", "Relay legs"],
}


@pytest.fixture(scope="module")
def pages() -> Dashboard:
    return Dashboard()


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_overview_labels_are_in_the_requested_language(pages, lang):
    html = pages.overview(lang, Overview([TWENTE, EVIL], RELAY))
    assert f'<html lang="{lang}">' in html
    text = visible_text(html)
    for word in OWN_WORDS[lang]:
        assert word in text
    for other in set(LANGUAGES) - {lang}:
        for word in OWN_WORDS[other]:
            assert word not in text, f"{other} label {word!r} on the {lang} page"


@pytest.mark.parametrize(
    ("lang", "seats", "national_signups", "share", "period", "closed"),
    [
        ("nl", "1.234", "4.690", "66,7%", "7 jun 2027 – 11 jun 2027", "gesloten"),
        ("de", "1.234", "4.690", "66,7\u00a0%", "07.06.2027 – 11.06.2027", "geschlossen"),
        ("en", "1,234", "4,690", "66.7%", "Jun 7, 2027 – Jun 11, 2027", "closed"),
    ],
)
def test_overview_numbers_dates_and_statuses_are_formatted_for_the_language(pages, lang, seats, national_signups, share, period, closed):
    html = pages.overview(lang, Overview([TWENTE, EVIL], RELAY))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert seats in cells and share in cells and period in cells and closed in cells
    assert re.search(rf"<dd>{re.escape(national_signups)}</dd>", html)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_names_from_events_are_escaped(pages, lang):
    html = pages.overview(lang, Overview([EVIL], []))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in html
    page = pages.edition(lang, EditionReport(EVIL, DAYS))
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_edition_page_shows_all_figures_and_the_days(pages, lang):
    html = pages.edition(lang, EditionReport(TWENTE, DAYS))
    text = visible_text(html)
    for label in ("Cancelled offers", "Withdrawn", "Organisations", "Awaiting re-match", "Open seat offers",
                  "E-mails failed", "Average rating", "By day"):
        assert pages.catalogs.gettext(lang, label) in text
    assert format_date(date(2027, 5, 3), lang) in text and format_number(1100, lang) in text
    assert re.search(rf"<dd>{re.escape(format_number(4.33, lang, 1))}</dd>", html)
    assert 'href="?lang=en&amp;edition=wvdu-2027-twente"' in html


def test_the_pages_are_translated_not_just_the_english_texts(pages):
    assert pages.catalogs.gettext("nl", "Awaiting re-match") == "Wacht op herplaatsing"
    assert pages.catalogs.gettext("de", "Open seat offers") == "Offene Platzangebote"
    assert pages.language_names == {"nl": "Nederlands", "de": "Deutsch", "en": "English"}


def test_each_region_gets_one_table_with_its_editions_in_order(pages):
    later = figures(**{**TWENTE.__dict__, "edition_id": "wvdu-2028-twente", "name": "Twente 2028"})
    html = pages.overview("en", Overview([TWENTE, EVIL, later], []))
    assert re.findall(r"<h2>Region: (\w+)</h2>", html) == ["achterhoek", "twente"]
    assert html.index("Week van de Uitwisseling Twente<") < html.index("Twente 2028")


def test_an_empty_overview_says_so(pages):
    assert "Noch keine Ausgaben." in pages.overview("de", Overview([], []))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pages_load_nothing_from_elsewhere_and_script_only_the_local_live_updates(pages, lang):
    for html in (pages.overview(lang, Overview([TWENTE], RELAY)), pages.edition(lang, EditionReport(TWENTE, DAYS))):
        assert re.findall(r"<script[^>]*>", html) == ['<script src="dashboard/live.js" defer>']
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
        assert "<form" not in html  # everything is in the HTML: the script only refreshes it


@pytest.mark.parametrize(
    ("value", "lang", "decimals", "expected"),
    [
        (1234567, "nl", 0, "1.234.567"),
        (1234567, "de", 0, "1.234.567"),
        (1234567, "en", 0, "1,234,567"),
        (1234.5, "nl", 1, "1.234,5"),
        (1234.5, "en", 1, "1,234.5"),
        (4.26, "de", 1, "4,3"),
        (4.0, "en", 1, "4.0"),
        (0, "de", 0, "0"),
        (None, "en", 0, "–"),
    ],
)
def test_number_format(value, lang, decimals, expected):
    assert format_number(value, lang, decimals) == expected


def test_share_format():
    assert format_share(0.5, "nl") == "50,0%"
    assert format_share(0.667, "de") == "66,7\u00a0%"
    assert format_share(1.0, "en") == "100.0%"
    assert format_share(None, "de") == "–"


def test_date_format():
    assert [format_date(date(2027, 6, 8), lang) for lang in LANGUAGES] == ["8 jun 2027", "08.06.2027", "Jun 8, 2027"]
    assert format_date(None, "nl") == "–"


# --- the journey (issue 9) ----------------------------------------------------------------------
CANCELLED = figures(**{**TWENTE.__dict__, "status": "cancelled", "cancellation_reason": "Corona <2020>",
                       "cancelled_at": datetime(2020, 3, 13, 12, tzinfo=UTC), "pending_approval": 7, "approved": 11,
                       "refused": 2, "feedback_shareable": 1})
EMAILS = [template("edition_cancelled", sent=900, failed=3), template("assigned", sent=40),
          template("some_new_kind", sent=1)]


@pytest.mark.parametrize(("lang", "label", "reason_label", "kind"), [
    ("nl", "geannuleerd", "Geannuleerd", "Editie geannuleerd"),
    ("de", "abgesagt", "Abgesagt", "Ausgabe abgesagt"),
    ("en", "cancelled", "Cancelled", "Edition cancelled"),
])
def test_a_cancelled_edition_shows_its_status_reason_and_figures(pages, lang, label, reason_label, kind):
    html = pages.edition(lang, EditionReport(CANCELLED, DAYS, EMAILS))
    text = visible_text(html)
    assert f"{pages.catalogs.gettext(lang, 'Status')}: {label}" in text
    assert reason_label in text and "Corona &lt;2020&gt;" in html and "<2020>" not in html
    assert format_date(date(2020, 3, 13), lang) in text
    assert re.search(rf"<dd>{re.escape(format_number(2345, lang))}</dd>", html)  # the sign-ups still count
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert kind in cells and format_number(900, lang) in cells and "some_new_kind" in cells
    overview = pages.overview(lang, Overview([CANCELLED], []))
    assert label in re.findall(r"<td[^>]*>(.*?)</td>", overview)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_approval_and_feedback_figures_are_shown_when_the_edition_asks_for_approval(pages, lang):
    html = pages.edition(lang, EditionReport(CANCELLED, DAYS))
    text = visible_text(html)
    for label, value in (("Awaiting approval", "7"), ("Approved", "11"), ("Refused by the employer", "&lt; 5"),
                         ("Feedback that may be shared", "&lt; 5")):  # small counts suppressed (issue 10)
        assert pages.catalogs.gettext(lang, label) in text
        assert f"<dt>{pages.catalogs.gettext(lang, label)}</dt><dd>{value}</dd>" in html
    without = visible_text(pages.edition(lang, EditionReport(TWENTE, DAYS)))
    assert pages.catalogs.gettext(lang, "Awaiting approval") not in without  # an edition without approval
    assert pages.catalogs.gettext(lang, "E-mails by kind") not in without  # no e-mails per kind known
