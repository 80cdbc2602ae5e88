"""Registration rules (pure: no I/O). Inputs are validated shapes; these rules need context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from estafette.runtime.http import Conflict, Unprocessable


@dataclass(frozen=True)
class Edition:
    id: str
    region: str
    name: str
    signup_deadline: datetime
    starts_on: date
    ends_on: date
    languages: list[str]
    status: str


@dataclass(frozen=True)
class OfferRef:
    id: str
    edition_id: str
    host_org: str
    date: date
    status: str


def check_edition_dates(starts_on: date, ends_on: date, signup_deadline: datetime) -> None:
    if ends_on < starts_on:
        raise Unprocessable("invalid_dates", "ends_on is before starts_on", "ends_on")
    if signup_deadline.date() > ends_on:
        raise Unprocessable("invalid_deadline", "signup_deadline is after the edition ends", "signup_deadline")


def check_offer(edition: Edition, offer_date: date) -> None:
    if edition.status != "open":
        raise Conflict("edition_closed", f"edition {edition.id} is closed")
    if not edition.starts_on <= offer_date <= edition.ends_on:
        raise Unprocessable(
            "date_outside_edition",
            f"date {offer_date} is outside edition {edition.id} ({edition.starts_on} to {edition.ends_on})",
            "date",
        )


def check_signup(
    edition: Edition,
    now: datetime,
    org: str,
    choices: list[str],
    available: list[date] | None,
    offers: dict[str, OfferRef],
) -> None:
    """`offers`: the offers named in `choices` that exist (any edition)."""
    if edition.status != "open":
        raise Conflict("edition_closed", f"edition {edition.id} is closed")
    if now > edition.signup_deadline:
        raise Conflict(
            "deadline_passed", f"the sign-up deadline of edition {edition.id} passed at {edition.signup_deadline.isoformat()}"
        )
    if len(set(choices)) != len(choices):
        raise Unprocessable("duplicate_choice", "each offer may be chosen once", "choices")
    for i, offer_id in enumerate(choices):
        offer = offers.get(offer_id)
        if offer is None or offer.edition_id != edition.id:
            raise Unprocessable("unknown_offer", f"offer {offer_id} is not an offer of edition {edition.id}", f"choices.{i}")
        if offer.status != "published":
            raise Unprocessable("offer_cancelled", f"offer {offer_id} was cancelled", f"choices.{i}")
        if offer.host_org == org:
            raise Unprocessable("own_organisation", f"offer {offer_id} is hosted by your own organisation", f"choices.{i}")
    for i, day in enumerate(available or []):
        if not edition.starts_on <= day <= edition.ends_on:
            raise Unprocessable("date_outside_edition", f"available date {day} is outside the edition", f"available.{i}")
