"""Registration rules and types (pure: no I/O, no framework).

The API has validated the shapes (ids, e-mail address, lengths); these rules need context: the
edition, the offers a participant chose, the current state. A rule either raises a domain error
(`estafette.runtime.errors`) or returns a decision that the service executes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from estafette.runtime.access import Principal
from estafette.runtime.errors import Conflict, Forbidden, NotFound, RuleViolation
from schemas.regions import RegionRecord

EditionStatus = Literal["open", "closed", "cancelled"]
OfferStatus = Literal["published", "cancelled"]
#: `refused`: the employer refused the sign-up (it has ended, like a withdrawal).
SignupStatus = Literal["submitted", "withdrawn", "refused"]
#: The employer's approval of a sign-up: `not_required` (the edition does not ask for it), `pending`
#: (not matched until approved), `approved`, `refused`.
ApprovalState = Literal["not_required", "pending", "approved", "refused"]
Attendance = Literal["on_site", "online"]
PartOfDay = Literal["morning", "afternoon", "whole_day"]
#: What a participant was last told by matching (the glossary's match outcome).
Outcome = Literal["assigned", "offered", "waitlisted", "unmatched"]
#: An approval link's answer.
Answer = Literal["approve", "refuse"]

#: The namespace of the ids this service derives (approval requests' notification ids, feedback ids).
NAMESPACE = uuid.UUID("5b0c8f7e-3c1d-4f55-9a44-2f5d7c1e9b20")
#: The fields of an offer an organiser may change (`PATCH .../offers/{offer_id}`), in the order
#: `OfferChanged.changed` names them.
CHANGEABLE = (
    "title", "date", "part_of_day", "starts_at", "ends_at", "location", "join_url", "capacity",
    "what_to_bring", "host_contact", "themes", "attendance",
)
#: At most this many themes per edition.
MAX_THEMES = 30


@dataclass(frozen=True)
class Contact:
    """A person to write to, in their language: an offer's host contact, or a participating
    organisation's contact (who approves its employees' sign-ups)."""

    name: str
    email: str
    language: str = "nl"


@dataclass(frozen=True)
class Edition:
    """One exchange week of a region, with its sign-up deadline."""

    id: str
    region: str
    name: str
    signup_deadline: datetime
    starts_on: date
    ends_on: date
    languages: list[str]
    status: EditionStatus = "open"
    themes: list[str] = field(default_factory=list)
    requires_approval: bool = False
    match_at_deadline: bool = False


@dataclass(frozen=True)
class Offer:
    """A host organisation's offer on one date of an edition."""

    id: str
    edition_id: str
    host_org: str
    title: str
    date: date
    capacity: int
    max_per_org: int | None = None
    format: str = "visit"
    location: str = ""
    status: OfferStatus = "published"
    themes: list[str] = field(default_factory=list)
    attendance: Attendance = "on_site"
    part_of_day: PartOfDay = "whole_day"
    #: Local times in the region's time zone, when known.
    starts_at: time | None = None
    ends_at: time | None = None
    join_url: str | None = None
    what_to_bring: str = ""
    host_contact: Contact | None = None
    #: 0 when published, one higher with every change.
    sequence: int = 0


@dataclass(frozen=True)
class Signup:
    """One participant's sign-up for an edition, with their choices in order. Once the participant's
    personal data is erased (`erased_at`), `name` and `email` are blank."""

    id: str
    edition_id: str
    org: str
    name: str
    email: str
    language: str
    choices: list[str]
    available: list[date] | None
    max_visits: int
    signed_up_at: datetime
    status: SignupStatus = "submitted"
    erased_at: datetime | None = None
    learning_goal: str = ""
    #: When the participant agreed to the processing of their data (required: None is refused).
    consented_at: datetime | None = None
    approval: ApprovalState = "not_required"


@dataclass(frozen=True)
class Organisation:
    """A participating organisation of an edition (an employer), with the contact who approves its
    employees' sign-ups. Only in this service's database."""

    edition_id: str
    id: str
    name: str
    contact: Contact


@dataclass(frozen=True)
class Placement:
    """What matching last told a participant (from the region's matches topic): assigned to an offer
    (`offer_id`, `rank`), on the waiting list (`position`), unmatched (`reason_code`), or holding a seat
    offer (`seat_offer_id` until `seat_offer_expires_at`, while still on the waiting list)."""

    signup_id: str
    outcome: Outcome
    updated_at: datetime
    offer_id: str | None = None
    rank: int | None = None
    position: int | None = None
    reason_code: str | None = None
    seat_offer_id: str | None = None
    seat_offer_rank: int | None = None
    seat_offer_expires_at: datetime | None = None


@dataclass(frozen=True)
class Feedback:
    """A participant's feedback on one visit (once per sign-up and offer); `learned` is kept for the relay."""

    id: str
    signup_id: str
    offer_id: str
    rating: int
    learned: str
    share_publicly: bool
    language: str
    submitted_at: datetime


@dataclass(frozen=True)
class Counts:
    """What an edition holds now: published offers and submitted sign-ups."""

    offers: int
    signups: int


@dataclass(frozen=True)
class EditionOverview:
    edition: Edition
    counts: Counts


@dataclass(frozen=True)
class SignupDetails:
    """A sign-up as its participant sees it on their link page: the edition, the sign-up and the
    offers they chose, in their order."""

    edition: Edition
    signup: Signup
    choices: list[Offer]
    #: What matching last told the participant (None: nothing yet).
    placement: Placement | None = None
    #: The offers the placement names (the assigned one, the seat offer's), by id.
    placed_offers: Mapping[str, Offer] = field(default_factory=dict)
    #: Why the choices cannot be changed now (a refusal code), None when they can.
    change_refused: str | None = None
    #: The edition's published offers the participant may choose from (for the change form).
    choosable: list[Offer] = field(default_factory=list)


@dataclass(frozen=True)
class ApprovalDetails:
    """What the approval page shows the organisation's contact."""

    edition: Edition
    signup: Signup
    organisation: Organisation
    choices: list[Offer]


@dataclass(frozen=True)
class FeedbackDetails:
    """What the feedback page shows: the visit (edition, sign-up, offer) and the feedback, once given."""

    edition: Edition
    signup: Signup
    offer: Offer
    feedback: Feedback | None = None


@dataclass(frozen=True)
class OfferChange:
    """The decision on an offer edit: the offer as it is now and the fields that changed (empty: no
    difference, nothing to store or announce)."""

    offer: Offer
    changed: list[str]


#: Who may act on an edition's things: `granted`; `hidden` (a region the caller may not see: answered
#: exactly like an unknown id, 404); `forbidden` (seen, but the role may not change anything: 403).
Access = Literal["granted", "hidden", "forbidden"]


@dataclass(frozen=True)
class Ending:
    """Decision for closing an edition, cancelling an offer or withdrawing a sign-up: store `status`
    and announce it, or — when it had already ended — store nothing and publish nothing."""

    status: str
    announce: bool


def check_edition_dates(edition: Edition) -> None:
    """An edition ends on or after its first day, and its sign-up deadline is not after its last day."""
    if edition.ends_on < edition.starts_on:
        raise RuleViolation("invalid_dates", "ends_on is before starts_on", "ends_on")
    if edition.signup_deadline.date() > edition.ends_on:
        raise RuleViolation("invalid_deadline", "signup_deadline is after the edition ends", "signup_deadline")


def check_region(edition: Edition, region: RegionRecord | None) -> None:
    """An edition is opened in a region of the region registry (`region`: the registry's record of
    `edition.region`, None when it has none), in languages that region offers."""
    if region is None:
        raise RuleViolation("unknown_region", f"region {edition.region} is not in the region registry", "region")
    missing = [language for language in edition.languages if language not in region.languages]
    if missing:
        raise RuleViolation(
            "language_not_offered",
            f"region {region.id} offers {', '.join(region.languages)}, not {', '.join(missing)}",
            "languages",
        )


def check_themes(edition: Edition) -> None:
    """An edition has at most MAX_THEMES themes, each once."""
    if len(edition.themes) > MAX_THEMES:
        raise RuleViolation("too_many_themes", f"an edition has at most {MAX_THEMES} themes", "themes")
    if len(set(edition.themes)) != len(edition.themes):
        raise RuleViolation("duplicate_theme", "each theme may be listed once", "themes")


def check_not_cancelled(edition: Edition) -> None:
    """Nothing of a cancelled edition changes any more (offers, edits, sign-ups, approvals, feedback)."""
    if edition.status == "cancelled":
        raise Conflict("edition_cancelled", f"edition {edition.id} is cancelled")


def _check_open(edition: Edition) -> None:
    check_not_cancelled(edition)
    if edition.status != "open":
        raise Conflict("edition_closed", f"edition {edition.id} is closed")


def _check_within(edition: Edition, day: date, what: str, field: str) -> None:
    if not edition.starts_on <= day <= edition.ends_on:
        raise RuleViolation(
            "date_outside_edition",
            f"{what} {day} is outside edition {edition.id} ({edition.starts_on} to {edition.ends_on})",
            field,
        )


def _check_offer_fields(edition: Edition, offer: Offer) -> None:
    _check_within(edition, offer.date, "date", "date")
    for i, theme in enumerate(offer.themes):
        if theme not in edition.themes:
            raise RuleViolation("unknown_theme", f"theme {theme} is not a theme of edition {edition.id}", f"themes.{i}")
    if len(set(offer.themes)) != len(offer.themes):
        raise RuleViolation("duplicate_theme", "each theme may be listed once", "themes")
    if offer.starts_at is not None and offer.ends_at is not None and offer.ends_at <= offer.starts_at:
        raise RuleViolation("invalid_times", "ends_at is not after starts_at", "ends_at")


def check_offer(edition: Edition, offer: Offer) -> None:
    """An offer is published only in an open edition, on one of the edition's days, with themes of the
    edition and an end after its start (when both times are given). An online offer needs no location."""
    _check_open(edition)
    _check_offer_fields(edition, offer)


def offer_change(edition: Edition, offer: Offer, changes: Mapping[str, object]) -> OfferChange:
    """An organiser's edit of an offer (`changes`: new values of CHANGEABLE fields). Refused in a
    cancelled edition (409 `edition_cancelled`) and for a cancelled offer (409 `offer_cancelled`); the
    new offer follows the rules of `check_offer` (but the edition may be closed: times and places still
    change after the match). The fields whose value differs are `changed`, the sequence one higher; no
    difference: nothing changes."""
    check_not_cancelled(edition)
    if offer.status != "published":
        raise Conflict("offer_cancelled", f"offer {offer.id} was cancelled")
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise RuleViolation("not_changeable", f"{', '.join(sorted(unknown))} cannot be changed", sorted(unknown)[0])
    new = replace(offer, **changes)  # type: ignore[arg-type]
    _check_offer_fields(edition, new)
    changed = [name for name in CHANGEABLE if getattr(new, name) != getattr(offer, name)]
    if not changed:
        return OfferChange(offer, [])
    return OfferChange(replace(new, sequence=offer.sequence + 1), changed)


def _check_choices(edition: Edition, org: str, choices: Sequence[str], offers: Mapping[str, Offer]) -> None:
    if len(set(choices)) != len(choices):
        raise RuleViolation("duplicate_choice", "each offer may be chosen once", "choices")
    for i, offer_id in enumerate(choices):
        offer = offers.get(offer_id)
        if offer is None or offer.edition_id != edition.id:
            raise RuleViolation("unknown_offer", f"offer {offer_id} is not an offer of edition {edition.id}", f"choices.{i}")
        if offer.status != "published":
            raise RuleViolation("offer_cancelled", f"offer {offer_id} was cancelled", f"choices.{i}")
        if offer.host_org == org:
            raise RuleViolation("own_organisation", f"offer {offer_id} is hosted by your own organisation", f"choices.{i}")


def _check_deadline(edition: Edition, now: datetime) -> None:
    if now > edition.signup_deadline:
        raise Conflict(
            "deadline_passed",
            f"the sign-up deadline of edition {edition.id} passed at {edition.signup_deadline.isoformat()}",
        )


def check_signup(
    edition: Edition, signup: Signup, offers: Mapping[str, Offer], organisation: Organisation | None = None
) -> None:
    """A sign-up is taken while the edition is open and before its deadline (at `signup.signed_up_at`),
    with the participant's consent (`consented_at`), in one of the edition's languages; its choices are
    distinct, published offers of this edition, not hosted by the participant's own organisation; its
    available dates are days of the edition. In an edition that requires approval, its `org` is a
    participating organisation of the edition (`organisation`: the one registered under `org`, if any).

    `offers`: the offers named in the choices that exist (in any edition).
    """
    _check_open(edition)
    _check_deadline(edition, signup.signed_up_at)
    if signup.consented_at is None:
        raise RuleViolation("consent_required", "signing up needs your consent to the processing of your data", "consent")
    if signup.language not in edition.languages:
        raise RuleViolation(
            "language_not_offered",
            f"edition {edition.id} speaks {', '.join(edition.languages)}, not {signup.language}",
            "language",
        )
    _check_choices(edition, signup.org, signup.choices, offers)
    for i, day in enumerate(signup.available or []):
        _check_within(edition, day, "available date", f"available.{i}")
    if edition.requires_approval and organisation is None:
        raise RuleViolation(
            "unknown_organisation", f"{signup.org} is not a participating organisation of edition {edition.id}", "org"
        )


def approval_of(edition: Edition) -> ApprovalState:
    """A new sign-up waits for its employer's approval when the edition requires it."""
    return "pending" if edition.requires_approval else "not_required"


def approval_request_id(signup_id: str) -> uuid.UUID:
    """The notification id of a sign-up's approval request: one per sign-up, whatever happens."""
    return uuid.uuid5(NAMESPACE, f"approval:{signup_id}")


def feedback_id(signup_id: str, offer_id: str) -> str:
    """The id of a participant's feedback on one visit: one per sign-up and offer."""
    return "f-" + uuid.uuid5(NAMESPACE, f"{signup_id}:{offer_id}").hex[:20]


def change_refusal(edition: Edition, signup: Signup, placement: Placement | None, now: datetime) -> str | None:
    """Why the participant may not change their choices now (a refusal code), or None: only while the
    edition is open, until its deadline, while the sign-up is active, and while they are not placed
    (assigned, or holding a seat offer)."""
    if edition.status == "cancelled":
        return "edition_cancelled"
    if edition.status != "open":
        return "edition_closed"
    if now > edition.signup_deadline:
        return "deadline_passed"
    if signup.status != "submitted":
        return "signup_ended"
    if placement is not None and placement.outcome in ("assigned", "offered"):
        return "already_placed"
    return None


def check_choices_change(
    edition: Edition, signup: Signup, placement: Placement | None, choices: Sequence[str],
    offers: Mapping[str, Offer], now: datetime,
) -> bool:
    """May the participant change their choices to `choices` now (`change_refusal`: 409 with its code),
    and are the new choices valid (the sign-up's rules)? True when they differ from the current ones
    (False: nothing to store or announce)."""
    refusal = change_refusal(edition, signup, placement, now)
    if refusal is not None:
        raise Conflict(refusal, CHANGE_REFUSALS[refusal])
    _check_choices(edition, signup.org, choices, offers)
    return list(choices) != list(signup.choices)


#: What each refusal of a choices change means (the API's message; the page has its own texts).
CHANGE_REFUSALS = {
    "edition_cancelled": "the edition is cancelled",
    "edition_closed": "the edition is closed for changes",
    "deadline_passed": "the sign-up deadline has passed",
    "signup_ended": "the sign-up is no longer active",
    "already_placed": "you have been placed: your choices can no longer change",
}


ApprovalResult = Literal["answer", "again", "already_answered", "ended"]


def approval_answer(signup: Signup, answer: Answer) -> ApprovalResult:
    """An employer's answer to a pending sign-up: `answer` (store and announce it); the same answer
    again: `again` (nothing changes); the other answer after one was given: `already_answered` (409);
    a sign-up withdrawn before it was answered: `ended` (409)."""
    if signup.approval == "pending":
        return "answer" if signup.status == "submitted" else "ended"
    if signup.approval == ("approved" if answer == "approve" else "refused"):
        return "again"
    return "already_answered"


def answered(signup: Signup, answer: Answer) -> Signup:
    """The sign-up after its employer's answer: approved, or refused (which ends it)."""
    if answer == "approve":
        return replace(signup, approval="approved")
    return replace(signup, approval="refused", status="refused")


# --- placements (what matching told a participant) -----------------------------------------------
def _open_seat_offer(previous: Placement | None) -> dict[str, object]:
    if previous is None or previous.seat_offer_id is None:
        return {}
    return {
        "seat_offer_id": previous.seat_offer_id, "seat_offer_rank": previous.seat_offer_rank,
        "seat_offer_expires_at": previous.seat_offer_expires_at,
    }


def placed_assigned(signup_id: str, offer_id: str, rank: int, at: datetime) -> Placement:
    """Assigned to an offer (a run's assignment, or an accepted seat offer): any seat offer has ended."""
    return Placement(signup_id, "assigned", at, offer_id=offer_id, rank=rank)


def placed_waitlisted(previous: Placement | None, signup_id: str, position: int, reason_code: str, at: datetime) -> Placement:
    """On the waiting list at `position`; a seat offer still open stays shown (outcome `offered`)."""
    seat_offer = _open_seat_offer(previous)
    outcome: Outcome = "offered" if seat_offer else "waitlisted"
    return Placement(signup_id, outcome, at, position=position, reason_code=reason_code, **seat_offer)  # type: ignore[arg-type]


def placed_unmatched(signup_id: str, reason_code: str, at: datetime) -> Placement:
    """Not placed (and not waiting): why, as a reason code."""
    return Placement(signup_id, "unmatched", at, reason_code=reason_code)


def seat_offered(
    previous: Placement | None, signup_id: str, offer_id: str, rank: int, expires_at: datetime, at: datetime
) -> Placement:
    """A seat held for the participant until `expires_at`; they stay on the waiting list meanwhile."""
    position = previous.position if previous is not None else None
    reason = previous.reason_code if previous is not None else None
    return Placement(
        signup_id, "offered", at, position=position, reason_code=reason, seat_offer_id=offer_id, seat_offer_rank=rank,
        seat_offer_expires_at=expires_at,
    )


def seat_offer_ended(previous: Placement | None, signup_id: str, offer_id: str, at: datetime) -> Placement | None:
    """A seat offer declined or expired: back on the waiting list. None when `previous` holds no such
    seat offer (nothing to change)."""
    if previous is None or previous.seat_offer_id != offer_id:
        return None
    return replace(previous, outcome="waitlisted", updated_at=at, seat_offer_id=None, seat_offer_rank=None,
                   seat_offer_expires_at=None)


def check_opening(principal: Principal, region: str) -> None:
    """Editions are opened by an admin (any region) or by an organiser in their own region; an organiser
    naming another region is refused (403 `forbidden_region`), and so is every other role."""
    if principal.role == "admin" or (principal.role == "organiser" and principal.sees(region)):
        return
    if principal.role == "organiser":
        raise Forbidden("forbidden_region", f"you organise region {principal.region}, not {region}", "region")
    raise Forbidden("forbidden", f"the {principal.role} role may not open editions")


def access(principal: Principal, region: str, *, signup_id: str | None = None) -> Access:
    """May `principal` act on (or see the personal data of) a thing of an edition in `region`: close it,
    publish or cancel its offers, see or withdraw a sign-up (`signup_id`)? An admin and the region's
    organiser may; so may the participant whose link names `signup_id`. A region the caller may not see
    (`Principal.sees`, the one scoping rule) is hidden; the national role sees it but may not act."""
    if signup_id is not None and principal.owns(signup_id):
        return "granted"
    if not principal.sees(region):
        return "hidden"
    return "granted" if principal.sees_personal_data else "forbidden"


def closing(edition: Edition) -> Ending:
    """Closing an open edition announces EditionClosed; closing a closed (or cancelled) one changes nothing."""
    return Ending("closed", announce=edition.status == "open")


def cancelling(edition: Edition) -> Ending:
    """Cancelling an edition (open or closed) announces EditionCancelled once; again: nothing changes."""
    return Ending("cancelled", announce=edition.status != "cancelled")


def cancellation(offer: Offer) -> Ending:
    """Cancelling an offer announces OfferCancelled only when it was published."""
    return Ending("cancelled", announce=offer.status == "published")


def withdrawal(signup: Signup) -> Ending:
    """Withdrawing a sign-up announces SignupWithdrawn only when it was submitted."""
    return Ending("withdrawn", announce=signup.status == "submitted")


def erasure(signup: Signup) -> bool:
    """Erasing a participant's personal data blanks it and announces the erasure (a tombstone on the
    region's participants topic) once: True while it is not erased yet; erasing again changes nothing.
    Erasing does not withdraw the sign-up."""
    return signup.erased_at is None


def erased(signup: Signup, at: datetime) -> Signup:
    """The sign-up without personal data: name, e-mail address and learning goal blank, erased at `at`."""
    return replace(signup, name="", email="", learning_goal="", erased_at=at)


# --- relay (issue 10) ------------------------------------------------------------------------------
#: A relay leg's state: `planned` (may be re-planned), `holding` (its region holds the baton), `handed_over`.
LegStatus = Literal["planned", "holding", "handed_over"]
#: A knowledge item's moderation state; `pending`: shareable feedback nobody moderated yet.
KnowledgeStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class DateLimits:
    """Which dates are possible at all (settings `max_years_past`, `max_years_ahead`, `max_edition_days`):
    editions, offers and relay legs more than `max_years_past` years before the platform clock's today or
    more than `max_years_ahead` years after it are refused, and editions longer than `max_edition_days`."""

    max_years_past: int = 1
    max_years_ahead: int = 5
    max_edition_days: int = 31


def _years_from(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def check_date_window(day: date, now: datetime, limits: DateLimits, field: str) -> None:
    """`day` lies within `limits` of `now` (the platform clock): 422 `date_too_early` / `date_too_late`."""
    today = now.date()
    earliest, latest = _years_from(today, -limits.max_years_past), _years_from(today, limits.max_years_ahead)
    if day < earliest:
        raise RuleViolation(
            "date_too_early", f"{field} {day} is more than {limits.max_years_past} year(s) in the past", field
        )
    if day > latest:
        raise RuleViolation(
            "date_too_late", f"{field} {day} is more than {limits.max_years_ahead} years ahead", field
        )


def check_edition_window(edition: Edition, now: datetime, limits: DateLimits) -> None:
    """An edition's days are possible dates (`check_date_window`) and it lasts at most
    `limits.max_edition_days` days (422 `edition_too_long`)."""
    check_date_window(edition.starts_on, now, limits, "starts_on")
    check_date_window(edition.ends_on, now, limits, "ends_on")
    days = (edition.ends_on - edition.starts_on).days + 1
    if days > limits.max_edition_days:
        raise RuleViolation(
            "edition_too_long", f"the edition lasts {days} days; at most {limits.max_edition_days} are possible", "ends_on"
        )


@dataclass(frozen=True)
class RelayLeg:
    """One region's part of the national relay: it holds the baton from the start of `first_day` to the
    end of `last_day` in its region's time zone (`timezone`, from the registry when planned)."""

    id: str
    region: str
    #: The edition or activity id the leg belongs to.
    edition: str
    first_day: date
    last_day: date
    position: int
    activity: str = ""
    #: The coordinator stated that gaps next to this leg are intended.
    allow_gap: bool = False
    timezone: str = "Europe/Amsterdam"
    status: LegStatus = "planned"
    started_at: datetime | None = None
    handed_over_at: datetime | None = None
    #: Handed over by its region's organiser before its end.
    early: bool = False
    #: The leg the baton went to (None: not handed over, or the last leg).
    to_leg_id: str | None = None

    @property
    def starts_at(self) -> datetime:
        """The start of its first day in its region's time zone (its `relay_leg_start` step)."""
        return datetime.combine(self.first_day, time(0), ZoneInfo(self.timezone))

    @property
    def ends_at(self) -> datetime:
        """The end of its last day in its region's time zone (its `relay_handover` step)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), ZoneInfo(self.timezone))

    def planned_as(self, other: RelayLeg) -> bool:
        """Does `other` plan the same as this leg (nothing to store or announce)?"""
        fields = ("region", "edition", "first_day", "last_day", "position", "activity", "allow_gap", "timezone")
        return all(getattr(self, f) == getattr(other, f) for f in fields)


@dataclass(frozen=True)
class BatonMove:
    """A decision on the baton: hand `hand_over` over (to `to`, None after the last leg), and/or start
    `start` now. The service stores the legs and publishes RelayLegHandedOver / RelayLegStarted."""

    hand_over: RelayLeg | None = None
    to: RelayLeg | None = None
    early: bool = False
    start: RelayLeg | None = None


def check_relay_planner(principal: Principal) -> None:
    """The national coordinator (the `national` role) plans the relay; an admin may too (403 otherwise)."""
    if principal.role not in ("national", "admin"):
        raise Forbidden("forbidden", f"the {principal.role} role may not plan the relay")


def leg_in_region(leg: RelayLeg, region: RegionRecord | None) -> RelayLeg:
    """A leg is planned in a region of the registry (`region`: its record, None when it has none), in
    that region's time zone (422 `unknown_region`)."""
    if region is None:
        raise RuleViolation("unknown_region", f"region {leg.region} is not in the region registry", "region")
    return replace(leg, timezone=region.timezone)


def check_leg(leg: RelayLeg, now: datetime, limits: DateLimits) -> None:
    """A leg's days are possible dates and its last day is not before its first."""
    check_date_window(leg.first_day, now, limits, "first_day")
    check_date_window(leg.last_day, now, limits, "last_day")
    if leg.last_day < leg.first_day:
        raise RuleViolation("invalid_dates", "last_day is before first_day", "last_day")


def check_plan(current: RelayLeg | None, leg: RelayLeg, others: Sequence[RelayLeg]) -> None:
    """May `leg` be planned (or re-planned: `current` is how it is planned now) beside the `others`?
    A leg that has started cannot change (409 `relay_leg_started`). Positions are unique (422
    `relay_position_taken`); in the order of their positions, each leg starts after the previous one
    ends (422 `relay_overlap`), and a leg at the next position (n + 1) on the day after it, unless one
    of the two states `allow_gap` (422 `relay_gap`); legs may be planned in any order (no gap is checked
    across a position not planned yet). Errors name the legs."""
    if current is not None and current.status != "planned":
        raise Conflict("relay_leg_started", f"relay leg {leg.id} has started: it cannot be re-planned")
    for other in others:
        if other.position == leg.position:
            raise RuleViolation(
                "relay_position_taken", f"position {leg.position} is relay leg {other.id}'s", "position"
            )
    ordered = sorted([*others, leg], key=lambda x: x.position)
    pairs = list(zip(ordered, ordered[1:], strict=False))
    for before, after in pairs:
        field = "first_day" if after is leg else "last_day"
        if after.first_day <= before.last_day:
            raise RuleViolation(
                "relay_overlap",
                f"relay leg {after.id} (position {after.position}) starts on {after.first_day}, before relay leg"
                f" {before.id} (position {before.position}) ends on {before.last_day}",
                field,
            )
    for before, after in pairs:
        field = "first_day" if after is leg else "last_day"
        gap = after.first_day > before.last_day + timedelta(days=1)
        if gap and after.position == before.position + 1 and not (before.allow_gap or after.allow_gap):
            raise RuleViolation(
                "relay_gap",
                f"relay leg {after.id} (position {after.position}) starts on {after.first_day}, not the day after"
                f" relay leg {before.id} (position {before.position}) ends on {before.last_day}"
                " (say allow_gap: true if the gap is intended)",
                field,
            )


def _holder(legs: Sequence[RelayLeg]) -> RelayLeg | None:
    return next((x for x in legs if x.status == "holding"), None)


def _next_planned(legs: Sequence[RelayLeg], leg: RelayLeg) -> RelayLeg | None:
    after = [x for x in legs if x.position > leg.position and x.status == "planned"]
    return min(after, key=lambda x: x.position, default=None)


def scheduled_start(legs: Sequence[RelayLeg], leg_id: str) -> BatonMove | None:
    """A leg's first day has begun (its `relay_leg_start` step): it starts, unless it has already
    (started early, or handed over: None, nothing changes). One region holds the baton at a time: a leg
    still holding it (its own hand-over step not run yet) hands it over to this one first."""
    leg = next((x for x in legs if x.id == leg_id), None)
    if leg is None or leg.status != "planned":
        return None
    holder = _holder(legs)
    if holder is not None:
        return BatonMove(hand_over=holder, to=leg, start=leg)
    return BatonMove(start=leg)


def scheduled_handover(legs: Sequence[RelayLeg], leg_id: str, now: datetime) -> BatonMove | None:
    """A leg's last day has ended (its `relay_handover` step): it hands the baton over to the next
    planned leg, which starts now if its first day has begun (else at its own start). A leg that does
    not hold the baton (handed over early, or never started) changes nothing (None)."""
    leg = next((x for x in legs if x.id == leg_id), None)
    if leg is None or leg.status != "holding":
        return None
    to = _next_planned(legs, leg)
    return BatonMove(hand_over=leg, to=to, start=to if to is not None and to.starts_at <= now else None)


def early_handover(legs: Sequence[RelayLeg], leg_id: str, principal: Principal) -> BatonMove:
    """The holding region's organiser (or an admin) hands the baton over before the leg's end: the next
    planned leg starts now. Another region's organiser: 403 `forbidden_region`; a leg that does not hold
    the baton: 409 `relay_leg_not_holding`."""
    leg = next((x for x in legs if x.id == leg_id), None)
    if leg is None:
        raise NotFound("unknown_relay_leg", f"relay leg {leg_id} does not exist")
    if principal.role != "admin" and not (principal.role == "organiser" and principal.sees(leg.region)):
        raise Forbidden("forbidden_region", f"only the organisers of region {leg.region} hand its baton over")
    if leg.status != "holding":
        raise Conflict("relay_leg_not_holding", f"relay leg {leg_id} does not hold the baton")
    to = _next_planned(legs, leg)
    return BatonMove(hand_over=leg, to=to, early=True, start=to)


def started(leg: RelayLeg, now: datetime) -> RelayLeg:
    return replace(leg, status="holding", started_at=now)


def handed_over(leg: RelayLeg, to: RelayLeg | None, now: datetime, *, early: bool) -> RelayLeg:
    return replace(leg, status="handed_over", handed_over_at=now, early=early, to_leg_id=to.id if to else None)


def local_day(leg: RelayLeg, now: datetime) -> date:
    """The day it is now in the leg's region."""
    return now.astimezone(ZoneInfo(leg.timezone)).date()


@dataclass(frozen=True)
class KnowledgeItem:
    """A shareable feedback as its region's organiser moderates it: pending, approved (with the text as
    approved, names removed) or rejected (with a reason); `leg_id`: the relay leg it travelled with."""

    feedback: Feedback
    edition_id: str
    region: str
    offer_title: str
    host_org: str
    status: KnowledgeStatus = "pending"
    text: str = ""
    reason: str = ""
    decided_at: datetime | None = None
    leg_id: str | None = None


def moderation(item: KnowledgeItem, decision: Literal["approved", "rejected"]) -> bool:
    """May the organiser approve or reject this feedback now? Only shareable feedback (409
    `not_shareable`); once decided, the same decision again changes nothing (False), the other one is
    refused (409 `already_moderated`). True: store and announce the decision."""
    if not item.feedback.share_publicly:
        raise Conflict("not_shareable", f"feedback {item.feedback.id} may not be shared: it is no knowledge item")
    if item.status == "pending":
        return True
    if item.status == decision:
        return False
    raise Conflict("already_moderated", f"knowledge item {item.feedback.id} was already {item.status}")


def approved(item: KnowledgeItem, text: str | None, now: datetime) -> KnowledgeItem:
    """The item approved at `now` with `text` (the organiser's edit that removes names) or, without
    one, the participant's words; an empty text is refused (422 `empty_text`)."""
    final = (text if text is not None else item.feedback.learned).strip()
    if not final:
        raise RuleViolation("empty_text", "a knowledge item needs a text", "text")
    return replace(item, status="approved", text=final, decided_at=now)


def rejected(item: KnowledgeItem, reason: str, now: datetime) -> KnowledgeItem:
    return replace(item, status="rejected", reason=reason, decided_at=now)
