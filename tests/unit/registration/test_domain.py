from datetime import UTC, date, datetime

import pytest

from estafette.runtime.http import Conflict, Unprocessable
from services.registration.domain import Edition, OfferRef, check_edition_dates, check_offer, check_signup

EDITION = Edition("e1", "twente", "Week", datetime(2027, 5, 1, tzinfo=UTC), date(2027, 5, 31), date(2027, 6, 4), ["nl"], "open")
OFFERS = {
    "o1": OfferRef("o1", "e1", "host-a", date(2027, 6, 1), "published"),
    "o2": OfferRef("o2", "e1", "host-b", date(2027, 6, 2), "cancelled"),
    "x1": OfferRef("x1", "other", "host-c", date(2027, 6, 1), "published"),
}
BEFORE = datetime(2027, 4, 1, tzinfo=UTC)


def test_a_valid_signup_passes():
    check_signup(EDITION, BEFORE, "org-z", ["o1"], [date(2027, 6, 1)], OFFERS)


@pytest.mark.parametrize(
    ("now", "org", "choices", "available", "code", "field"),
    [
        (datetime(2027, 5, 2, tzinfo=UTC), "org-z", ["o1"], None, "deadline_passed", None),
        (BEFORE, "org-z", ["o1", "o1"], None, "duplicate_choice", "choices"),
        (BEFORE, "org-z", ["o1", "x1"], None, "unknown_offer", "choices.1"),
        (BEFORE, "org-z", ["nope"], None, "unknown_offer", "choices.0"),
        (BEFORE, "org-z", ["o2"], None, "offer_cancelled", "choices.0"),
        (BEFORE, "host-a", ["o1"], None, "own_organisation", "choices.0"),
        (BEFORE, "org-z", ["o1"], [date(2027, 7, 1)], "date_outside_edition", "available.0"),
    ],
)
def test_signup_rules(now, org, choices, available, code, field):
    with pytest.raises((Conflict, Unprocessable)) as exc:
        check_signup(EDITION, now, org, choices, available, OFFERS)
    assert (exc.value.code, exc.value.field) == (code, field)


def test_closed_edition_takes_no_offers_or_signups():
    closed = Edition(**{**EDITION.__dict__, "status": "closed"})
    with pytest.raises(Conflict):
        check_offer(closed, date(2027, 6, 1))
    with pytest.raises(Conflict):
        check_signup(closed, BEFORE, "org-z", ["o1"], None, OFFERS)


def test_edition_dates():
    with pytest.raises(Unprocessable):
        check_edition_dates(date(2027, 6, 4), date(2027, 5, 31), datetime(2027, 5, 1, tzinfo=UTC))
    with pytest.raises(Unprocessable):
        check_edition_dates(date(2027, 5, 31), date(2027, 6, 4), datetime(2027, 7, 1, tzinfo=UTC))
    with pytest.raises(Unprocessable):
        check_offer(EDITION, date(2027, 7, 1))
