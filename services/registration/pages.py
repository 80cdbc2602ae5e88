"""The texts of the pages behind participants' and employers' links, in the reader's language: gettext
catalogs in `locale/<lang>/LC_MESSAGES/messages.po` (message ids in English), dates by Babel, laid out
by the one link-page layout (`estafette.runtime.pages`: server-rendered, no JavaScript, labelled
fields). Pages:

- my sign-up (`signup`): status, approval, edition, choices; where and when once placed; the waiting
  list position; an open seat offer with links to matching's accept/decline pages; the form to change
  the choices (while allowed) and the withdraw button — in the participant's language;
- the approval page (`approval`, `approval_answered`) — in the organisation contact's language;
- the feedback page (`feedback`) — in the participant's language.

A page for a link that names nothing we know (expired, tampered) speaks Dutch and English: we do not
know the reader. Every form POSTs to an address relative to the page's own (`base`: the link's token
and a slash on the GET page, empty on the page a POST answers with), so the pages work under any
`REGISTRATION_PUBLIC_URL` path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time

from estafette.runtime.i18n import DEFAULT_LANGUAGE, load_translations
from estafette.runtime.pages import Field, Form, Option, Page, Section
from services.registration import domain

LOCALE = Path(__file__).parent / "locale"
#: The languages of a page for a link we cannot read.
UNKNOWN_READER = ("nl", "en")
#: English pages follow British conventions (15 September, 23:59).
_BABEL_LOCALES = {"en": "en_GB"}
#: At most this many select boxes in the form that changes the choices.
MAX_CHOICES = 10
#: The longest "what I learned" text and refusal reason the forms take.
MAX_LEARNED, MAX_REASON = 2000, 500


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: A sign-up's status as its participant reads it (domain.SignupStatus).
STATUS_TEXTS: dict[str, str] = {
    "submitted": N_("signed up"), "withdrawn": N_("withdrawn"), "refused": N_("not approved by your employer"),
}
#: The employer's approval as the participant reads it (domain.ApprovalState; not_required: not shown).
APPROVAL_TEXTS: dict[str, str] = {
    "pending": N_("waiting for your employer's approval"), "approved": N_("approved by your employer"),
    "refused": N_("not approved by your employer"),
}
#: Why the choices cannot change now (domain.change_refusal's codes).
CHANGE_REFUSED: dict[str, str] = {
    "edition_cancelled": N_("the edition has been cancelled."),
    "edition_closed": N_("the sign-ups of this edition are closed."),
    "deadline_passed": N_("the sign-up deadline has passed."),
    "signup_ended": N_("your sign-up is no longer active."),
    "already_placed": N_("you have been placed, so your choices no longer change."),
}
PART_OF_DAY: dict[str, str] = {"morning": N_("morning"), "afternoon": N_("afternoon"), "whole_day": N_("whole day")}
RATINGS: dict[int, str] = {
    1: N_("1 – poor"), 2: N_("2 – fair"), 3: N_("3 – good"), 4: N_("4 – very good"), 5: N_("5 – excellent"),
}
#: Makes the address of matching's page for one answer to a seat offer: (answer, signup, edition, offer).
SeatOfferUrl = Callable[[str, str, str, str], str]


def _babel(language: str) -> str:
    return _BABEL_LOCALES.get(language, language)


class LinkPages:
    def __init__(self, locale_dir: Path = LOCALE) -> None:
        self._translations = load_translations(locale_dir)

    def language(self, language: str) -> str:
        return language if language in self._translations else DEFAULT_LANGUAGE

    def _gettext(self, language: str):  # noqa: ANN202 - gettext's own signature
        return self._translations.get(language, self._translations[DEFAULT_LANGUAGE]).gettext

    # --- shared pieces --------------------------------------------------------------------------
    def _date(self, offer: domain.Offer, language: str) -> str:
        return format_date(offer.date, "full", locale=_babel(language))

    def _when(self, offer: domain.Offer, language: str) -> str:
        """'morning, 09:00–12:00' (the part of the day, and the times when known)."""
        _ = self._gettext(language)
        part = _(PART_OF_DAY[offer.part_of_day])
        if offer.starts_at is None:
            return part
        times = format_time(offer.starts_at, "short", locale=_babel(language))
        if offer.ends_at is not None:
            times += "–" + format_time(offer.ends_at, "short", locale=_babel(language))
        return f"{part}, {times}"

    def _visit(self, offer: domain.Offer, language: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """An offer's details (what, host, date, time, place, what to bring) and its join link."""
        _ = self._gettext(language)
        rows = [(_("What"), offer.title), (_("Host organisation"), offer.host_org), (_("Date"), self._date(offer, language)),
                (_("Time"), self._when(offer, language))]
        links = []
        if offer.attendance == "online":
            rows.append((_("Where"), _("online")))
            if offer.join_url:
                links.append((_("Join online"), offer.join_url))
        elif offer.location:
            rows.append((_("Address"), offer.location))
        if offer.what_to_bring:
            rows.append((_("What to bring"), offer.what_to_bring))
        return rows, links

    def _choices(self, choices: list[domain.Offer], language: str) -> list[tuple[str, str]]:
        _ = self._gettext(language)
        return [(_("Choice %(number)s") % {"number": n}, offer.title) for n, offer in enumerate(choices, 1)]

    # --- my sign-up -------------------------------------------------------------------------------
    def signup(
        self, details: domain.SignupDetails, base: str | None = None, *, timezone: str = "Europe/Amsterdam",
        seat_offer_url: SeatOfferUrl | None = None, now: datetime | None = None, saved: bool = False,
        refused: str | None = None,
    ) -> Page:
        """The sign-up as it is now. With `base` (the forms' address prefix): the form to change the
        choices (when `details.change_refused` allows it) and the withdraw button while it is active.
        `saved`: the choices were just changed; `refused`: a change was refused (its code)."""
        signup, edition = details.signup, details.edition
        language = self.language(signup.language)
        _ = self._gettext(language)
        rows = [(_("Edition"), edition.name), *self._choices(details.choices, language)]
        rows.append((_("Status"), _(STATUS_TEXTS[signup.status])))
        if signup.approval in APPROVAL_TEXTS and signup.status != "refused":
            rows.append((_("Approval"), _(APPROVAL_TEXTS[signup.approval])))
        if signup.status == "withdrawn":
            return Page(
                language, _("Your sign-up is withdrawn"),
                [_("You will not be placed with any of the organisations you chose for %(edition)s. "
                   "Thank you for letting us know.") % {"edition": edition.name}],
                rows,
            )
        if signup.status == "refused":
            return Page(
                language, _("Your sign-up was not approved"),
                [_("Your employer did not approve your sign-up for %(edition)s, so you will not be placed.")
                 % {"edition": edition.name}],
                rows,
            )
        if edition.status == "cancelled":
            return Page(
                language, _("Your sign-up"),
                [_("%(edition)s has been cancelled. Nobody will be placed; we are sorry.") % {"edition": edition.name}],
                rows,
            )
        paragraphs = [_("You signed up for %(edition)s with these choices.") % {"edition": edition.name}]
        if saved:
            paragraphs.insert(0, _("Your new choices have been saved."))
        alert = None
        if refused is not None:
            reason = _(CHANGE_REFUSED[refused]) if refused in CHANGE_REFUSED else _("one of these offers cannot be chosen.")
            alert = _("Your choices were not changed: %(reason)s") % {"reason": reason}
        sections = self._placement(details, language, timezone, seat_offer_url, now)
        forms = []
        note = None
        if base is not None:
            if details.change_refused is None and details.choosable:
                forms.append(self._change_form(details, base, language, timezone))
            elif details.change_refused in CHANGE_REFUSED:
                paragraphs.append(_("Your choices can no longer be changed: %(reason)s")
                                  % {"reason": _(CHANGE_REFUSED[details.change_refused])})
            forms.append(Form(f"{base}withdraw", _("Withdraw my sign-up"), secondary=True,
                              heading=_("Withdraw")))
            note = _("If you can no longer take part, withdraw here: your place then goes to someone on the "
                     "waiting list. This cannot be undone.")
        return Page(language, _("Your sign-up"), paragraphs, rows, sections=sections, forms=forms, note=note, alert=alert)

    def _placement(
        self, details: domain.SignupDetails, language: str, timezone: str, seat_offer_url: SeatOfferUrl | None,
        now: datetime | None,
    ) -> list[Section]:
        """Where and when (assigned), the waiting list, a seat offer, or why not placed."""
        _ = self._gettext(language)
        placement = details.placement
        if placement is None:
            return []
        signup = details.signup
        if placement.outcome == "assigned" and placement.offer_id in details.placed_offers:
            offer = details.placed_offers[placement.offer_id]
            if offer.status == "cancelled":
                return [Section(_("Where and when"), [_("The host cancelled %(title)s.") % {"title": offer.title}])]
            rows, links = self._visit(offer, language)
            return [Section(_("Where and when"), [_("You have a place at %(title)s.") % {"title": offer.title}], rows, links)]
        if placement.outcome == "unmatched":
            return [Section(_("Not placed"), [_("We could not place you with any of your choices.")])]
        sections = []
        seat_offer = details.placed_offers.get(placement.seat_offer_id or "")
        expires = placement.seat_offer_expires_at
        if seat_offer is not None and expires is not None and (now is None or expires > now):
            moment = format_datetime(expires.astimezone(ZoneInfo(timezone)), "full", locale=_babel(language))
            rows, _links = self._visit(seat_offer, language)
            links = []
            if seat_offer_url is not None:
                links = [
                    (_("Accept this place"), seat_offer_url("accept", signup.id, signup.edition_id, seat_offer.id)),
                    (_("Decline this place"), seat_offer_url("decline", signup.id, signup.edition_id, seat_offer.id)),
                ]
            sections.append(Section(
                _("A place has become free for you"),
                [_("A place at %(title)s is held for you until %(moment)s.") % {"title": seat_offer.title, "moment": moment}],
                rows, links,
            ))
        if placement.position is not None:
            sections.append(Section(
                _("Waiting list"),
                [_("You are on the waiting list, at position %(position)s.") % {"position": placement.position}],
            ))
        return sections

    def _change_form(self, details: domain.SignupDetails, base: str, language: str, timezone: str) -> Form:
        _ = self._gettext(language)
        signup, edition = details.signup, details.edition
        offers = details.choosable
        slots = min(len(offers), MAX_CHOICES, max(len(signup.choices) + 1, 3))
        fields = []
        for n in range(1, slots + 1):
            current = signup.choices[n - 1] if n <= len(signup.choices) else ""
            options = [] if n == 1 else [Option("", _("(no choice)"), selected=current == "")]
            options += [Option(o.id, f"{o.title} · {o.host_org} · {self._date(o, language)}", selected=o.id == current)
                        for o in offers]
            fields.append(Field(f"choice_{n}", _("Choice %(number)s") % {"number": n}, "select", options, required=n == 1))
        deadline = format_datetime(edition.signup_deadline.astimezone(ZoneInfo(timezone)), "full", locale=_babel(language))
        return Form(
            f"{base}choices", _("Save my choices"), fields, heading=_("Change your choices"),
            text=_("You can change your choices until %(deadline)s, as long as you have not been placed. Your "
                   "first choice is the one you want most.") % {"deadline": deadline},
        )

    # --- the employer's approval ----------------------------------------------------------------
    def _approval_rows(self, details: domain.ApprovalDetails, language: str) -> list[tuple[str, str]]:
        _ = self._gettext(language)
        rows = [(_("Participant"), details.signup.name), (_("Organisation"), details.organisation.name),
                (_("Edition"), details.edition.name), *self._choices(details.choices, language)]
        if details.signup.learning_goal:
            rows.append((_("Learning goal"), details.signup.learning_goal))
        return rows

    def approval(self, details: domain.ApprovalDetails, base: str | None = None) -> Page:
        """The approval page: the sign-up, and (while pending, with `base`) the two answers; once answered
        it says how."""
        language = self.language(details.organisation.contact.language)
        _ = self._gettext(language)
        signup = details.signup
        rows = self._approval_rows(details, language)
        if details.edition.status == "cancelled":
            return self.approval_answered(details, "cancelled")
        if signup.approval == "approved":
            return self.approval_answered(details, "approved")
        if signup.approval == "refused":
            return self.approval_answered(details, "refused")
        if signup.status != "submitted":
            return self.approval_answered(details, "ended")
        text = _("%(participant)s of %(organisation)s signed up for %(edition)s. Do you approve this sign-up? "
                 "Only approved sign-ups are matched.") % {
            "participant": signup.name, "organisation": details.organisation.name, "edition": details.edition.name}
        forms = []
        if base is not None:
            forms = [
                Form(f"{base}approve", _("Approve")),
                Form(f"{base}refuse", _("Refuse"), [
                    Field("reason", _("Reason (optional)"), "textarea", max_length=MAX_REASON,
                          hint=_("The participant will read this reason.")),
                ], heading=_("Refuse"), secondary=True),
            ]
        return Page(language, _("Approve a sign-up"), [text], rows, forms=forms)

    def approval_answered(self, details: domain.ApprovalDetails, state: str) -> Page:
        """`state`: approved, refused, ended (withdrawn before an answer), cancelled (the edition),
        already_approved / already_refused (the other answer was given before)."""
        language = self.language(details.organisation.contact.language)
        _ = self._gettext(language)
        rows = self._approval_rows(details, language)
        name = {"participant": details.signup.name}
        texts = {
            "approved": (_("You approved this sign-up"),
                         _("Thank you. %(participant)s will be matched with one of their choices.") % name),
            "refused": (_("You refused this sign-up"),
                        _("Thank you. %(participant)s will be told that the sign-up was not approved.") % name),
            "already_approved": (_("This sign-up has already been answered"),
                                 _("It was approved earlier. The answer cannot be changed here; please contact the "
                                   "organisers of the edition.")),
            "already_refused": (_("This sign-up has already been answered"),
                                _("It was refused earlier. The answer cannot be changed here; please contact the "
                                  "organisers of the edition.")),
            "ended": (_("This sign-up has been withdrawn"), _("There is nothing to approve any more.")),
            "cancelled": (_("This edition has been cancelled"), _("There is nothing to approve any more.")),
        }
        title, text = texts[state]
        return Page(language, title, [text], rows)

    # --- feedback -----------------------------------------------------------------------------------
    def feedback(self, details: domain.FeedbackDetails, base: str | None = None, *, fresh: bool = False,
                 problem: bool = False) -> Page:
        """The feedback form (with `base`: its address prefix), or — once given — a thank-you page
        (`fresh`: just now; else "already received"). `problem`: the form came back incomplete."""
        language = self.language(details.signup.language)
        _ = self._gettext(language)
        offer = details.offer
        rows = [(_("Visit"), offer.title), (_("Host organisation"), offer.host_org), (_("Date"), self._date(offer, language))]
        if details.edition.status == "cancelled":
            return Page(language, _("This edition has been cancelled"),
                        [_("%(edition)s has been cancelled, so there is no visit to give feedback on.")
                         % {"edition": details.edition.name}], rows)
        if details.feedback is not None:
            if fresh:
                return Page(language, _("Thank you for your feedback"),
                            [_("We have received your feedback. It helps the next participants and hosts.")], rows)
            return Page(language, _("We have already received your feedback"),
                        [_("You can give feedback on a visit once. Thank you!")], rows)
        form = Form(base or "", _("Send my feedback"), [
            Field("rating", _("How was your visit?"), "radio",
                  [Option(str(n), _(text)) for n, text in RATINGS.items()], required=True),
            Field("learned", _("What I learned"), "textarea", max_length=MAX_LEARNED,
                  hint=_("In your own words; at most 2000 characters.")),
            Field("share_publicly", _("What I learned may be shared publicly"), "checkbox",
                  hint=_("Only after moderation, and without your name.")),
        ])
        alert = _("Please choose a rating from 1 to 5 (and at most 2000 characters).") if problem else None
        return Page(language, _("Your feedback"),
                    [_("Tell us about your visit to %(title)s.") % {"title": offer.title}], rows,
                    forms=[form], alert=alert)

    # --- links we cannot read ------------------------------------------------------------------------
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
