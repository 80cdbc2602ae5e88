"""Registration rules and types (pure: no I/O, no framework).

The API has validated the shapes (ids, e-mail address, lengths); these rules need context: the
edition, the offers a participant chose, the current state. A rule either raises a domain error
(`estafette.runtime.errors`) or returns a decision that the service executes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from estafette.runtime.access import Principal
from estafette.runtime.errors import Conflict, Forbidden, RuleViolation
from schemas.regions import RegionRecord

EditionStatus = Literal["open", "closed"]
OfferStatus = Literal["published", "cancelled"]
SignupStatus = Literal["submitted", "withdrawn"]


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


def _check_open(edition: Edition) -> None:
    if edition.status != "open":
        raise Conflict("edition_closed", f"edition {edition.id} is closed")


def _check_within(edition: Edition, day: date, what: str, field: str) -> None:
    if not edition.starts_on <= day <= edition.ends_on:
        raise RuleViolation(
            "date_outside_edition",
            f"{what} {day} is outside edition {edition.id} ({edition.starts_on} to {edition.ends_on})",
            field,
        )


def check_offer(edition: Edition, offer: Offer) -> None:
    """An offer is published only in an open edition, on one of the edition's days."""
    _check_open(edition)
    _check_within(edition, offer.date, "date", "date")


def check_signup(edition: Edition, signup: Signup, offers: Mapping[str, Offer]) -> None:
    """A sign-up is taken while the edition is open and before its deadline (at `signup.signed_up_at`);
    its choices are distinct, published offers of this edition, not hosted by the participant's own
    organisation; its available dates are days of the edition.

    `offers`: the offers named in the choices that exist (in any edition).
    """
    _check_open(edition)
    if signup.signed_up_at > edition.signup_deadline:
        raise Conflict(
            "deadline_passed",
            f"the sign-up deadline of edition {edition.id} passed at {edition.signup_deadline.isoformat()}",
        )
    if len(set(signup.choices)) != len(signup.choices):
        raise RuleViolation("duplicate_choice", "each offer may be chosen once", "choices")
    for i, offer_id in enumerate(signup.choices):
        offer = offers.get(offer_id)
        if offer is None or offer.edition_id != edition.id:
            raise RuleViolation("unknown_offer", f"offer {offer_id} is not an offer of edition {edition.id}", f"choices.{i}")
        if offer.status != "published":
            raise RuleViolation("offer_cancelled", f"offer {offer_id} was cancelled", f"choices.{i}")
        if offer.host_org == signup.org:
            raise RuleViolation("own_organisation", f"offer {offer_id} is hosted by your own organisation", f"choices.{i}")
    for i, day in enumerate(signup.available or []):
        _check_within(edition, day, "available date", f"available.{i}")


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
    """Closing an open edition announces EditionClosed; closing a closed one changes nothing."""
    return Ending("closed", announce=edition.status == "open")


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
    """The sign-up without personal data: name and e-mail address blank, erased at `at`."""
    return replace(signup, name="", email="", erased_at=at)
