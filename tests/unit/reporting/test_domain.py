"""Reporting's pure rules: which outcome wins, what each match event means, final states, ratios and
roll-ups."""

import uuid
from datetime import date, datetime, timedelta, timezone
from functools import reduce

from services.reporting import domain
from services.reporting.domain import (
    Edition,
    Offer,
    Placement,
    RelayLeg,
    Signup,
    Version,
    average,
    national_totals,
    region_totals,
    share,
    supersedes,
)
from tests.unit.reporting.builders import EDITION, REGION, at, figures, version

PLACEMENT = Placement("o-1", date(2027, 6, 2), 2)


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


# --- what each match event tells the participant ------------------------------------------------
def test_an_assignment_and_a_seat_offer_keep_the_offer_day_and_rank():
    assert domain.assigned("s-1", EDITION, version(), PLACEMENT) == domain.MatchOutcome(
        "s-1", EDITION, "assigned", version(), PLACEMENT)
    assert domain.seat_offered("s-1", EDITION, version(), PLACEMENT).outcome == "offered"
    assert domain.seat_offered("s-1", EDITION, version(), PLACEMENT).placement == PLACEMENT


def test_an_ended_seat_offer_means_waiting_again_without_an_offer():
    ended = domain.seat_offer_ended("s-1", EDITION, version(2))
    assert (ended.outcome, ended.placement, ended.version) == ("waitlisted", None, version(2))


def test_waitlisted_and_unmatched_have_no_offer():
    assert (domain.waitlisted("s-1", EDITION, version()).outcome, domain.waitlisted("s-1", EDITION, version()).placement) == (
        "waitlisted", None)
    assert (domain.unmatched("s-1", EDITION, version()).outcome, domain.unmatched("s-1", EDITION, version()).placement) == (
        "unmatched", None)


# --- final states stay; details fill in ---------------------------------------------------------
def test_an_edition_is_unknown_until_opened_and_a_closed_one_is_not_reopened():
    named = domain.edition_named(EDITION, REGION)
    assert named == Edition(EDITION, REGION, "unknown")
    assert domain.edition_opened(named, EDITION, REGION, "W", date(2027, 6, 7), date(2027, 6, 11)).status == "open"
    assert domain.edition_opened(None, EDITION, REGION, "W", date(2027, 6, 7), date(2027, 6, 11)).status == "open"
    closed = domain.edition_closed(None, EDITION, REGION)
    reopened = domain.edition_opened(closed, EDITION, REGION, "W", date(2027, 6, 7), date(2027, 6, 11))
    assert (reopened.status, reopened.name, reopened.starts_on) == ("closed", "W", date(2027, 6, 7))


def test_closing_keeps_the_details():
    opened = Edition(EDITION, REGION, "open", "W", date(2027, 6, 7), date(2027, 6, 11))
    assert domain.edition_closed(opened, EDITION, REGION) == Edition(EDITION, REGION, "closed", "W", date(2027, 6, 7), date(2027, 6, 11))


def test_a_cancelled_offer_stays_cancelled_and_gets_its_details():
    cancelled = domain.offer_cancelled(None, "o-1", EDITION)
    assert cancelled == Offer("o-1", EDITION, cancelled=True)
    assert domain.offer_published(cancelled, "o-1", EDITION, date(2027, 6, 8), 4) == Offer("o-1", EDITION, date(2027, 6, 8), 4, True, 0)
    published = domain.offer_published(None, "o-1", EDITION, date(2027, 6, 8), 4)
    assert not published.cancelled
    assert domain.offer_cancelled(published, "o-1", EDITION) == Offer("o-1", EDITION, date(2027, 6, 8), 4, True, 0)


def test_a_withdrawn_signup_stays_withdrawn_and_gets_its_details():
    withdrawn = domain.signup_withdrawn(None, "s-1", EDITION)
    assert domain.signup_submitted(withdrawn, "s-1", EDITION, "org-a", at(1)) == Signup(
        "s-1", EDITION, "org-a", at(1), True, "not_required")
    assert not domain.signup_submitted(None, "s-1", EDITION, "org-a", at(1)).withdrawn


def test_a_relay_leg_keeps_its_start_and_its_hand_over_in_either_order():
    full = RelayLeg("leg-1", REGION, EDITION, date(2027, 6, 7), "achterhoek", at(5))
    started_first = domain.relay_leg_handed_over(
        domain.relay_leg_started(None, "leg-1", REGION, EDITION, date(2027, 6, 7)), "leg-1", REGION, EDITION, "achterhoek", at(5))
    handed_first = domain.relay_leg_started(
        domain.relay_leg_handed_over(None, "leg-1", REGION, EDITION, "achterhoek", at(5)), "leg-1", REGION, EDITION, date(2027, 6, 7))
    assert started_first == handed_first == full


# --- ratios -----------------------------------------------------------------------------------
def test_share_and_average_are_rounded_and_undefined_without_a_base():
    assert share(2, 3) == 0.667
    assert share(0, 4) == 0.0
    assert share(0, 0) is None
    assert average(13, 3) == 4.33
    assert average(0, 0) is None


def test_first_choice_share_is_over_the_assigned_participants():
    assert figures("e1", signups=10, assigned=4, first_choice=3).first_choice_share == 0.75
    assert figures("e2", signups=10).first_choice_share is None
    assert figures("e3", feedback_count=2, rating_total=9).average_rating == 4.5


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
    assert national_totals(regions) == domain.NationalTotals(regions=2, editions=3, offers=6, signups=17, assigned=10, emails_sent=12)
    assert domain.Overview(editions, []).national == national_totals(regions)


def test_no_editions_make_zero_totals():
    assert region_totals([]) == []
    assert national_totals([]) == domain.NationalTotals()


def test_a_registered_region_without_editions_is_a_row_of_zeros():
    editions = [figures("t1", "twente", signups=10, assigned=7)]
    regions = region_totals(editions, registered=["twente", "veluwe"])
    assert [(r.region, r.editions, r.signups, r.assigned) for r in regions] == [("twente", 1, 10, 7), ("veluwe", 0, 0, 0)]
    assert national_totals(regions) == domain.NationalTotals(regions=2, editions=1, offers=0, signups=10, assigned=7, emails_sent=0)
    # a region with editions that the registry no longer lists keeps its row
    assert [r.region for r in region_totals(editions + [figures("x1", "gone")], registered=["twente"])] == ["gone", "twente"]


def test_a_caller_sees_only_the_registered_regions_they_see():
    overview = domain.Overview([figures("t1", "twente")], [], registered=("groningen", "twente"))
    assert [r.region for r in overview.regions] == ["groningen", "twente"]
    assert [r.region for r in overview.seen_by(lambda region: region == "groningen").regions] == ["groningen"]
    assert overview.seen_by(lambda region: False).regions == []


def test_what_a_caller_sees_of_the_overview_is_their_regions_and_totals_of_those():
    editions = [figures("t1", "twente", signups=10), figures("a1", "achterhoek", signups=2), figures("t2", "twente", signups=5)]
    legs = [RelayLeg("leg-t", "twente", "t1"), RelayLeg("leg-a", "achterhoek", "a1")]
    overview = domain.Overview(editions, legs)

    twente = overview.seen_by(lambda region: region == "twente")
    assert ([e.edition_id for e in twente.editions], [leg.leg_id for leg in twente.relay_legs]) == (["t1", "t2"], ["leg-t"])
    assert [r.region for r in twente.regions] == ["twente"]
    assert (twente.national.regions, twente.national.editions, twente.national.signups) == (1, 2, 15)
    assert overview.seen_by(lambda region: True) == overview
    assert overview.seen_by(lambda region: False).national == domain.NationalTotals()


# --- the journey (issue 9): cancellation, approval, offer changes --------------------------------
def test_a_cancelled_edition_keeps_its_details_reason_and_moment_and_nothing_reopens_it():
    opened = Edition(EDITION, REGION, "open", "W", date(2027, 6, 7), date(2027, 6, 11))
    cancelled = domain.edition_cancelled(opened, EDITION, REGION, "corona", at(3))
    assert cancelled == Edition(EDITION, REGION, "cancelled", "W", date(2027, 6, 7), date(2027, 6, 11), "corona", at(3))
    assert domain.edition_closed(cancelled, EDITION, REGION) == cancelled
    assert domain.edition_cancelled(cancelled, EDITION, REGION, "again", at(9)) == cancelled
    late = domain.edition_opened(domain.edition_cancelled(None, EDITION, REGION, "corona", at(3)), EDITION, REGION, "W",
                                 date(2027, 6, 7), date(2027, 6, 11))
    assert late == cancelled


def test_a_closed_edition_can_still_be_cancelled():
    closed = domain.edition_closed(None, EDITION, REGION)
    assert domain.edition_cancelled(closed, EDITION, REGION, "corona", at(1)).status == "cancelled"


def test_an_offer_keeps_the_details_of_its_highest_sequence_in_any_order():
    published = (date(2027, 6, 8), 4, 0)
    changes = [(date(2027, 6, 9), 6, 1), (date(2027, 6, 10), 2, 2)]

    def apply(stored, details):
        day, capacity, sequence = details
        return domain.offer_changed(stored, "o-1", EDITION, day, capacity, sequence) if sequence else \
            domain.offer_published(stored, "o-1", EDITION, day, capacity)

    for order in ([published, *changes], [changes[1], published, changes[0]], [*changes[::-1], published]):
        assert reduce(apply, order, None) == Offer("o-1", EDITION, date(2027, 6, 10), 2, False, 2)
    cancelled = domain.offer_cancelled(None, "o-1", EDITION)
    assert domain.offer_changed(cancelled, "o-1", EDITION, date(2027, 6, 9), 6, 1).cancelled


def test_approval_pending_then_approved_or_refused_and_an_answer_is_final_in_any_order():
    pending = domain.signup_submitted(None, "s-1", EDITION, "org-a", at(0), "pending")
    assert (pending.approval, pending.active) == ("pending", True)
    assert domain.signup_approved(pending, "s-1", EDITION).approval == "approved"
    refused = domain.signup_refused(pending, "s-1", EDITION)
    assert (refused.approval, refused.active, refused.withdrawn) == ("refused", False, False)
    # the answer first, the submission late: the answer stays, the details fill in
    late = domain.signup_submitted(domain.signup_approved(None, "s-1", EDITION), "s-1", EDITION, "org-a", at(0), "pending")
    assert (late.approval, late.org, late.signed_up_at) == ("approved", "org-a", at(0))
    assert domain.signup_approved(refused, "s-1", EDITION) == refused
    assert domain.signup_submitted(None, "s-1", EDITION, "org-a", at(0)).approval == "not_required"


def test_region_rows_add_up_approvals_and_feedback_with_an_average_of_all_ratings():
    editions = [figures("t1", "twente", pending_approval=2, approved=3, refused=1, feedback_count=1, rating_total=5,
                        feedback_shareable=1),
                figures("t2", "twente", not_required=4, feedback_count=3, rating_total=6)]
    (row,) = region_totals(editions)
    assert (row.pending_approval, row.approved, row.refused, row.not_required) == (2, 3, 1, 4)
    assert (row.feedback_count, row.feedback_shareable, row.average_rating) == (4, 1, 2.75)
    assert national_totals([row]).average_rating == 2.75
    assert domain.NationalTotals().average_rating is None
