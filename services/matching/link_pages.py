"""The pages a participant sees through a seat offer's link, in their language (nl, de, en).

Texts: gettext catalogs `locale/<lang>/LC_MESSAGES/messages.po` (message ids in English; compiled by
`make install`); dates by Babel, moments in the editions' time zone. The layout is the shared one
(estafette/runtime/pages.py): a title, paragraphs, the offer's details and at most one button, which
POSTs to the page's own address. What a page says follows `domain.link_result`; its status too.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

from babel.dates import format_date, format_time

from estafette.runtime.i18n import load_translations, negotiate
from estafette.runtime.pages import Page
from services.matching.domain import Answer, LinkResult
from services.matching.service import SeatOfferLink

LOCALE = Path(__file__).parent / "locale"
#: English pages follow British conventions (15 September, 23:59).
_BABEL_LOCALES = {"en": "en_GB"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: The HTTP status of each kind of page: a seat offer that is not open any more is a conflict.
STATUS: dict[LinkResult, int] = {"open": 200, "answered": 200, "again": 200, "not_open": 409}

#: Title and text per (answer, result); `not_open` says what happened instead (NOT_OPEN).
TEXTS: dict[tuple[Answer, LinkResult], tuple[str, str]] = {
    ("accept", "open"): (
        N_("A place has become free for you"),
        N_("A place has become free on an offer you chose, and it is held for you. Do you want it? "
           "Press the button to accept it."),
    ),
    ("decline", "open"): (
        N_("Decline the place offered to you?"),
        N_("If you decline, the place goes to the next person on the waiting list. You stay on the waiting "
           "list for your other choices."),
    ),
    ("accept", "answered"): (
        N_("The place is yours"),
        N_("You have accepted the place. You will receive a confirmation by e-mail."),
    ),
    ("accept", "again"): (
        N_("You have already accepted this place"),
        N_("The place is yours. Nothing has changed."),
    ),
    ("decline", "answered"): (
        N_("You have declined the place"),
        N_("The place goes to the next person on the waiting list. You stay on the waiting list for your "
           "other choices."),
    ),
    ("decline", "again"): (
        N_("You have already declined this place"),
        N_("Nothing has changed."),
    ),
}
BUTTONS: dict[Answer, str] = {"accept": N_("Accept this place"), "decline": N_("Decline this place")}
NOT_OPEN_TITLE = N_("This place is no longer open")
#: What became of a seat offer that can no longer be answered, per state.
NOT_OPEN: dict[str, str] = {
    "expired": N_("The time to accept this place ended on %(expires)s. It has been offered to the next person "
                  "on the waiting list."),
    "accepted": N_("You have accepted this place: it is yours. It cannot be declined here any more; if you "
                   "cannot come, please tell the organisers."),
    "declined": N_("You declined this place. It has been offered to the next person on the waiting list."),
    "withdrawn": N_("Your sign-up was withdrawn, so this place is no longer held for you."),
    "cancelled": N_("The host cancelled this offer, so this place is no longer available."),
}
#: A seat offer ended because the whole edition was cancelled (its state is `cancelled` too).
EDITION_CANCELLED = N_("The organisers cancelled this edition, so this place is no longer available.")
#: Pages of a link that cannot be used: expired (410), not valid (404), no seat offer behind it (404).
LINK_EXPIRED = (
    N_("This link has expired"),
    N_("Links in our e-mails are valid for a limited time. Nothing has been changed. If you still want to "
       "answer, please contact the organisers."),
)
LINK_INVALID = (
    N_("This link is not valid"),
    N_("The link may be incomplete or altered. Please open it exactly as it appears in the e-mail. Nothing "
       "has been changed."),
)
NO_SEAT_OFFER = (
    N_("No place was offered to you"),
    N_("We could not find a place offered to you with this link. Nothing has been changed."),
)


class LinkPages:
    def __init__(self, timezone: tzinfo, locale_dir: Path = LOCALE) -> None:
        self._translations = load_translations(locale_dir)
        self._timezone = timezone

    @staticmethod
    def language(accept_language: str | None) -> str:
        """For pages shown before the participant is known (an expired or invalid link)."""
        return negotiate(None, accept_language)

    def seat_offer(self, link: SeatOfferLink, answer: Answer) -> tuple[Page, int]:
        """The page of a seat offer's link, and its status."""
        language = negotiate(link.language, None)
        _ = self._translations[language].gettext
        offer, seat_offer = link.offer, link.seat_offer
        details = [(_("Offer"), offer.title), (_("Host"), offer.host_org),
                   (_("Date"), format_date(offer.date, "full", locale=_babel(language)))]
        if link.result == "not_open":
            said = EDITION_CANCELLED if seat_offer.status == "cancelled" else NOT_OPEN[seat_offer.state]
            text = _(said) % {"expires": self._moment(seat_offer.expires_at, language)}
            return Page(language, _(NOT_OPEN_TITLE), [text], details), STATUS[link.result]
        title, text = TEXTS[answer, link.result]
        if link.result != "open":
            return Page(language, _(title), [_(text)], details), STATUS[link.result]
        details.append((_("Held for you until"), self._moment(seat_offer.expires_at, language)))
        return Page(language, _(title), [_(text)], details, action=answer, button=_(BUTTONS[answer])), STATUS["open"]

    def message(self, language: str, texts: tuple[str, str]) -> Page:
        """LINK_EXPIRED, LINK_INVALID or NO_SEAT_OFFER in `language`."""
        _ = self._translations[language].gettext
        title, text = texts
        return Page(language, _(title), [_(text)])

    def _moment(self, moment: datetime, language: str) -> str:
        """'maandag 31 mei 2027 om 23:59', in the editions' time zone."""
        local = moment.astimezone(self._timezone)
        at = self._translations[language].gettext(N_("%(date)s at %(time)s"))
        day = format_date(local.date(), "full", locale=_babel(language))
        return at % {"date": day, "time": format_time(local, "short", locale=_babel(language))}


def _babel(language: str) -> str:
    return _BABEL_LOCALES.get(language, language)
