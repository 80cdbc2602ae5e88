"""Words the templates share, per language (nl, de, en): dates, offer formats, match reasons."""

from __future__ import annotations

from datetime import date, datetime

_WEEKDAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
           "oktober", "november", "december"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}
_FORMATS = {
    "nl": {"visit": "bedrijfsbezoek", "workshop": "workshop", "webinar": "webinar", "digital_tour": "digitale rondleiding"},
    "de": {"visit": "Betriebsbesuch", "workshop": "Workshop", "webinar": "Webinar", "digital_tour": "digitale Führung"},
    "en": {"visit": "on-site visit", "workshop": "workshop", "webinar": "webinar", "digital_tour": "digital tour"},
}
#: Why nobody was placed; keyed by MatchUnmatched.reason_code. "" is the text for any other code.
_UNMATCHED_REASONS = {
    "nl": {
        "all_full": "Alle plekken bij de organisaties die je koos, waren al bezet.",
        "own_org": "De plekken die je koos, worden aangeboden door je eigen organisatie, en daar kun je niet op bezoek.",
        "unavailable": "Op de dagen waarop je kon, was er bij je keuzes geen plek meer vrij.",
        "org_cap": "Het maximum aantal deelnemers uit jouw organisatie was bij je keuzes al bereikt.",
        "seat_offers_ended": "Je hebt de plek die we je aanboden afgeslagen of niet op tijd aangenomen, en bij je andere keuzes is geen plek meer mogelijk.",
        "": "Het is helaas niet gelukt om een passende plek voor je te vinden.",
    },
    "de": {
        "all_full": "Alle Plätze bei den von Ihnen gewählten Organisationen waren bereits vergeben.",
        "own_org": "Die gewählten Angebote stammen von Ihrer eigenen Organisation, die Sie nicht besuchen können.",
        "unavailable": "An den Tagen, an denen Sie Zeit hatten, war bei Ihren Wunschangeboten kein Platz mehr frei.",
        "org_cap": "Bei Ihren Wunschangeboten war die Höchstzahl an Teilnehmenden aus Ihrer Organisation schon erreicht.",
        "seat_offers_ended": "Sie haben den angebotenen Platz abgelehnt oder nicht rechtzeitig angenommen, und bei Ihren anderen Wünschen ist kein Platz mehr möglich.",
        "": "Leider konnten wir keinen passenden Platz für Sie finden.",
    },
    "en": {
        "all_full": "All places with the organisations you chose had already been taken.",
        "own_org": "The offers you chose are hosted by your own organisation, which you cannot visit.",
        "unavailable": "On the days you were available, your chosen offers had no places left.",
        "org_cap": "Your chosen offers had already reached their maximum number of participants from your organisation.",
        "seat_offers_ended": "You declined the place we offered you, or did not accept it in time, and none of your other choices has a place for you.",
        "": "Unfortunately we could not find a suitable place for you.",
    },
}


def long_date(day: date, language: str) -> str:
    """'dinsdag 15 september 2026', 'Dienstag, 15. September 2026', 'Tuesday 15 September 2026'."""
    weekday, month = _WEEKDAYS[language][day.weekday()], _MONTHS[language][day.month - 1]
    if language == "de":
        return f"{weekday}, {day.day}. {month} {day.year}"
    return f"{weekday} {day.day} {month} {day.year}"


def long_datetime(moment: datetime, language: str) -> str:
    """'maandag 31 mei 2027 om 23:59', 'Montag, 31. Mai 2027, 23:59 Uhr', 'Monday 31 May 2027 at 23:59'."""
    day, clock = long_date(moment.date(), language), moment.strftime("%H:%M")
    return {"nl": f"{day} om {clock}", "de": f"{day}, {clock} Uhr", "en": f"{day} at {clock}"}[language]


def offer_format(fmt: str, language: str) -> str:
    return _FORMATS[language].get(fmt, fmt)


def unmatched_reason(code: str, language: str) -> str:
    reasons = _UNMATCHED_REASONS[language]
    return reasons.get(code, reasons[""])
