"""E-mail texts: one Jinja2 template per kind of message for text and one for HTML
(`templates/<kind>.txt.j2`, `templates/<kind>.html.j2`), translated with gettext catalogs
(`locale/<lang>/LC_MESSAGES/messages.po`, message ids in English); dates by Babel.

The text template sets the subject (`{% set subject = ... %}`); the HTML template is autoescaped, so
names and offer titles can never inject markup. Whenever a message's data holds a `calendar` entry
(not null), the rendered message carries it as an `invite.ics` attachment (calendar.py):
`text/calendar; method=REQUEST; charset=utf-8`, or `method=CANCEL` for a cancellation.

The data of each kind (the JSON stored with the message, `Renderer.render`'s `data`)
------------------------------------------------------------------------------------
`offer` = {offer_id, title, host_org, date (ISO), format, attendance (on_site|online), part_of_day
(morning|afternoon|whole_day), starts_at, ends_at ("HH:MM" or null), location (the address), join_url,
what_to_bring, themes, sequence}. Only offer_id, title, host_org and date are required; the others
default (format visit, on site, no part of the day or times, no address: "to be announced").

`calendar` = {uid, sequence, method (REQUEST|CANCEL), status (CONFIRMED|CANCELLED), summary, date
(ISO), starts_at, ends_at ("HH:MM", resolved: `calendar.visit_times`), timezone (IANA, the region's),
location, url, description}, or null for no attachment. `calendar.calendar_entry(offer, uid=...,
timezone=..., cancelled=...)` builds it. Leave `description` empty: the renderer then writes one in the
recipient's language (host, what to bring, the join link, the "my sign-up" link). Optional: `stamp`
(ISO, the DTSTAMP; default now), `organizer` (an e-mail address).

To participants (`name` = the participant's name):
- `signup_confirmed`: {edition: {name, starts_on, ends_on (ISO dates), signup_deadline (ISO moment)},
  choices: [offer, in the participant's order], manage_url, approval (not_required|pending)}
- `assigned`: {offer, rank, calendar?, manage_url?}
- `seat_offered`: {offer, rank, expires_at (ISO moment), accept_url, decline_url}
- `waitlisted`: {position}; `unmatched`: {reason_code}
- `reminder`: {offer, calendar, manage_url?} (sent the day before the visit)
- `offer_changed`: {offer (as it is now), changed: [field names of OfferChanged.changed], calendar,
  manage_url?}; fields a participant does not need (capacity, themes, host_contact, max_per_org) are
  not named
- `offer_cancelled`: {offer, reason, calendar (CANCEL)?}
- `edition_cancelled`: {edition: {name}, reason, calendar (CANCEL) or null (not placed)}
- `feedback_request`: {offer, feedback_url}
- `approval_refused`: {edition: {name}, reason}
To a host contact (`name` = the contact's name):
- `visitor_list`: {offer, visitors: [{name, org, learning_goal}], calendar}
- `visitor_withdrew`: {offer, visitor: {name, org}, remaining (visitors still coming)}
- `host_edition_cancelled`: {edition: {name}, offer, reason}
Requested (`NotificationRequested.context`; `name` = the recipient's name):
- `generic`: {message, subject?, link?}
- `approval_requested` (to the organisation's contact): {participant_name, organisation_name,
  edition_name, learning_goal, approval_url}

Reasons, names and titles are shown as given (escaped in HTML). Every link must be http(s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.lists import format_list
from jinja2 import FileSystemLoader, select_autoescape

from estafette.runtime.i18n import Catalogs
from services.notifications import calendar as ics

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
LOCALE = HERE / "locale"
#: Offer formats that happen online: their e-mail says one can join from one's own desk.
ONLINE_FORMATS = frozenset({"webinar", "digital_tour"})
#: Babel locale per language: English e-mails follow British conventions (15 September, 23:59), as
#: their wording does.
_BABEL_LOCALES = {"en": "en_GB"}
#: The name of the attached calendar entry.
ICS_FILENAME = "invite.ics"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: Offer formats (schemas.OfferFormat) as the e-mails name them.
FORMAT_LABELS = {
    "visit": N_("on-site visit"),
    "workshop": N_("workshop"),
    "webinar": N_("webinar"),
    "digital_tour": N_("digital tour"),
}
#: Parts of the day (schemas.PartOfDay) as the e-mails name them.
PART_OF_DAY_LABELS = {
    "morning": N_("morning"),
    "afternoon": N_("afternoon"),
    "whole_day": N_("whole day"),
}
#: The fields of an offer (OfferChanged.changed) that a participant is told about, in words. Other
#: fields (capacity, themes, host_contact, max_per_org) change nothing for them and are not named.
CHANGED_FIELD_LABELS = {
    "title": N_("the title"),
    "date": N_("the date"),
    "part_of_day": N_("the part of the day"),
    "starts_at": N_("the start time"),
    "ends_at": N_("the end time"),
    "location": N_("the address"),
    "join_url": N_("the link to join"),
    "attendance": N_("whether it takes place on site or online"),
    "what_to_bring": N_("what to bring"),
    "format": N_("the kind of activity"),
    "host_org": N_("the host"),
}
#: When a change names none of the fields above.
CHANGED_FALLBACK = N_("some of the details")
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
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar; method=REQUEST; charset=utf-8"
    content: bytes


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()


#: Who a kind of message is for: the footer says why they receive it.
PARTICIPANT, HOST, EMPLOYER = "participant", "host", "employer"


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

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return tuple(_VIEWS)

    def render(self, kind: str, language: str, name: str, data: dict[str, Any]) -> Rendered:
        """The message of `kind` (see the module's docstring for each kind's `data`) to `name` in
        `language`, with `data["calendar"]` (when not null) attached as `invite.ics`. Raises ValueError,
        KeyError (or a Jinja error) when `data` or `language` cannot make a message: retrying won't help."""
        if kind not in _VIEWS or language not in self._catalogs.languages:
            raise ValueError(f"no {kind!r} message in language {language!r}")
        env = self._catalogs.env(language)
        view, audience = _VIEWS[kind]
        context = {"name": name, "language": language, "audience": audience, **view(self, language, data)}
        entry = data.get("calendar")
        attachments = (self._invite(entry, language, data),) if entry else ()
        context["invite"] = bool(attachments)  # the templates mention the attached calendar entry
        text = env.get_template(f"{kind}.txt.j2").make_module(context)
        subject = " ".join(str(text.subject).split())  # one header line, whatever the title holds
        html = env.get_template(f"{kind}.html.j2").render(context, subject=subject)
        return Rendered(subject, str(text), html, attachments)

    def unmatched_reason(self, code: str, language: str) -> str:
        """The sentence that explains `code`, translated; a kind general one for an unknown code."""
        return self._catalogs.gettext(language, UNMATCHED_SENTENCES.get(code, UNMATCHED_FALLBACK))

    # --- the template variables of each kind of message, formatted for the language ---------------
    def _assigned(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "offer": self._offer(data["offer"], language),
            "rank": data["rank"],
            "manage_url": _url(data.get("manage_url")),
        }

    def _seat_offered(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._assigned(language, data),
            "expires": self._moment(datetime.fromisoformat(data["expires_at"]), language),
            "accept_url": _url(data["accept_url"], required=True),
            "decline_url": _url(data["decline_url"], required=True),
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
        link = _url(context.get("link"))
        return {"requested_subject": str(context.get("subject") or ""), "paragraphs": paragraphs, "link": link}

    def _signup_confirmed(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        edition = self._edition(data["edition"], language)
        return {
            "edition": edition,
            "choices": [self._offer(offer, language) for offer in data.get("choices") or ()],
            "manage_url": _url(data["manage_url"], required=True),
            "pending": data.get("approval") == "pending",
        }

    def _reminder(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"offer": self._offer(data["offer"], language), "manage_url": _url(data.get("manage_url"))}

    def _offer_changed(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        _ = self._catalogs.translations[language].gettext
        named = [_(CHANGED_FIELD_LABELS[f]) for f in dict.fromkeys(data.get("changed") or ()) if f in CHANGED_FIELD_LABELS]
        changes = format_list(named, locale=_babel(language)) if named else _(CHANGED_FALLBACK)
        return {**self._reminder(language, data), "changes": changes}

    def _offer_cancelled(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"offer": self._offer(data["offer"], language), "reason": _text(data.get("reason"))}

    def _edition_cancelled(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"edition": self._edition(data["edition"], language), "reason": _text(data.get("reason"))}

    def _feedback_request(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"offer": self._offer(data["offer"], language), "feedback_url": _url(data["feedback_url"], required=True)}

    def _approval_refused(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return self._edition_cancelled(language, data)

    def _visitor_list(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        visitors = [
            {"name": str(v.get("name") or ""), "org": str(v.get("org") or ""),
             "learning_goal": _text(v.get("learning_goal"))}
            for v in data.get("visitors") or ()
        ]
        return {"offer": self._offer(data["offer"], language), "visitors": visitors}

    def _visitor_withdrew(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        visitor = data["visitor"]
        return {
            "offer": self._offer(data["offer"], language),
            "visitor": {"name": str(visitor.get("name") or ""), "org": str(visitor.get("org") or "")},
            "remaining": int(data.get("remaining") or 0),
        }

    def _host_edition_cancelled(self, language: str, data: dict[str, Any]) -> dict[str, Any]:
        return {**self._edition_cancelled(language, data), "offer": self._offer(data["offer"], language)}

    def _approval_requested(self, language: str, context: dict[str, Any]) -> dict[str, Any]:
        for key in ("participant_name", "edition_name", "approval_url"):
            if not str(context.get(key) or "").strip():
                raise ValueError(f"the request's context has no {key!r}")
        return {
            "participant": str(context["participant_name"]),
            "organisation": str(context.get("organisation_name") or ""),
            "edition_name": str(context["edition_name"]),
            "learning_goal": _text(context.get("learning_goal")),
            "approval_url": _url(context["approval_url"], required=True),
        }

    # --- pieces ---------------------------------------------------------------------------------------
    def _moment(self, moment: datetime, language: str, timezone: tzinfo | None = None) -> str:
        """'maandag 14 september 2026 om 23:59', in the configured time zone."""
        local = moment.astimezone(timezone or self._timezone)
        at = self._catalogs.gettext(language, N_("%(date)s at %(time)s"))
        time = format_time(local, "short", locale=_babel(language))
        return at % {"date": long_date(local.date(), language), "time": time}

    def _edition(self, edition: Mapping[str, Any], language: str) -> dict[str, Any]:
        """{name, starts_on, ends_on (long dates, or ''), deadline (a moment or a date, or '')}."""
        zone = ZoneInfo(edition["timezone"]) if edition.get("timezone") else None
        deadline = ""
        if edition.get("signup_deadline"):
            raw = str(edition["signup_deadline"])
            if len(raw) == 10:  # a date
                deadline = long_date(date.fromisoformat(raw), language)
            else:
                deadline = self._moment(datetime.fromisoformat(raw.replace("Z", "+00:00")), language, zone)

        def day(key: str) -> str:
            raw = edition.get(key)
            return format_date(date.fromisoformat(str(raw)), "long", locale=_babel(language)) if raw else ""

        return {"name": str(edition["name"]), "starts_on": day("starts_on"), "ends_on": day("ends_on"), "deadline": deadline}

    def _offer(self, offer: Mapping[str, Any], language: str) -> dict[str, Any]:
        """The offer with what, when and where in words, and its label: value rows (what, host, when,
        where, what to bring) as (label, value, link or None) in `language`."""
        _ = self._catalogs.translations[language].gettext
        label = FORMAT_LABELS.get(offer.get("format") or "visit")
        what = f"{offer['title']} ({_(label) if label else offer['format']})"
        day = date.fromisoformat(str(offer["date"]))
        when = [long_date(day, language)]
        if offer.get("part_of_day") in PART_OF_DAY_LABELS:
            when.append(_(PART_OF_DAY_LABELS[offer["part_of_day"]]))
        start, end = ics.parse_time(offer.get("starts_at")), ics.parse_time(offer.get("ends_at"))
        if start and end:
            when.append(_("%(start)s–%(end)s") % {"start": ics.hhmm(start), "end": ics.hhmm(end)})
        elif start:
            when.append(_("from %(start)s") % {"start": ics.hhmm(start)})
        attendance_online = offer.get("attendance") == "online"
        join_url = str(offer.get("join_url") or "")
        join_url = join_url if join_url.startswith(("https://", "http://")) else ""  # never a javascript: link
        if attendance_online:
            where, where_link = (_("online"), join_url) if join_url else (_("online; the link follows"), None)
        else:
            where, where_link = str(offer.get("location") or "") or _("to be announced"), None
        bring = _text(offer.get("what_to_bring"))
        rows: list[tuple[str, str, str | None]] = [
            (_("What"), what, None),
            (_("Host"), str(offer["host_org"]), None),
            (_("When"), ", ".join(when), None),
            (_("Where"), where, where_link),
        ]
        if bring:
            rows.append((_("What to bring"), bring, None))
        return {
            **offer,
            "title": str(offer["title"]),
            "host_org": str(offer["host_org"]),
            "day": long_date(day, language),
            "when": ", ".join(when),
            "where": where,
            "attendance_online": attendance_online,
            "join_url": join_url,
            "what_to_bring": bring,
            "online": attendance_online or offer.get("format") in ONLINE_FORMATS,
            "details": rows,
        }

    def _invite(self, entry: Mapping[str, Any], language: str, data: Mapping[str, Any]) -> Attachment:
        """The calendar entry as `invite.ics`; without a description of its own, one in `language`."""
        if not isinstance(entry, Mapping):
            raise ValueError("the message's calendar entry is not an object")
        entry = dict(entry)
        if not entry.get("description") and isinstance(data.get("offer"), Mapping):
            entry["description"] = self._description(data["offer"], language, _url(data.get("manage_url")))
        stamp = datetime.fromisoformat(str(entry["stamp"]).replace("Z", "+00:00")) if entry.get("stamp") else None
        return Attachment(ICS_FILENAME, ics.content_type(entry), ics.to_ics(entry, now=stamp))

    def _description(self, offer: Mapping[str, Any], language: str, manage_url: str) -> str:
        view = self._offer(offer, language)
        _ = self._catalogs.translations[language].gettext
        lines = [f"{label}: {value}" + (f": {link}" if link else "") for label, value, link in view["details"][1:]]
        if manage_url:
            lines.append(f"{_('My sign-up')}: {manage_url}")
        return "\n".join(lines)


_VIEWS: dict[str, tuple[Callable[[Renderer, str, dict[str, Any]], dict[str, Any]], str]] = {
    "signup_confirmed": (Renderer._signup_confirmed, PARTICIPANT),
    "assigned": (Renderer._assigned, PARTICIPANT),
    "seat_offered": (Renderer._seat_offered, PARTICIPANT),
    "waitlisted": (Renderer._waitlisted, PARTICIPANT),
    "unmatched": (Renderer._unmatched, PARTICIPANT),
    "reminder": (Renderer._reminder, PARTICIPANT),
    "offer_changed": (Renderer._offer_changed, PARTICIPANT),
    "offer_cancelled": (Renderer._offer_cancelled, PARTICIPANT),
    "edition_cancelled": (Renderer._edition_cancelled, PARTICIPANT),
    "feedback_request": (Renderer._feedback_request, PARTICIPANT),
    "approval_refused": (Renderer._approval_refused, PARTICIPANT),
    "visitor_list": (Renderer._visitor_list, HOST),
    "visitor_withdrew": (Renderer._visitor_withdrew, HOST),
    "host_edition_cancelled": (Renderer._host_edition_cancelled, HOST),
    "generic": (Renderer._generic, PARTICIPANT),
    "approval_requested": (Renderer._approval_requested, EMPLOYER),
}


def _url(value: Any, *, required: bool = False) -> str:
    """An http(s) link, or '' for none; ValueError for anything else (a javascript: link, ...)."""
    link = str(value or "").strip()
    if not link:
        if required:
            raise ValueError("a link the message needs is missing")
        return ""
    if not link.startswith(("https://", "http://")):
        raise ValueError("a link of the message is not an http(s) URL")
    return link


def _text(value: Any) -> str:
    """Free text given by a person (a reason, a learning goal), trimmed; '' for none."""
    return str(value or "").strip()


def _babel(language: str) -> str:
    return _BABEL_LOCALES.get(language, language)


def long_date(day: date, language: str) -> str:
    """'dinsdag 15 september 2026', 'Dienstag, 15. September 2026', 'Tuesday, 15 September 2026'."""
    return format_date(day, "full", locale=_babel(language))
