"""People (issue 11): the pure rules of services/registration/people.py (pages, late admission, available
dates, ids from natural keys, differences, error columns) and the use cases against the fake repository:
the people list (filters, pages, region scoping), one sign-up with its history, edits on someone's behalf
(audited, also after the deadline), late admissions (an explicit, audited override) and visitor lists."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest

from estafette.runtime.errors import Conflict, Forbidden, NotFound, RuleViolation
from schemas import ParticipantRegistered, SignupChanged, SignupSubmitted
from services.registration import people, service
from tests.unit.registration.builders import (
    ADMIN,
    AFTER_DEADLINE,
    DAY_IN,
    DAY_OUT,
    DEADLINE,
    EDITION_ID,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    signup,
)
from tests.unit.registration.fakes import FakeRegistrationUow
from tests.unit.registration.people_fakes import PeopleFakeRepository, placement

CORRELATION = uuid.UUID(int=7)


def at(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


# --- pure rules ----------------------------------------------------------------------------------------
def test_a_page_shows_at_most_the_limit_and_points_after_its_last_person():
    found = [people.Person(signup(f"s{i}", signed_up_at=at(i))) for i in range(4)]
    page = people.page_of(found, 3)
    assert [p.signup.id for p in page.people] == ["s0", "s1", "s2"]
    assert page.next == (at(2), "s2")
    last = people.page_of(found[:3], 3)
    assert (len(last.people), last.next) == (3, None)
    assert people.page_of([], 3) == people.PeoplePage([], None)


def test_a_late_admission_needs_a_reason_and_keeps_every_other_rule():
    late = signup(signed_up_at=AFTER_DEADLINE)
    offers = {"o1": offer("o1")}
    people.check_late_admission(edition(), late, offers, None, "came in by phone")
    with pytest.raises(RuleViolation) as no_reason:
        people.check_late_admission(edition(), late, offers, None, "   ")
    assert (no_reason.value.code, no_reason.value.field) == ("reason_required", "reason")
    with pytest.raises(RuleViolation) as bad_choice:
        people.check_late_admission(edition(), replace(late, choices=["nope"]), offers, None, "phone")
    assert bad_choice.value.code == "unknown_offer"
    with pytest.raises(Conflict) as closed:
        people.check_late_admission(edition(status="closed"), late, offers, None, "phone")
    assert closed.value.code == "edition_closed"


def test_available_dates_are_days_of_the_edition():
    people.check_available(edition(), None)
    people.check_available(edition(), [edition().starts_on, DAY_IN, edition().ends_on])
    with pytest.raises(RuleViolation) as refused:
        people.check_available(edition(), [DAY_IN, DAY_OUT])
    assert (refused.value.code, refused.value.field) == ("date_outside_edition", "available.1")


def test_ids_derive_from_natural_keys():
    offer_id = people.derived_offer_id("e1", "org-h1", "Roosters  plannen", DAY_IN)
    assert offer_id == people.derived_offer_id("e1", "org-h1", " roosters plannen ", DAY_IN)
    assert offer_id.startswith("o-") and len(offer_id) == 18
    assert offer_id != people.derived_offer_id("e2", "org-h1", "Roosters plannen", DAY_IN)
    assert offer_id != people.derived_offer_id("e1", "org-h2", "Roosters plannen", DAY_IN)
    assert offer_id != people.derived_offer_id("e1", "org-h1", "Roosters plannen", DAY_OUT)
    signup_id = people.derived_signup_id("e1", " Anna@Example.org")
    assert signup_id == people.derived_signup_id("e1", "anna@example.org") and signup_id.startswith("s-")
    assert signup_id != people.derived_signup_id("e2", "anna@example.org")


def test_differing_names_the_fields_in_order_and_column_of_reads_the_field():
    a, b = offer("o1"), offer("o1", capacity=9, title="Anders")
    assert people.differing(a, b, people.OFFER_FIELDS) == ["title", "capacity"]
    assert people.differing(a, a, people.OFFER_FIELDS) == []
    assert people.column_of(RuleViolation("unknown_offer", "x", "choices.2")) == "choices"
    assert people.column_of(RuleViolation("x", "x", "when"), {"when": "date"}) == "date"
    assert people.column_of(Conflict("x", "x")) is None


def test_an_import_result_counts_its_rows():
    result = people.ImportResult("offers", False, True, [
        people.RowOutcome(2, "a", "created"), people.RowOutcome(3, "b", "unchanged"), people.RowOutcome(4, "c", "created")],
        [])
    assert (result.created, result.unchanged) == (2, 1)


# --- the use cases -------------------------------------------------------------------------------------
def make_uow(*, signups=(), offers=(offer("o1"), offer("o2", host_org="host-b")), placements=(),
             **edition_fields) -> FakeRegistrationUow:
    return FakeRegistrationUow(PeopleFakeRepository(
        editions=[edition(**edition_fields), edition(id="e2", region="groningen")], offers=offers, signups=signups,
        placements=placements,
    ))


PEOPLE = [
    signup("s1", name="Anna de Vries", email="anna@example.org", org="org-a", signed_up_at=at(1)),
    signup("s2", name="Bert Bakker", email="bert@example.org", org="org-b", signed_up_at=at(2), choices=["o2"]),
    signup("s3", name="Cor", email="cor@devries.nl", org="org-a", signed_up_at=at(3), status="withdrawn"),
    signup("s4", name="Dirk", email="dirk@example.org", org="org-a", signed_up_at=at(4), edition_id="e2"),
]


async def listed(uow: FakeRegistrationUow, **where) -> list[str]:
    page = await service.people_list(uow, EDITION_ID, principal=ORGANISER, where=people.PeopleFilter(**where))
    return [p.signup.id for p in page.people]


async def test_the_people_list_filters_by_status_organisation_offer_and_text():
    uow = make_uow(signups=PEOPLE, placements=[placement("s1", "assigned", NOW, offer_id="o2", rank=2)])
    assert await listed(uow) == ["s1", "s2", "s3"]
    assert await listed(uow, status="withdrawn") == ["s3"]
    assert await listed(uow, org="org-a") == ["s1", "s3"]
    assert await listed(uow, offer="o2") == ["s1", "s2"]
    assert await listed(uow, text="VRIES") == ["s1", "s3"]
    assert await listed(uow, text="de vries") == ["s1"]
    page = await service.people_list(uow, EDITION_ID, principal=ORGANISER, where=people.PeopleFilter())
    assert page.people[0].placement.offer_id == "o2"


async def test_the_people_list_pages_with_a_cursor():
    uow = make_uow(signups=PEOPLE)
    first = await service.people_list(uow, EDITION_ID, principal=ORGANISER, where=people.PeopleFilter(), limit=2)
    assert ([p.signup.id for p in first.people], first.next) == (["s1", "s2"], (at(2), "s2"))
    rest = await service.people_list(uow, EDITION_ID, principal=ORGANISER, where=people.PeopleFilter(),
                                     after=first.next, limit=2)
    assert ([p.signup.id for p in rest.people], rest.next) == (["s3"], None)


@pytest.mark.parametrize(("principal", "error"), [(OTHER_ORGANISER, NotFound), (NATIONAL, Forbidden)])
async def test_people_are_shown_to_the_editions_region_only(principal, error):
    uow = make_uow(signups=PEOPLE)
    with pytest.raises(error):
        await service.people_list(uow, EDITION_ID, principal=principal, where=people.PeopleFilter())
    with pytest.raises(error):
        await service.person(uow, EDITION_ID, "s1", principal=principal, now=NOW)
    assert len((await service.people_list(uow, EDITION_ID, principal=ADMIN, where=people.PeopleFilter())).people) == 3


async def test_a_person_of_another_edition_is_not_found():
    with pytest.raises(NotFound) as refused:
        await service.person(make_uow(signups=PEOPLE), EDITION_ID, "s4", principal=ORGANISER, now=NOW)
    assert refused.value.code == "unknown_signup"


async def test_an_edit_on_someones_behalf_after_the_deadline_is_announced_and_audited():
    uow = make_uow(signups=PEOPLE)
    found = await service.edit_signup(uow, EDITION_ID, "s1", principal=ORGANISER, now=AFTER_DEADLINE,
                                      correlation_id=CORRELATION, choices=["o2", "o1"], max_visits=2)
    assert (found.details.signup.choices, found.details.signup.max_visits) == (["o2", "o1"], 2)
    (changed,) = uow.of_type(SignupChanged)
    assert (changed.signup_id, changed.choices, changed.max_visits, changed.correlation_id) == (
        "s1", ["o2", "o1"], 2, CORRELATION)
    assert uow.of_type(ParticipantRegistered) == []
    (entry,) = found.history
    assert (entry.kind, entry.at, entry.actor, dict(entry.details)) == (
        people.CHANGED_ON_BEHALF, AFTER_DEADLINE, "key:twente", {"changed": ["choices", "max_visits"]})
    assert uow.repo.signup_rows["s1"].choices == ["o2", "o1"]


async def test_after_the_deadline_an_organiser_still_sees_the_choices_as_changeable():
    # (the participant's own page says deadline_passed; the organiser's edit is not bound by it)
    found = await service.person(make_uow(signups=PEOPLE), EDITION_ID, "s1", principal=ORGANISER, now=AFTER_DEADLINE)
    assert found.details.change_refused is None
    found = await service.edit_signup(make_uow(signups=PEOPLE), EDITION_ID, "s1", principal=ORGANISER,
                                      now=AFTER_DEADLINE, correlation_id=CORRELATION, max_visits=2)
    assert found.details.change_refused is None


async def test_a_new_learning_goal_registers_the_participant_again():
    uow = make_uow(signups=PEOPLE)
    await service.edit_signup(uow, EDITION_ID, "s1", principal=ORGANISER, now=NOW, correlation_id=CORRELATION,
                              learning_goal="roosters maken")
    (registered,) = uow.of_type(ParticipantRegistered)
    assert (registered.signup_id, registered.name, registered.learning_goal) == ("s1", "Anna de Vries", "roosters maken")
    assert uow.of_type(SignupChanged) == []


async def test_an_edit_that_changes_nothing_stores_and_announces_nothing():
    uow = make_uow(signups=PEOPLE)
    found = await service.edit_signup(uow, EDITION_ID, "s1", principal=ORGANISER, now=NOW, correlation_id=CORRELATION,
                                      choices=["o1"], learning_goal="")
    assert uow.published == [] and found.history == []


@pytest.mark.parametrize(("fields", "edit", "code"), [
    ({}, {"choices": ["nope"]}, "unknown_offer"),
    ({}, {"available": [DAY_OUT]}, "date_outside_edition"),
    ({"placements": [placement("s1", "assigned", NOW, offer_id="o1", rank=1)]}, {"choices": ["o2"]}, "already_placed"),
    ({"status": "closed"}, {"choices": ["o2"]}, "edition_closed"),
    ({"status": "cancelled"}, {"learning_goal": "x"}, "edition_cancelled"),
    ({"signups": [replace(PEOPLE[0], erased_at=NOW, name="", email="")]}, {"learning_goal": "x"}, "personal_data_erased"),
])
async def test_an_edit_follows_the_participants_rules_but_the_deadline(fields, edit, code):
    uow = make_uow(**{"signups": PEOPLE, **fields})
    with pytest.raises((Conflict, RuleViolation)) as refused:
        await service.edit_signup(uow, EDITION_ID, "s1", principal=ORGANISER, now=AFTER_DEADLINE,
                                  correlation_id=CORRELATION, **edit)
    assert refused.value.code == code
    assert uow.published == [] and uow.repo.history_rows == []


async def test_a_withdrawn_signup_is_not_edited():
    with pytest.raises(Conflict) as refused:
        await service.edit_signup(make_uow(signups=PEOPLE), EDITION_ID, "s3", principal=ORGANISER, now=NOW,
                                  correlation_id=CORRELATION, choices=["o2"])
    assert refused.value.code == "signup_ended"


def admission(**overrides):
    fields = dict(org="org-z", name="Eva", email="eva@example.org", language="nl", choices=["o1"], consent=True,
                  correlation_id=CORRELATION)
    return {**fields, **overrides}


async def test_admitting_before_the_deadline_is_a_sign_up_without_audit():
    uow = make_uow()
    made = await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=NOW, **admission())
    assert (made.signed_up_at, made.consented_at) == (NOW, NOW)
    assert [type(e).__name__ for e in uow.published] == ["SignupSubmitted", "ParticipantRegistered"]
    assert uow.repo.history_rows == []


async def test_after_the_deadline_only_with_the_override_and_a_reason_audited():
    uow = make_uow()
    with pytest.raises(Conflict) as no_override:
        await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=AFTER_DEADLINE, **admission())
    assert no_override.value.code == "deadline_passed"
    with pytest.raises(RuleViolation) as no_reason:
        await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=AFTER_DEADLINE,
                                   **admission(override_deadline=True))
    assert no_reason.value.code == "reason_required"
    assert uow.published == [] and uow.repo.signup_rows == {}

    made = await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=AFTER_DEADLINE,
                                      **admission(override_deadline=True, reason="ziek geweest"))
    (submitted,) = uow.of_type(SignupSubmitted)
    assert (submitted.signup_id, submitted.signed_up_at) == (made.id, AFTER_DEADLINE)
    ((signup_id, edition_id, entry),) = uow.repo.history_rows
    assert (signup_id, edition_id, entry.kind, entry.at, entry.actor, entry.reason) == (
        made.id, EDITION_ID, people.LATE_ADMISSION, AFTER_DEADLINE, "key:twente", "ziek geweest")
    assert entry.details == {"deadline": DEADLINE.isoformat()}


async def test_an_admission_needs_consent_and_a_new_address():
    uow = make_uow(signups=PEOPLE)
    with pytest.raises(RuleViolation) as no_consent:
        await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=NOW, **admission(consent=False))
    assert no_consent.value.code == "consent_required"
    with pytest.raises(Conflict) as twice:
        await service.admit_signup(uow, EDITION_ID, principal=ORGANISER, now=NOW, **admission(email="ANNA@example.org"))
    assert twice.value.code == "already_signed_up"


async def test_an_offers_visitors_are_the_active_participants_assigned_to_it():
    uow = make_uow(signups=[*PEOPLE, signup("s5", name="Aad", email="aad@example.org", learning_goal="lassen")],
                   placements=[placement("s1", "assigned", NOW, offer_id="o1", rank=1),
                               placement("s5", "assigned", NOW, offer_id="o1", rank=1),
                               placement("s3", "assigned", NOW, offer_id="o1", rank=1),  # withdrawn since
                               placement("s2", "waitlisted", NOW, position=1, reason_code="capacity")])
    found_offer, visitors = await service.visitors(uow, EDITION_ID, "o1", principal=ORGANISER)
    assert found_offer.id == "o1"
    assert [(v.signup_id, v.name, v.learning_goal) for v in visitors] == [("s5", "Aad", "lassen"), ("s1", "Anna de Vries", "")]
    with pytest.raises(NotFound) as unknown:
        await service.visitors(uow, EDITION_ID, "o-nope", principal=ORGANISER)
    assert unknown.value.code == "unknown_offer"
    with pytest.raises(NotFound):
        await service.visitors(uow, EDITION_ID, "o1", principal=OTHER_ORGANISER)
