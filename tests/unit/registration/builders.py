"""THE builder module for registration test data: valid by default, override what a test is about.

The edition runs 2027-05-31 .. 2027-06-04 with its sign-up deadline on 2027-05-01; `NOW` is before it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from estafette.runtime.access import Principal
from services.registration.domain import Contact, Edition, Offer, Organisation, Signup
from tests.unit.registration.fakes import FakeRegions, region

EDITION_ID = "e1"
DEADLINE = datetime(2027, 5, 1, tzinfo=UTC)
NOW = datetime(2027, 4, 1, tzinfo=UTC)
AFTER_DEADLINE = datetime(2027, 5, 2, tzinfo=UTC)
DAY_IN = date(2027, 6, 1)
DAY_OUT = date(2027, 7, 1)


#: The region registry: twente offers nl, de and en (the edition's languages); groningen only nl.
TWENTE, GRONINGEN = region("twente", ("nl", "de", "en")), region("groningen")


def registry() -> FakeRegions:
    return FakeRegions((TWENTE, GRONINGEN))


#: Who is asking (the edition's region is twente).
ORGANISER = Principal("organiser", region="twente", subject="key:twente")
OTHER_ORGANISER = Principal("organiser", region="groningen", subject="key:groningen")
NATIONAL = Principal("national", subject="key:national")
ADMIN = Principal("admin", subject="key:admin")


def participant(signup_id: str = "s1", edition_id: str = EDITION_ID) -> Principal:
    """The person behind a sign-up, through their link."""
    return Principal("participant", signup_id=signup_id, edition_id=edition_id, subject=f"link:{signup_id}")


def edition(**overrides: Any) -> Edition:
    fields: dict[str, Any] = dict(
        id=EDITION_ID, region="twente", name="Week van de Uitwisseling", signup_deadline=DEADLINE,
        starts_on=date(2027, 5, 31), ends_on=date(2027, 6, 4), languages=["nl", "de", "en"],
    )
    return Edition(**{**fields, **overrides})


def offer(id: str = "o1", **overrides: Any) -> Offer:  # noqa: A002 - the domain's field name
    fields: dict[str, Any] = dict(edition_id=EDITION_ID, host_org="host-a", title="Een dag in de bakkerij", date=DAY_IN, capacity=4)
    return Offer(id=id, **{**fields, **overrides})


def offer_request(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of `service.publish_offer` (what the API passes)."""
    fields: dict[str, Any] = dict(
        offer_id=None, host_org="host-a", title="Een dag in de bakkerij", date=DAY_IN, capacity=4, max_per_org=None,
        format="visit", location="Enschede",
    )
    return {**fields, **overrides}


def signup_request(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of `service.submit_signup` (what the API passes)."""
    fields: dict[str, Any] = dict(
        org="org-z", name="Anna de Vries", email="anna@example.org", language="nl", choices=["o1"], available=None,
        max_visits=1, learning_goal="", consent=True,
    )
    return {**fields, **overrides}


def signup(id: str = "s1", **overrides: Any) -> Signup:  # noqa: A002 - the domain's field name
    fields: dict[str, Any] = {**signup_request(), "edition_id": EDITION_ID, "signed_up_at": NOW, "consented_at": NOW}
    del fields["consent"]
    return Signup(id=id, **{**fields, **overrides})


def organisation(id: str = "org-z", **overrides: Any) -> Organisation:  # noqa: A002 - the domain's field name
    fields: dict[str, Any] = dict(edition_id=EDITION_ID, name="Gemeente Zwolle",
                                  contact=Contact("Carla Chef", "carla@example.org", "de"))
    return Organisation(id=id, **{**fields, **overrides})
