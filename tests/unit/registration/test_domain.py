"""Registration's pure rules: the errors they raise (code, field) and the decisions they return."""

from __future__ import annotations

import pytest

from estafette.runtime.access import ANONYMOUS
from estafette.runtime.errors import Conflict, Forbidden, RuleViolation
from services.registration import domain
from tests.unit.registration.builders import (
    ADMIN,
    AFTER_DEADLINE,
    DAY_IN,
    DAY_OUT,
    GRONINGEN,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    TWENTE,
    edition,
    offer,
    participant,
    signup,
)

EDITION = edition()
OFFERS = {o.id: o for o in (offer("o1"), offer("o2", host_org="host-b", status="cancelled"), offer("x1", edition_id="other"))}


def test_a_valid_signup_passes():
    domain.check_signup(EDITION, signup(choices=["o1"], available=[DAY_IN]), OFFERS)


@pytest.mark.parametrize(
    ("changes", "error", "code", "field"),
    [
        ({"signed_up_at": AFTER_DEADLINE}, Conflict, "deadline_passed", None),
        ({"choices": ["o1", "o1"]}, RuleViolation, "duplicate_choice", "choices"),
        ({"choices": ["o1", "x1"]}, RuleViolation, "unknown_offer", "choices.1"),
        ({"choices": ["nope"]}, RuleViolation, "unknown_offer", "choices.0"),
        ({"choices": ["o2"]}, RuleViolation, "offer_cancelled", "choices.0"),
        ({"org": "host-a"}, RuleViolation, "own_organisation", "choices.0"),
        ({"available": [DAY_IN, DAY_OUT]}, RuleViolation, "date_outside_edition", "available.1"),
    ],
)
def test_signup_rules(changes, error, code, field):
    with pytest.raises(error) as exc:
        domain.check_signup(EDITION, signup(**changes), OFFERS)
    assert (exc.value.code, exc.value.field) == (code, field)


def test_the_deadline_itself_is_still_in_time():
    domain.check_signup(EDITION, signup(signed_up_at=EDITION.signup_deadline), OFFERS)


def test_closed_edition_takes_no_offers_or_signups():
    closed = edition(status="closed")
    for check in (lambda: domain.check_offer(closed, offer()), lambda: domain.check_signup(closed, signup(), OFFERS)):
        with pytest.raises(Conflict) as exc:
            check()
        assert exc.value.code == "edition_closed"


@pytest.mark.parametrize(("day", "ok"), [(EDITION.starts_on, True), (EDITION.ends_on, True), (DAY_OUT, False)])
def test_an_offer_is_on_a_day_of_the_edition(day, ok):
    if ok:
        domain.check_offer(EDITION, offer(date=day))
    else:
        with pytest.raises(RuleViolation) as exc:
            domain.check_offer(EDITION, offer(date=day))
        assert (exc.value.code, exc.value.field) == ("date_outside_edition", "date")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"starts_on": EDITION.ends_on, "ends_on": EDITION.starts_on}, "invalid_dates", "ends_on"),
        ({"signup_deadline": AFTER_DEADLINE.replace(month=7)}, "invalid_deadline", "signup_deadline"),
    ],
)
def test_edition_dates(changes, code, field):
    domain.check_edition_dates(EDITION)
    with pytest.raises(RuleViolation) as exc:
        domain.check_edition_dates(edition(**changes))
    assert (exc.value.code, exc.value.field) == (code, field)


@pytest.mark.parametrize(
    ("decide", "thing", "status", "announce"),
    [
        (domain.closing, edition(), "closed", True),
        (domain.closing, edition(status="closed"), "closed", False),
        (domain.cancellation, offer(), "cancelled", True),
        (domain.cancellation, offer(status="cancelled"), "cancelled", False),
        (domain.withdrawal, signup(), "withdrawn", True),
        (domain.withdrawal, signup(status="withdrawn"), "withdrawn", False),
    ],
)
def test_ending_is_announced_only_once(decide, thing, status, announce):
    assert decide(thing) == domain.Ending(status, announce)


# --- regions come from the registry ----------------------------------------------------------------
def test_an_edition_in_a_region_of_the_registry_in_its_languages_passes():
    domain.check_region(EDITION, TWENTE)  # nl, de, en in twente
    domain.check_region(edition(region="groningen", languages=["nl"]), GRONINGEN)


@pytest.mark.parametrize(
    ("changes", "record", "code", "field"),
    [
        ({"region": "nowhere"}, None, "unknown_region", "region"),
        ({"region": "groningen", "languages": ["nl", "de"]}, GRONINGEN, "language_not_offered", "languages"),
        ({"region": "groningen", "languages": ["en"]}, GRONINGEN, "language_not_offered", "languages"),
    ],
)
def test_an_edition_outside_the_registry_or_in_a_language_its_region_does_not_offer_is_refused(changes, record, code, field):
    with pytest.raises(RuleViolation) as exc:
        domain.check_region(edition(**changes), record)
    assert (exc.value.code, exc.value.field) == (code, field)
    if code == "language_not_offered":
        assert "groningen offers nl" in exc.value.message


# --- erasure of personal data ------------------------------------------------------------------------
def test_erasure_blanks_the_personal_data_once():
    person = signup(status="withdrawn")
    assert domain.erasure(person)
    erased = domain.erased(person, NOW)
    assert (erased.name, erased.email, erased.erased_at) == ("", "", NOW)
    assert (erased.id, erased.org, erased.choices, erased.status) == (person.id, person.org, person.choices, "withdrawn")
    assert not domain.erasure(erased)  # again: nothing to do


# --- who may do what (the scoping rule: estafette.runtime.access.Principal.sees) -----------------
@pytest.mark.parametrize(
    ("principal", "code"),
    [(ORGANISER, None), (ADMIN, None), (OTHER_ORGANISER, "forbidden_region"), (NATIONAL, "forbidden"),
     (participant(), "forbidden"), (ANONYMOUS, "forbidden")],
)
def test_who_may_open_an_edition_in_twente(principal, code):
    if code is None:
        domain.check_opening(principal, "twente")
    else:
        with pytest.raises(Forbidden) as exc:
            domain.check_opening(principal, "twente")
        assert exc.value.code == code
        assert exc.value.field == ("region" if code == "forbidden_region" else None)


@pytest.mark.parametrize(
    ("principal", "signup_id", "decision"),
    [
        (ORGANISER, None, "granted"),
        (ADMIN, None, "granted"),
        (OTHER_ORGANISER, None, "hidden"),  # answered like an unknown id
        (NATIONAL, None, "forbidden"),  # sees every region, changes nothing
        (ANONYMOUS, None, "hidden"),
        (participant("s1"), None, "hidden"),  # a link is for one sign-up, not for the edition
        (participant("s1"), "s1", "granted"),
        (participant("s2"), "s1", "hidden"),
        (ORGANISER, "s1", "granted"),
        (OTHER_ORGANISER, "s1", "hidden"),
        (NATIONAL, "s1", "forbidden"),
    ],
)
def test_access_to_an_editions_things(principal, signup_id, decision):
    assert domain.access(principal, "twente", signup_id=signup_id) == decision
