"""Reporting rules: which outcome wins, derived ratios, roll-ups, language negotiation."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from functools import reduce

import pytest

from schemas import (
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    OfferPublished,
    OfferSummary,
    Recipient,
    SeatOffered,
    SeatOfferEnded,
)
from services.reporting.domain import (
    EditionFigures,
    Version,
    average,
    national_totals,
    negotiate_language,
    region_totals,
    share,
    supersedes,
)
from services.reporting.handlers import match_state

T0 = datetime(2027, 5, 10, 9, 0, tzinfo=UTC)


def version(minutes: int, event_id: int = 1) -> Version:
    return Version(T0 + timedelta(minutes=minutes), uuid.UUID(int=event_id))


# --- which outcome wins -----------------------------------------------------------------------
def test_the_first_outcome_is_always_kept():
    assert supersedes(version(0), None)


def test_a_newer_outcome_replaces_the_stored_one_and_an_older_one_does_not():
    assert supersedes(version(5), version(0))
    assert not supersedes(version(0), version(5))


def test_a_redelivered_outcome_does_not_replace_itself():
    assert not supersedes(version(3, 7), version(3, 7))


def test_the_latest_outcome_wins_whatever_the_arrival_order():
    outcomes = [version(0, 9), version(10, 1), version(10, 4), version(2, 8)]

    def keep_latest(stored, new):
        return new if supersedes(new, stored) else stored

    winners = {reduce(keep_latest, order, None) for order in (outcomes, outcomes[::-1], outcomes[1:] + outcomes[:1])}
    assert winners == {version(10, 4)}


def test_outcomes_are_ordered_by_instant_not_by_wall_clock():
    earlier_in_amsterdam = datetime(2027, 5, 10, 10, 30, tzinfo=timezone(timedelta(hours=2)))  # 08:30 UTC
    assert supersedes(version(0), Version(earlier_in_amsterdam, uuid.UUID(int=1)))


# --- match events become states ---------------------------------------------------------------
RECIPIENT = Recipient(name="Anna de Vries", email="anna@example.org")
ENVELOPE = {"region": "twente", "edition": "wvdu-2027-twente", "occurred_at": T0}


def test_an_assignment_keeps_offer_day_and_rank_but_no_personal_data():
    offer = OfferSummary(offer_id="o-1", host_org="gemeente-enschede", title="Dag bij de gemeente", date=date(2027, 6, 2))
    event = MatchAssigned(**ENVELOPE, signup_id="s-1", run_id=uuid.uuid4(), rank=2, offer=offer, recipient=RECIPIENT)
    state = match_state(event)
    assert state is not None
    assert (state.signup_id, state.edition, state.state, state.offer_id, state.offer_date, state.rank) == (
        "s-1", "wvdu-2027-twente", "assigned", "o-1", date(2027, 6, 2), 2
    )
    assert state.version == Version(T0, event.event_id)
    assert "Anna" not in repr(state) and "example.org" not in repr(state)


def test_waitlist_and_unmatched_outcomes_have_no_offer():
    run = uuid.uuid4()
    waitlisted = match_state(
        MatchWaitlisted(**ENVELOPE, signup_id="s-2", run_id=run, position=3, reason_code="all_full", recipient=RECIPIENT)
    )
    unmatched = match_state(
        MatchUnmatched(**ENVELOPE, signup_id="s-3", run_id=run, reason_code="own_org", reason="own org", recipient=RECIPIENT)
    )
    assert waitlisted is not None and unmatched is not None
    assert (waitlisted.state, waitlisted.offer_id, waitlisted.rank) == ("waitlisted", None, None)
    assert (unmatched.state, unmatched.offer_id, unmatched.rank) == ("unmatched", None, None)


def test_an_open_seat_offer_is_its_own_outcome_and_an_ended_one_means_waiting_again():
    summary = OfferSummary(offer_id="o-1", host_org="h", title="t", date=date(2027, 6, 8))
    at = datetime(2027, 5, 20, 9, tzinfo=UTC)
    offer = SeatOffered(region="r", edition="e", occurred_at=at, signup_id="s-1", run_id=uuid.uuid4(), rank=2,
                        offer=summary, expires_at=at + timedelta(days=2), recipient=Recipient(name="N", email="n@example.org"))
    state = match_state(offer)
    assert (state.state, state.offer_id, state.offer_date, state.rank) == ("offered", "o-1", date(2027, 6, 8), 2)
    ended = SeatOfferEnded(region="r", edition="e", signup_id="s-1", run_id=uuid.uuid4(), offer_id="o-1", reason="expired")
    assert (match_state(ended).state, match_state(ended).offer_id) == ("waitlisted", None)


def test_other_events_are_not_match_states():
    offer = OfferPublished(**ENVELOPE, offer_id="o-1", host_org="h", title="t", date=date(2027, 6, 2), capacity=3)
    assert match_state(offer) is None


# --- ratios -----------------------------------------------------------------------------------
def test_share_and_average_are_rounded_and_undefined_without_a_base():
    assert share(2, 3) == 0.667
    assert share(0, 4) == 0.0
    assert share(0, 0) is None
    assert average(13, 3) == 4.33
    assert average(0, 0) is None


def figures(edition: str, region: str, **changes: int) -> EditionFigures:
    zero = dict.fromkeys(
        (
            "offers", "seats", "offers_cancelled", "signups", "withdrawn", "organisations", "assigned",
            "first_choice", "waitlisted", "unmatched", "awaiting_rematch", "seat_offers_open", "emails_sent", "emails_failed",
            "feedback_count", "rating_total",
        ),
        0,
    )
    return EditionFigures(
        edition=edition, region=region, name=f"Week {edition}", status="open",
        starts_on=date(2027, 6, 1), ends_on=date(2027, 6, 5), **(zero | changes),
    )


def test_first_choice_share_is_over_the_assigned_participants():
    e = figures("e1", "twente", signups=10, assigned=4, first_choice=3)
    assert e.first_choice_share == 0.75
    assert figures("e2", "twente", signups=10).first_choice_share is None


def test_the_edition_report_has_the_documented_shape():
    report = figures("e1", "twente", assigned=4, first_choice=1, feedback_count=2, rating_total=9).report()
    assert set(report) == {
        "edition", "region", "name", "status", "starts_on", "ends_on", "offers", "seats", "offers_cancelled",
        "signups", "withdrawn", "organisations", "assigned", "waitlisted", "unmatched", "awaiting_rematch",
        "seat_offers_open", "first_choice_share", "emails_sent", "emails_failed", "feedback",
    }
    assert report["first_choice_share"] == 0.25
    assert report["feedback"] == {"count": 2, "average_rating": 4.5}


# --- roll-ups ---------------------------------------------------------------------------------
def test_regions_add_up_their_editions_and_the_nation_adds_up_the_regions():
    editions = [
        figures("t1", "twente", offers=3, signups=10, assigned=7, emails_sent=9, seats=99),
        figures("a1", "achterhoek", offers=1, signups=2, assigned=2, emails_sent=2),
        figures("t2", "twente", offers=2, signups=5, assigned=1, emails_sent=1),
    ]
    regions = region_totals(editions)
    assert [(r.region, r.editions, r.offers, r.signups, r.assigned, r.emails_sent) for r in regions] == [
        ("achterhoek", 1, 1, 2, 2, 2),
        ("twente", 2, 5, 15, 8, 10),
    ]
    assert national_totals(regions) == {
        "regions": 2, "editions": 3, "offers": 6, "signups": 17, "assigned": 10, "emails_sent": 12,
    }


def test_no_editions_make_zero_totals():
    assert region_totals([]) == []
    assert national_totals([]) == {"regions": 0, "editions": 0, "offers": 0, "signups": 0, "assigned": 0, "emails_sent": 0}


# --- language ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "accept", "expected"),
    [
        ("de", "en", "de"),
        ("en", None, "en"),
        (None, None, "nl"),
        (None, "", "nl"),
        ("fr", "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR, en-GB;q=0.7, de;q=0.9", "de"),
        (None, "de;q=0.2, EN-us;q=0.8", "en"),
        (None, "en;q=0, de;q=0.1", "de"),
        (None, "fr, es;q=0.5", "nl"),
        (None, "*", "nl"),
        (None, "de;q=abc, en;q=0.5", "en"),
        (None, "en, de", "en"),
        ("NL", "de", "nl"),
    ],
)
def test_language_negotiation(lang, accept, expected):
    assert negotiate_language(lang, accept) == expected
