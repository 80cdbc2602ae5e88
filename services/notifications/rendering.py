"""E-mail texts: one Jinja2 template per kind of message for text and one for HTML
(`templates/<kind>.txt.j2`, `templates/<kind>.html.j2`), translated with gettext catalogs
(`locale/<lang>/LC_MESSAGES/messages.po`, message ids in English); dates by Babel.

The text template sets the subject (`{% set subject = ... %}`); the HTML template is autoescaped, so
names and offer titles can never inject markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from jinja2 import FileSystemLoader, select_autoescape

from estafette.runtime.i18n import Catalogs

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
LOCALE = HERE / "locale"
#: Offer formats that happen online: their e-mail says one can join from one's own desk.
ONLINE_FORMATS = frozenset({"webinar", "digital_tour"})
#: Babel locale per language: English e-mails follow British conventions (15 September, 23:59), as
#: their wording does.
_BABEL_LOCALES = {"en": "en_GB"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: Offer formats (schemas.OfferFormat) as the e-mails name them.
FORMAT_LABELS = {
    "visit": N_("on-site visit"),
    "workshop": N_("workshop"),
    "webinar": N_("webinar"),
    "digital_tour": N_("digital tour"),
}
#: Why nobody was placed, one sentence per published reason code (schemas.reasons.UNMATCHED_REASONS).
UNMATCHED_SENTENCES = {
    "all_full": N_("All places with the organisations you chose had already been taken."),
    "own_org": N_("The offers you chose are hosted by your own organisation, which you cannot visit."),
    "unavailable": N_("On the days you were available, your chosen offers had no places left."),
    "org_cap": N_(
        "Your chosen offers had already reached their maximum number of participants from your organisation."
    ),
    "forbidden": N_("The organisers had not opened the offers you chose to you."),
    "no_choices": N_("You had not chosen any offer, or the offers you chose are no longer available."),
    "mixed": N_("For different reasons, none of the offers you chose was possible for you."),
    "seat_offers_ended": N_(
        "You declined the place we offered you, or did not accept it in time, and none of your other "
        "choices has a place for you."
    ),
}
#: For a code this version does not know yet.
UNMATCHED_FALLBACK = N_("Unfortunately we could not find a suitable place for you.")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(
        self, directory: Path = TEMPLATES, locale_dir: Path = LOCALE, timezone: tzinfo = ZoneInfo("Europe/Amsterdam")
    ) -> None:
        self._timezone = timezone  # moments are shown in the recipients' local time
        self._catalogs = Catalogs(
            FileSystemLoader(directory),
            locale_dir,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        for language in self._catalogs.languages:  # as extracted (babel.cfg: trimmed = true)
            self._catalogs.env(language).policies["ext.i18n.trimmed"] = True

    @property
    def languages(self) -> tuple[str, ...]:
        return self._catalogs.languages

    def render(self, kind: str, language: str, name: str, data: dict[str, Any]) -> Rendered:
        """Raises ValueError, KeyError (or a Jinja error) when `data` or `language` cannot make a
        message: retrying won't help."""
        if kind not in _VIEWS or language not in self._catalogs.languages:
            raise ValueError(f"no {kind!r} message in language {language!r}")
        env = self._catalogs.env(language)
        context = {"name": name, "language": language, **_VIEWS[kind](self, language, data)}
        text = env.get_template(f"{kind}.txt.j2").make_module(context)
        subject = " ".join(str(text.subject).split())  # one header line, whatever the title holds
        html = env.get_template(f"{kind}.html.j2").render(context, subject=subject)
        return Rendered(subject, str(text), html)

    def unmatched_reason(self, code: str, language: str) -> str:
        """The sentence that explains `code`, translated; a kind general one for an unknown code."""
        return self._catalogs.gettext(language, UNMATCHED_SENTENCES.get(code, UNMATCHED_FALLBACK))

    # --- the template variables of each kind of message, formatted for the language ---------------
    def _assigned(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"offer": self._offer(data["offer"], language), "rank": data["rank"]}

    def _seat_offered(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._assigned(language, data),
            "expires": self._moment(datetime.fromisoformat(data["expires_at"]), language),
            "accept_url": data["accept_url"],
            "decline_url": data["decline_url"],
        }

    def _waitlisted(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"position": data["position"]}

    def _unmatched(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"reason": self.unmatched_reason(data["reason_code"], language)}

    def _generic(self, language: str, context: dict[str, Any]) -> dict[str, Any]:
        """NotificationRequested context: `message` (required; blank lines split paragraphs), optional
        `subject` and `link` (http or https)."""
        paragraphs = [p.strip() for p in str(context.get("message") or "").split("\n\n") if p.strip()]
        if not paragraphs:
            raise ValueError("the request's context has no 'message'")
        link = str(context.get("link") or "")
        if link and not link.startswith(("https://", "http://")):
            raise ValueError("the request's 'link' is not an http(s) URL")
        return {"requested_subject": str(context.get("subject") or ""), "paragraphs": paragraphs, "link": link}

    def _moment(self, moment: datetime, language: str) -> str:
        """'maandag 14 september 2026 om 23:59', in the configured time zone."""
        local = moment.astimezone(self._timezone)
        at = self._catalogs.gettext(language, N_("%(date)s at %(time)s"))
        time = format_time(local, "short", locale=_babel(language))
        return at % {"date": long_date(local.date(), language), "time": time}

    def _offer(self, offer: dict[str, Any], language: str) -> dict[str, Any]:
        """The offer, with its label: value rows (what, host, when, where) in `language`."""
        _ = self._catalogs.translations[language].gettext
        label = FORMAT_LABELS.get(offer["format"])
        what = f"{offer['title']} ({_(label) if label else offer['format']})"
        when = long_date(date.fromisoformat(offer["date"]), language)
        where = offer["location"] or _("to be announced")
        return {
            **offer,
            "online": offer["format"] in ONLINE_FORMATS,
            "details": [(_("What"), what), (_("Host"), offer["host_org"]), (_("When"), when), (_("Where"), where)],
        }


_VIEWS: dict[str, Callable[[Renderer, str, dict[str, Any]], dict[str, Any]]] = {
    "assigned": Renderer._assigned,
    "seat_offered": Renderer._seat_offered,
    "waitlisted": Renderer._waitlisted,
    "unmatched": Renderer._unmatched,
    "generic": Renderer._generic,
}


def _babel(language: str) -> str:
    return _BABEL_LOCALES.get(language, language)


def long_date(day: date, language: str) -> str:
    """'dinsdag 15 september 2026', 'Dienstag, 15. September 2026', 'Tuesday, 15 September 2026'."""
    return format_date(day, "full", locale=_babel(language))
