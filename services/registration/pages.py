"""The texts of the participant's link pages (`GET /links/signup/{token}` and its withdraw button), in
the participant's language: gettext catalogs in `locale/<lang>/LC_MESSAGES/messages.po` (message ids
in English), laid out by the one link-page layout (`estafette.runtime.pages`). A page for a link that
names no sign-up we know (expired, tampered) speaks Dutch and English: we do not know the reader.
"""

from __future__ import annotations

from pathlib import Path

from estafette.runtime.i18n import DEFAULT_LANGUAGE, load_translations
from estafette.runtime.pages import Page
from services.registration import domain

LOCALE = Path(__file__).parent / "locale"
#: The languages of a page for a link we cannot read.
UNKNOWN_READER = ("nl", "en")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: A sign-up's status as its participant reads it (domain.SignupStatus).
STATUS_TEXTS: dict[str, str] = {"submitted": N_("signed up"), "withdrawn": N_("withdrawn")}


class LinkPages:
    def __init__(self, locale_dir: Path = LOCALE) -> None:
        self._translations = load_translations(locale_dir)

    def _gettext(self, language: str):  # noqa: ANN202 - gettext's own signature
        return self._translations.get(language, self._translations[DEFAULT_LANGUAGE]).gettext

    def signup(self, details: domain.SignupDetails, action: str | None = None) -> Page:
        """The sign-up as it is now: with the withdraw button (POSTing to `action`) while it is submitted,
        else saying that it is withdrawn."""
        signup, edition = details.signup, details.edition
        language = signup.language if signup.language in self._translations else DEFAULT_LANGUAGE
        _ = self._gettext(language)
        rows = [(_("Edition"), edition.name)]
        rows += [(_("Choice %(number)s") % {"number": n}, offer.title) for n, offer in enumerate(details.choices, 1)]
        rows.append((_("Status"), _(STATUS_TEXTS[signup.status])))
        if signup.status == "withdrawn":
            return Page(
                language, _("Your sign-up is withdrawn"),
                [_("You will not be placed with any of the organisations you chose for %(edition)s. "
                   "Thank you for letting us know.") % {"edition": edition.name}],
                rows,
            )
        return Page(
            language, _("Your sign-up"),
            [_("You signed up for %(edition)s with these choices.") % {"edition": edition.name}],
            rows,
            action=action,
            button=_("Withdraw my sign-up") if action else None,
            note=_("If you can no longer take part, withdraw here: your place then goes to someone on the "
                   "waiting list. This cannot be undone."),
        )

    def _for_anyone(self, title: str, text: str) -> Page:
        """A page in Dutch and English, for a reader whose language we do not know."""
        translations = [self._gettext(language) for language in UNKNOWN_READER]
        return Page(UNKNOWN_READER[0], " · ".join(t(title) for t in translations), [t(text) for t in translations])

    def expired(self) -> Page:
        return self._for_anyone(
            N_("This link has expired"),
            N_("A link to your sign-up is valid for a limited time. Please contact the organisers of your edition."),
        )

    def invalid(self) -> Page:
        return self._for_anyone(
            N_("This link is not valid"),
            N_("Please check that you opened the whole link, or contact the organisers of your edition."),
        )
