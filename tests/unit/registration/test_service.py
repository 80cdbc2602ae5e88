"""Registration's use cases against the fake unit of work: what each stores and publishes, and that a
refused request stores nothing and publishes nothing. Milliseconds, no infrastructure."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from estafette.runtime.access import ANONYMOUS, Principal
from estafette.runtime.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation
from schemas import (
    EditionClosed,
    EditionOpened,
    OfferCancelled,
    OfferPublished,
    ParticipantRegistered,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.registration import service
from tests.unit.registration.builders import (
    ADMIN,
    AFTER_DEADLINE,
    DAY_IN,
    DAY_OUT,
    EDITION_ID,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    offer_request,
    participant,
    registry,
    signup,
    signup_request,
)
from tests.unit.registration.fakes import FakeRegions, FakeRegistrationUow, FakeRepository, region

CID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def given(*, editions: tuple = (edition(),), offers: tuple = (offer(),), signups: tuple = ()) -> FakeRegistrationUow:
    return FakeRegistrationUow(FakeRepository(editions, offers, signups))


async def refused(
    uow: FakeRegistrationUow, call: Callable[[], Awaitable[Any]], error: type[DomainError], code: str
) -> DomainError:
    """Run a use case that must be refused; assert that it stored and published nothing."""
    before = copy.deepcopy(vars(uow.repo)), list(uow.published), list(uow.raw), uow.commits, uow.rollbacks
    with pytest.raises(error) as exc:
        await call()
    assert exc.value.code == code
    assert (vars(uow.repo), uow.published, uow.raw, uow.commits) == before[:4]
    assert uow.rollbacks in (before[4], before[4] + 1)  # rolled back, or refused before a transaction opened
    return exc.value


def submit(uow: FakeRegistrationUow, edition_id: str = EDITION_ID, now: Any = NOW, **changes: Any) -> Awaitable[Any]:
    return service.submit_signup(uow, edition_id, **signup_request(**changes), correlation_id=CID, now=now)


def open_edition(uow: FakeRegistrationUow, new: Any, principal: Principal = ORGANISER, regions: FakeRegions | None = None) -> Awaitable[Any]:
    return service.open_edition(uow, new, registry=regions or registry(), principal=principal, correlation_id=CID)


# --- editions ---------------------------------------------------------------------------------
async def test_open_edition_stores_it_and_publishes_edition_opened():
    uow, new = given(editions=()), edition(id="twente-2027")
    assert await open_edition(uow, new) == new
    assert uow.repo.edition_rows == {"twente-2027": new}
    [event] = uow.published
    assert isinstance(event, EditionOpened)
    assert (event.edition, event.key, event.region, event.name, event.correlation_id) == (
        "twente-2027", "twente-2027", "twente", new.name, CID,
    )
    assert (event.signup_deadline, event.starts_on, event.ends_on, event.languages) == (
        new.signup_deadline, new.starts_on, new.ends_on, new.languages,
    )


async def test_open_edition_refuses_bad_dates_and_an_existing_id():
    uow = given()
    bad = edition(id="e2", starts_on=DAY_OUT)  # after ends_on
    await refused(uow, lambda: open_edition(uow, bad), RuleViolation, "invalid_dates")
    again = edition(name="Another name")
    await refused(uow, lambda: open_edition(uow, again), Conflict, "edition_exists")
    assert uow.rollbacks == 1  # the dates are refused before a transaction opens; the existing id rolls back


@pytest.mark.parametrize(
    ("new", "principal", "code", "field"),
    [
        (edition(id="e2", region="nowhere"), ADMIN, "unknown_region", "region"),
        (edition(id="e2", region="groningen", languages=["nl", "en"]), ADMIN, "language_not_offered", "languages"),
        (edition(id="e2", languages=["de"]), ORGANISER, None, None),  # twente offers de
    ],
)
async def test_open_edition_only_in_a_region_of_the_registry_in_its_languages(new, principal, code, field):
    uow = given()
    if code is None:
        assert await open_edition(uow, new, principal) == new
    else:
        error = await refused(uow, lambda: open_edition(uow, new, principal), RuleViolation, code)
        assert error.field == field


async def test_a_region_added_to_the_registry_takes_editions_at_once():
    uow, regions, new = given(), registry(), edition(id="veluwe-2027", region="veluwe", languages=["nl"])
    await refused(uow, lambda: open_edition(uow, new, ADMIN, regions), RuleViolation, "unknown_region")
    regions.regions["veluwe"] = region("veluwe")  # `estafette regions apply` while the service runs
    assert await open_edition(uow, new, ADMIN, regions) == new
    assert [e.region for e in uow.of_type(EditionOpened)] == ["veluwe"]


async def test_an_organiser_naming_another_region_is_forbidden_before_the_registry_is_asked():
    uow = given()
    await refused(uow, lambda: open_edition(uow, edition(id="e2", region="nowhere"), OTHER_ORGANISER), Forbidden, "forbidden_region")


async def test_the_regions_of_the_registry_by_id():
    assert [r.id for r in service.regions(registry())] == ["groningen", "twente"]


async def test_close_edition_publishes_edition_closed_once():
    uow = given()
    await service.close_edition(uow, EDITION_ID, reason="full", principal=ORGANISER, correlation_id=CID)
    await service.close_edition(uow, EDITION_ID, reason="again", principal=ORGANISER, correlation_id=CID)
    assert uow.repo.edition_rows[EDITION_ID].status == "closed"
    [event] = uow.published
    assert isinstance(event, EditionClosed)
    assert (event.edition, event.region, event.reason, event.correlation_id) == (EDITION_ID, "twente", "full", CID)


async def test_close_an_unknown_edition():
    uow = given()
    await refused(uow, lambda: service.close_edition(uow, "nope", principal=ORGANISER, correlation_id=CID), NotFound, "unknown_edition")


async def test_edition_overview_counts_published_offers_and_submitted_signups():
    uow = given(
        offers=(offer("o1"), offer("o2", status="cancelled"), offer("x1", edition_id="other")),
        signups=(signup("s1"), signup("s2", email="b@example.org", status="withdrawn")),
    )
    overview = await service.edition_overview(uow, EDITION_ID)
    assert overview.edition == edition()
    assert (overview.counts.offers, overview.counts.signups) == (1, 1)
    assert uow.published == []
    await refused(uow, lambda: service.edition_overview(uow, "nope"), NotFound, "unknown_edition")


# --- offers -----------------------------------------------------------------------------------
async def test_publish_offer_stores_it_and_publishes_offer_published():
    uow = given(offers=())
    stored = await service.publish_offer(uow, EDITION_ID, **offer_request(offer_id="bakery", max_per_org=2), principal=ORGANISER, correlation_id=CID)
    assert uow.repo.offer_rows == {"bakery": stored}
    assert (stored.edition_id, stored.status, stored.location) == (EDITION_ID, "published", "Enschede")
    [event] = uow.published
    assert isinstance(event, OfferPublished)
    assert (event.offer_id, event.key, event.edition, event.host_org, event.date, event.capacity, event.max_per_org) == (
        "bakery", "bakery", EDITION_ID, "host-a", DAY_IN, 4, 2,
    )
    assert (event.format, event.location, event.correlation_id) == ("visit", "Enschede", CID)


async def test_publish_offer_without_an_id_gets_a_new_one():
    uow = given(offers=())
    first = await service.publish_offer(uow, EDITION_ID, **offer_request(), principal=ORGANISER, correlation_id=CID)
    second = await service.publish_offer(uow, EDITION_ID, **offer_request(), principal=ORGANISER, correlation_id=CID)
    assert first.id.startswith("o-") and second.id.startswith("o-") and first.id != second.id
    assert [e.offer_id for e in uow.of_type(OfferPublished)] == [first.id, second.id]


@pytest.mark.parametrize(
    ("editions", "edition_id", "changes", "error", "code"),
    [
        ((edition(),), "nope", {}, NotFound, "unknown_edition"),
        ((edition(status="closed"),), EDITION_ID, {}, Conflict, "edition_closed"),
        ((edition(),), EDITION_ID, {"date": DAY_OUT}, RuleViolation, "date_outside_edition"),
        ((edition(),), EDITION_ID, {"offer_id": "o1"}, Conflict, "offer_exists"),
    ],
)
async def test_publish_offer_refusals(editions, edition_id, changes, error, code):
    uow = given(editions=editions)
    request = offer_request(**changes)
    await refused(uow, lambda: service.publish_offer(uow, edition_id, **request, principal=ORGANISER, correlation_id=CID), error, code)


async def test_cancel_offer_publishes_offer_cancelled_only_when_it_was_published():
    uow = given()
    await service.cancel_offer(uow, EDITION_ID, "o1", principal=ORGANISER, correlation_id=CID)
    await service.cancel_offer(uow, EDITION_ID, "o1", principal=ORGANISER, correlation_id=CID)
    assert uow.repo.offer_rows["o1"].status == "cancelled"
    [event] = uow.published
    assert isinstance(event, OfferCancelled)
    assert (event.offer_id, event.edition, event.correlation_id) == ("o1", EDITION_ID, CID)
    assert uow.commits == 2


@pytest.mark.parametrize(
    ("edition_id", "offer_id", "code"),
    [("nope", "o1", "unknown_edition"), (EDITION_ID, "nope", "unknown_offer"), (EDITION_ID, "x1", "unknown_offer")],
)
async def test_cancel_offer_refusals(edition_id, offer_id, code):
    uow = given(editions=(edition(), edition(id="other")), offers=(offer("o1"), offer("x1", edition_id="other")))
    await refused(uow, lambda: service.cancel_offer(uow, edition_id, offer_id, principal=ORGANISER, correlation_id=CID), NotFound, code)


async def test_offers_lists_the_editions_offers_by_date():
    later, earlier = offer("a-late", date=DAY_IN.replace(day=3)), offer("z-early", date=DAY_IN)
    uow = given(offers=(later, earlier, offer("x1", edition_id="other")))
    assert await service.offers(uow, EDITION_ID) == [earlier, later]
    await refused(uow, lambda: service.offers(uow, "nope"), NotFound, "unknown_edition")


# --- sign-ups ---------------------------------------------------------------------------------
async def test_submit_signup_stores_it_and_publishes_signup_submitted_and_the_participants_details():
    uow = given(offers=(offer("o1"), offer("o2", host_org="host-b")))
    stored = await submit(uow, choices=["o2", "o1"], available=[DAY_IN], max_visits=2, language="de")
    assert stored.id.startswith("s-") and uow.repo.signup_rows == {stored.id: stored}
    assert (stored.edition_id, stored.status, stored.signed_up_at, stored.choices) == (EDITION_ID, "submitted", NOW, ["o2", "o1"])
    assert (stored.name, stored.email, stored.erased_at) == ("Anna de Vries", "anna@example.org", None)
    event, person = uow.published
    assert isinstance(event, SignupSubmitted)
    assert (event.signup_id, event.key, event.edition, event.region, event.correlation_id) == (
        stored.id, stored.id, EDITION_ID, "twente", CID,
    )
    assert (event.org, event.language, event.choices, event.available, event.max_visits, event.signed_up_at) == (
        "org-z", "de", ["o2", "o1"], [DAY_IN], 2, NOW,
    )
    # contract v2: the sign-up carries no personal data; the participant's details go on their own topic
    assert "Anna" not in event.model_dump_json() and "anna@example.org" not in event.model_dump_json()
    assert isinstance(person, ParticipantRegistered)
    assert (person.signup_id, person.key, person.edition, person.region, person.correlation_id) == (
        stored.id, stored.id, EDITION_ID, "twente", CID,
    )
    assert (person.name, person.email, person.language) == ("Anna de Vries", "anna@example.org", "de")
    assert uow.raw == []


@pytest.mark.parametrize(
    ("editions", "edition_id", "now", "changes", "error", "code"),
    [
        ((edition(),), "nope", NOW, {}, NotFound, "unknown_edition"),
        ((edition(status="closed"),), EDITION_ID, NOW, {}, Conflict, "edition_closed"),
        ((edition(),), EDITION_ID, AFTER_DEADLINE, {}, Conflict, "deadline_passed"),
        ((edition(),), EDITION_ID, NOW, {"choices": ["o1", "o1"]}, RuleViolation, "duplicate_choice"),
        ((edition(),), EDITION_ID, NOW, {"choices": ["x1"]}, RuleViolation, "unknown_offer"),
        ((edition(),), EDITION_ID, NOW, {"choices": ["nope"]}, RuleViolation, "unknown_offer"),
        ((edition(),), EDITION_ID, NOW, {"choices": ["o2"]}, RuleViolation, "offer_cancelled"),
        ((edition(),), EDITION_ID, NOW, {"org": "host-a"}, RuleViolation, "own_organisation"),
        ((edition(),), EDITION_ID, NOW, {"available": [DAY_OUT]}, RuleViolation, "date_outside_edition"),
    ],
)
async def test_submit_signup_refusals_store_and_publish_nothing(editions, edition_id, now, changes, error, code):
    uow = given(editions=editions, offers=(offer("o1"), offer("o2", status="cancelled"), offer("x1", edition_id="other")))
    await refused(uow, lambda: submit(uow, edition_id, now, **changes), error, code)


async def test_one_active_signup_per_email_address_and_edition():
    uow = given()
    first = await submit(uow)
    error = await refused(uow, lambda: submit(uow, email="ANNA@example.org"), Conflict, "already_signed_up")
    assert error.field == "email" and uow.rollbacks == 1
    await service.withdraw_signup(uow, EDITION_ID, first.id, principal=ORGANISER, correlation_id=CID)
    again = await submit(uow)  # after a withdrawal the address may sign up again
    assert [e.signup_id for e in uow.of_type(SignupSubmitted)] == [first.id, again.id]
    assert [e.signup_id for e in uow.of_type(ParticipantRegistered)] == [first.id, again.id]


async def test_an_erased_signup_no_longer_holds_its_email_address():
    uow = given()
    first = await submit(uow)
    await service.erase_personal_data(uow, first.id, principal=ORGANISER, now=NOW)
    again = await submit(uow)  # the address is not known here any more
    assert uow.repo.signup_rows[again.id].email == "anna@example.org" and uow.repo.signup_rows[first.id].status == "submitted"


# --- erasure of personal data -----------------------------------------------------------------------
async def test_erasure_blanks_the_personal_data_and_publishes_a_tombstone_once():
    uow = given(signups=(signup("s1"), signup("s2", email="bea@example.org")))
    for _ in range(2):
        await service.erase_personal_data(uow, "s1", principal=ORGANISER, now=NOW)
    assert uow.repo.signup_rows["s1"] == replace(signup("s1"), name="", email="", erased_at=NOW)
    assert uow.repo.signup_rows["s2"] == signup("s2", email="bea@example.org")
    assert uow.raw == [("estafette.twente.participants.v2", "s1", "ParticipantErased", None)]
    assert uow.published == [] and uow.commits == 2


@pytest.mark.parametrize(
    ("principal", "error", "code"),
    [
        (ADMIN, None, None),
        (ORGANISER, None, None),
        (OTHER_ORGANISER, NotFound, "unknown_signup"),  # another region's sign-up: like an unknown one
        (NATIONAL, Forbidden, "forbidden"),
        (ANONYMOUS, NotFound, "unknown_signup"),
    ],
)
async def test_who_may_erase_personal_data(principal, error, code):
    uow = given(signups=(signup("s1"),))
    if error is None:
        await service.erase_personal_data(uow, "s1", principal=principal, now=NOW)
        assert [key for _, key, _, _ in uow.raw] == ["s1"]
    else:
        hidden = await refused(uow, lambda: service.erase_personal_data(uow, "s1", principal=principal, now=NOW), error, code)
        if error is NotFound:
            unknown = await refused(uow, lambda: service.erase_personal_data(uow, "s9", principal=principal, now=NOW), NotFound, code)
            assert (hidden.message, hidden.field) == (unknown.message.replace("s9", "s1"), unknown.field)


async def test_erasing_an_unknown_signup_is_not_found():
    uow = given(signups=(signup("s1"),))
    await refused(uow, lambda: service.erase_personal_data(uow, "s9", principal=ADMIN, now=NOW), NotFound, "unknown_signup")


async def test_withdraw_signup_publishes_signup_withdrawn_only_when_it_was_submitted():
    uow = given(signups=(signup("s1"),))
    await service.withdraw_signup(uow, EDITION_ID, "s1", principal=ORGANISER, correlation_id=CID)
    await service.withdraw_signup(uow, EDITION_ID, "s1", principal=ORGANISER, correlation_id=CID)
    assert uow.repo.signup_rows["s1"] == replace(signup("s1"), status="withdrawn")
    [event] = uow.published
    assert isinstance(event, SignupWithdrawn)
    assert (event.signup_id, event.key, event.edition, event.correlation_id) == ("s1", "s1", EDITION_ID, CID)


@pytest.mark.parametrize(
    ("edition_id", "signup_id", "code"),
    [("nope", "s1", "unknown_edition"), (EDITION_ID, "nope", "unknown_signup"), (EDITION_ID, "x1", "unknown_signup")],
)
async def test_withdraw_signup_refusals(edition_id, signup_id, code):
    uow = given(editions=(edition(), edition(id="other")), signups=(signup("s1"), signup("x1", edition_id="other")))
    await refused(uow, lambda: service.withdraw_signup(uow, edition_id, signup_id, principal=ORGANISER, correlation_id=CID), NotFound, code)


# --- who may do what: the scoping rule in the use cases ------------------------------------------
@pytest.mark.parametrize(
    ("principal", "error", "code"),
    [(ORGANISER, None, None), (ADMIN, None, None), (OTHER_ORGANISER, Forbidden, "forbidden_region"),
     (NATIONAL, Forbidden, "forbidden")],
)
async def test_who_may_open_an_edition(principal, error, code):
    uow, new = given(editions=()), edition(id="twente-2027")
    if error is None:
        assert await open_edition(uow, new, principal) == new
        assert [e.edition for e in uow.of_type(EditionOpened)] == ["twente-2027"]
    else:
        await refused(uow, lambda: open_edition(uow, new, principal), error, code)


#: Each use case that changes an edition's things, as the given principal (edition e1 of twente).
CHANGES: dict[str, Callable[[FakeRegistrationUow, Principal], Awaitable[Any]]] = {
    "close": lambda uow, p: service.close_edition(uow, EDITION_ID, principal=p, correlation_id=CID),
    "publish": lambda uow, p: service.publish_offer(uow, EDITION_ID, **offer_request(), principal=p, correlation_id=CID),
    "cancel": lambda uow, p: service.cancel_offer(uow, EDITION_ID, "o1", principal=p, correlation_id=CID),
    "withdraw": lambda uow, p: service.withdraw_signup(uow, EDITION_ID, "s1", principal=p, correlation_id=CID),
    "show sign-up": lambda uow, p: service.signup_details(uow, EDITION_ID, "s1", principal=p),
}
EVENTS = {"close": EditionClosed, "publish": OfferPublished, "cancel": OfferCancelled, "withdraw": SignupWithdrawn}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize(
    ("principal", "error", "code"),
    [
        (ORGANISER, None, None),
        (ADMIN, None, None),
        (OTHER_ORGANISER, NotFound, "unknown_edition"),
        (NATIONAL, Forbidden, "forbidden"),
        (ANONYMOUS, NotFound, "unknown_edition"),
        (participant("s2"), NotFound, "unknown_edition"),
    ],
)
async def test_an_editions_things_are_changed_by_its_organisers_and_admins(change, principal, error, code):
    uow = given(signups=(signup("s1"),))
    if error is None:
        await CHANGES[change](uow, principal)
        assert [type(e) for e in uow.published] == ([EVENTS[change]] if change in EVENTS else [])
    else:
        await refused(uow, lambda: CHANGES[change](uow, principal), error, code)


async def test_another_regions_edition_is_answered_exactly_like_an_unknown_one():
    uow = given()
    hidden = await refused(uow, lambda: CHANGES["close"](uow, OTHER_ORGANISER), NotFound, "unknown_edition")
    unknown = await refused(
        uow, lambda: service.close_edition(uow, "e2", principal=OTHER_ORGANISER, correlation_id=CID), NotFound,
        "unknown_edition",
    )
    assert (hidden.message, hidden.field) == (unknown.message.replace("e2", EDITION_ID), unknown.field)


@pytest.mark.parametrize("change", ["withdraw", "show sign-up"])
async def test_a_participant_acts_on_their_own_signup_only(change):
    uow = given(signups=(signup("s1"), signup("s2", email="bea@example.org")))
    await CHANGES[change](uow, participant("s1"))
    await refused(uow, lambda: CHANGES[change](uow, participant("s2")), NotFound, "unknown_edition")  # s2's link
    await refused(uow, lambda: CHANGES["close"](uow, participant("s1")), NotFound, "unknown_edition")


# --- the participant's link -----------------------------------------------------------------------
async def test_the_link_shows_the_signup_with_its_choices_in_order_and_changes_nothing():
    uow = given(offers=(offer("o1"), offer("o2", host_org="host-b", title="Webinar")), signups=(signup("s1", choices=["o2", "o1"]),))
    details = await service.signup_details(uow, EDITION_ID, "s1", principal=participant("s1"))
    assert (details.edition, details.signup) == (edition(), signup("s1", choices=["o2", "o1"]))
    assert [o.title for o in details.choices] == ["Webinar", "Een dag in de bakkerij"]
    assert uow.published == []


async def test_withdrawing_through_the_link_announces_it_once_and_says_so_each_time():
    uow = given(signups=(signup("s1"),))
    for _ in range(2):
        details = await service.withdraw_signup(uow, EDITION_ID, "s1", principal=participant("s1"), correlation_id=CID)
        assert (details.signup.id, details.signup.status, [o.id for o in details.choices]) == ("s1", "withdrawn", ["o1"])
    assert uow.repo.signup_rows["s1"].status == "withdrawn"
    [event] = uow.published
    assert isinstance(event, SignupWithdrawn) and event.signup_id == "s1"


async def test_a_link_to_a_signup_that_does_not_exist_is_not_found():
    uow = given()
    await refused(uow, lambda: service.signup_details(uow, EDITION_ID, "s9", principal=participant("s9")), NotFound, "unknown_signup")
