"""Reporting's service layer against the fake unit of work: the events go through the handlers'
dispatch tables into service.py, one transaction each (as the consumer does); no infrastructure.

The rules: the latest match or notification outcome wins whatever the arrival order (event id breaks
ties), an ended seat offer means waiting again, closed/cancelled/withdrawn are never undone."""

from __future__ import annotations

import itertools
import uuid
from datetime import date

import pytest

from estafette.runtime.errors import NotFound
from schemas import Event
from services.reporting import service
from services.reporting.domain import Placement
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.reporting import builders as b
from tests.unit.reporting.fakes import FakeRepository, handle


@pytest.fixture
def repo() -> FakeRepository:
    return FakeRepository()


@pytest.fixture
def uow(repo: FakeRepository) -> FakeUnitOfWork[FakeRepository]:
    return FakeUnitOfWork(repo)


async def outcome_after(events: tuple[Event, ...], signup_id: str = "s-1"):
    """The stored match outcome after handling `events` in this order, in a fresh repository."""
    repo = FakeRepository()
    await handle(FakeUnitOfWork(repo), *events)
    return repo.matches[signup_id]


# --- the latest match outcome wins ----------------------------------------------------------
async def test_a_newer_match_outcome_replaces_the_stored_one(uow, repo):
    await handle(uow, b.waitlisted(minutes=0), b.assigned(offer_id="o-2", rank=2, minutes=5))
    m = repo.matches["s-1"]
    assert (m.outcome, m.placement) == ("assigned", Placement("o-2", b.VISIT_DAY, 2))
    assert (m.signup_id, m.edition_id) == ("s-1", b.EDITION)


async def test_an_older_match_outcome_is_ignored(uow, repo):
    newer = b.assigned(minutes=5)
    await handle(uow, newer, b.unmatched(minutes=0))
    assert repo.matches["s-1"].outcome == "assigned"
    assert repo.matches["s-1"].version.event_id == newer.event_id
    assert uow.commits == 2  # handled, and ignored: not an error


async def test_the_latest_outcome_wins_whatever_the_arrival_order():
    events = (b.waitlisted(minutes=0, n=9), b.assigned(minutes=10, n=1), b.unmatched(minutes=10, n=4),
              b.assigned(offer_id="o-2", minutes=2, n=8))
    winners = {(await outcome_after(order)).version for order in itertools.permutations(events)}
    assert winners == {b.version(10, 4)}  # same instant: the larger event id wins


async def test_outcomes_at_the_same_instant_are_ordered_by_event_id_not_by_arrival():
    first, second = b.assigned(minutes=3, n=2), b.waitlisted(minutes=3, n=7)
    assert (await outcome_after((first, second))).outcome == "waitlisted"
    assert (await outcome_after((second, first))).outcome == "waitlisted"



# --- seat offers ------------------------------------------------------------------------------
async def test_an_open_seat_offer_is_an_outcome_of_its_own(uow, repo):
    await handle(uow, b.waitlisted(minutes=0), b.seat_offered(rank=2, minutes=1))
    m = repo.matches["s-1"]
    assert (m.outcome, m.placement) == ("offered", Placement("o-1", b.VISIT_DAY, 2))


@pytest.mark.parametrize("reason", ["declined", "expired"])
async def test_an_ended_seat_offer_means_waiting_again(uow, repo, reason):
    await handle(uow, b.waitlisted(minutes=0), b.seat_offered(minutes=1), b.seat_offer_ended(minutes=2, reason=reason))
    m = repo.matches["s-1"]
    assert (m.outcome, m.placement) == ("waitlisted", None)


async def test_an_ended_seat_offer_arriving_before_the_offer_still_wins():
    offered, ended = b.seat_offered(minutes=1), b.seat_offer_ended(minutes=2)
    assert (await outcome_after((ended, offered))).outcome == "waitlisted"


async def test_an_accepted_seat_offer_is_an_assignment(uow, repo):
    await handle(uow, b.seat_offered(minutes=1), b.assigned(minutes=2))
    assert repo.matches["s-1"].outcome == "assigned"


async def test_match_outcomes_keep_no_personal_data(uow, repo):
    await handle(uow, b.assigned())
    assert "Deelnemer" not in repr(repo.matches) and "example.org" not in repr(repo.matches)


# --- notifications: the latest outcome wins ---------------------------------------------------
async def test_a_failure_retried_with_success_counts_as_sent_whatever_the_order():
    nid = uuid.uuid4()
    for order in itertools.permutations((b.failed(nid, minutes=0), b.sent(nid, minutes=5))):
        repo = FakeRepository()
        await handle(FakeUnitOfWork(repo), *order)
        assert repo.notifications[nid].status == "sent"


async def test_a_newer_failure_replaces_an_older_success(uow, repo):
    nid = uuid.uuid4()
    await handle(uow, b.sent(nid, minutes=0), b.failed(nid, minutes=5), b.sent(nid, minutes=1))
    assert repo.notifications[nid].status == "failed"
    assert repo.notifications[nid].version.occurred_at == b.at(5)


# --- final states are never undone; details fill in -------------------------------------------
async def test_a_closed_edition_stays_closed_after_a_late_edition_opened(uow, repo):
    await handle(uow, b.closed(), b.opened(name="Week van de Uitwisseling Twente"))
    e = repo.editions[b.EDITION]
    assert (e.status, e.name, e.starts_on) == ("closed", "Week van de Uitwisseling Twente", date(2027, 6, 7))


async def test_an_edition_is_known_from_the_first_event_that_names_it(uow, repo):
    await handle(uow, b.offer())
    assert (repo.editions[b.EDITION].status, repo.editions[b.EDITION].region) == ("unknown", b.REGION)
    await handle(uow, b.opened(), b.signup())
    assert repo.editions[b.EDITION].status == "open"


async def test_a_cancelled_offer_stays_cancelled_after_a_late_offer_published(uow, repo):
    await handle(uow, b.offer_cancelled("o-1"), b.offer("o-1", capacity=7))
    o = repo.offers["o-1"]
    assert (o.cancelled, o.capacity, o.day, o.edition_id) == (True, 7, b.VISIT_DAY, b.EDITION)


async def test_a_withdrawn_signup_stays_withdrawn_after_a_late_signup_submitted(uow, repo):
    await handle(uow, b.withdrawn("s-1"), b.signup("s-1", org="org-b", minutes=3))
    s = repo.signups["s-1"]
    assert (s.withdrawn, s.org, s.signed_up_at) == (True, "org-b", b.at(3))
    assert "Deelnemer" not in repr(repo.signups) and "example.org" not in repr(repo.signups)


async def test_a_relay_leg_is_complete_whatever_the_order(uow, repo):
    await handle(uow, b.handed_over("leg-1", "achterhoek", minutes=9), b.leg_started("leg-1"))  # a leg of b.EDITION
    leg = repo.legs["leg-1"]
    assert (leg.region, leg.edition_id, leg.starts_on, leg.handed_over_to, leg.handed_over_at) == (
        b.REGION, b.EDITION, date(2027, 6, 7), "achterhoek", b.at(9))


async def test_feedback_keeps_the_rating_only(uow, repo):
    await handle(uow, b.feedback("f-1", rating=5))
    assert (repo.feedback["f-1"].rating, repo.feedback["f-1"].edition_id) == (5, b.EDITION)
    assert "learned" not in repr(repo.feedback)


# --- reports ------------------------------------------------------------------------------------
async def test_an_unknown_edition_is_not_found(uow):
    with pytest.raises(NotFound) as refused:
        await service.edition_report(uow, b.ADMIN, "no-such-edition", "Europe/Amsterdam")
    assert (refused.value.code, refused.value.field) == ("unknown_edition", "edition_id")


async def test_an_edition_report_reads_figures_and_days_from_one_snapshot(uow, repo):
    await handle(uow, b.opened())
    repo.figures[b.EDITION] = b.figures(assigned=4, first_choice=3)
    repo.days[b.EDITION] = [b.day(b.VISIT_DAY, assigned=4)]
    report = await service.edition_report(uow, b.ADMIN, b.EDITION, "Europe/Amsterdam")
    assert (report.figures.first_choice_share, report.days) == (0.75, [b.day(b.VISIT_DAY, assigned=4)])
    assert repo.snapshots == 1


async def three_editions(uow, repo) -> None:
    """Two editions in twente, one in achterhoek, and a relay leg in each region."""
    await handle(uow, b.opened(b.EDITION, "twente"), b.opened("t2", "twente"), b.opened("a1", "achterhoek"),
                 b.leg_started("leg-1"), b.leg_started("leg-2", edition="a1", region="achterhoek"))
    repo.figures |= {b.EDITION: b.figures(b.EDITION, "twente", signups=10, assigned=7),
                     "t2": b.figures("t2", "twente", signups=5, assigned=1),
                     "a1": b.figures("a1", "achterhoek", signups=2, assigned=2)}


@pytest.mark.parametrize("principal", [b.ADMIN, b.NATIONAL], ids=["admin", "national"])
async def test_the_overview_adds_up_every_region_and_the_nation(uow, repo, principal):
    await three_editions(uow, repo)
    overview = await service.overview(uow, principal)
    assert [(r.region, r.editions, r.signups, r.assigned) for r in overview.regions] == [
        ("achterhoek", 1, 2, 2), ("twente", 2, 15, 8)]
    assert (overview.national.regions, overview.national.signups) == (2, 17)
    assert [leg.leg_id for leg in overview.relay_legs] == ["leg-1", "leg-2"]


async def test_an_organiser_sees_their_regions_row_and_national_totals_of_what_they_see(uow, repo):
    await three_editions(uow, repo)
    overview = await service.overview(uow, b.organiser("twente"))
    assert [(r.region, r.editions, r.signups, r.assigned) for r in overview.regions] == [("twente", 2, 15, 8)]
    assert (overview.national.regions, overview.national.editions, overview.national.signups) == (1, 2, 15)
    assert [leg.leg_id for leg in overview.relay_legs] == ["leg-1"]
    assert {e.edition_id for e in overview.editions} == {b.EDITION, "t2"}


async def test_an_organiser_of_a_region_without_editions_sees_nothing(uow, repo):
    await three_editions(uow, repo)
    overview = await service.overview(uow, b.organiser("groningen"))
    assert (overview.regions, overview.relay_legs, overview.national.regions, overview.national.signups) == ([], [], 0, 0)


async def test_regions_of_the_registry_without_editions_are_rows_of_zeros_for_whoever_sees_them(uow, repo):
    await three_editions(uow, repo)
    registered = ["achterhoek", "groningen", "twente", "veluwe"]
    overview = await service.overview(uow, b.NATIONAL, registered)
    assert [(r.region, r.editions, r.signups) for r in overview.regions] == [
        ("achterhoek", 1, 2), ("groningen", 0, 0), ("twente", 2, 15), ("veluwe", 0, 0)]
    assert (overview.national.regions, overview.national.editions, overview.national.signups) == (4, 3, 17)
    groningen = await service.overview(uow, b.organiser("groningen"), registered)
    assert ([(r.region, r.editions) for r in groningen.regions], groningen.national.regions) == ([("groningen", 0)], 1)


async def test_a_region_added_later_shows_up_once_its_events_arrive(uow, repo):
    await three_editions(uow, repo)
    assert "veluwe" not in {r.region for r in (await service.overview(uow, b.ADMIN)).regions}
    await handle(uow, b.opened("v1", "veluwe"))  # the new region's first event
    repo.figures["v1"] = b.figures("v1", "veluwe", signups=1)
    rows = {r.region: r for r in (await service.overview(uow, b.ADMIN)).regions}
    assert (rows["veluwe"].editions, rows["veluwe"].signups) == (1, 1)


async def test_another_regions_edition_is_not_found_exactly_like_an_unknown_one(uow, repo):
    await three_editions(uow, repo)
    twente = b.organiser("twente")

    assert (await service.edition_report(uow, twente, b.EDITION, "Europe/Amsterdam")).figures.region == "twente"
    with pytest.raises(NotFound) as other:
        await service.edition_report(uow, twente, "a1", "Europe/Amsterdam")
    with pytest.raises(NotFound) as unknown:
        await service.edition_report(uow, twente, "a2", "Europe/Amsterdam")
    assert (other.value.code, other.value.field) == (unknown.value.code, unknown.value.field) == ("unknown_edition", "edition_id")
    assert other.value.message == unknown.value.message.replace("a2", "a1")
    for principal in (b.NATIONAL, b.ADMIN, b.organiser("achterhoek")):
        assert (await service.edition_report(uow, principal, "a1", "Europe/Amsterdam")).figures.edition_id == "a1"


async def test_the_public_dashboard_shows_every_regions_aggregates(uow, repo):
    await three_editions(uow, repo)
    overview = await service.dashboard_overview(uow)
    assert [r.region for r in overview.regions] == ["achterhoek", "twente"]
    assert (await service.dashboard_edition(uow, "a1", "Europe/Amsterdam")).figures.edition_id == "a1"
    with pytest.raises(NotFound):
        await service.dashboard_edition(uow, "a2", "Europe/Amsterdam")


async def test_editions_are_counted_by_status(uow):
    await handle(uow, b.opened("e1"), b.opened("e2"), b.closed("e2"), b.offer())
    assert await service.editions_by_status(uow) == {"open": 1, "closed": 1, "unknown": 1}


# --- the journey (issue 9) ----------------------------------------------------------------------
async def test_a_cancelled_edition_is_reported_cancelled_with_its_reason_and_keeps_its_figures(uow, repo):
    await handle(uow, b.opened(), b.offer(), b.signup("s-1"), b.signup("s-2"), b.assigned("s-1"))
    before = (dict(repo.signups), dict(repo.matches), dict(repo.offers))
    await handle(uow, b.cancelled(reason="corona", minutes=60))
    report = await service.edition_report(uow, b.ADMIN, b.EDITION, "Europe/Amsterdam")
    assert (report.figures.status, report.figures.cancellation_reason, report.figures.cancelled_at) == (
        "cancelled", "corona", b.at(60))
    assert (dict(repo.signups), dict(repo.matches), dict(repo.offers)) == before  # nothing else is touched
    await handle(uow, b.closed(minutes=90), b.opened())  # neither closes nor reopens it
    assert repo.editions[b.EDITION].status == "cancelled"
    assert await service.editions_by_status(uow) == {"cancelled": 1}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_a_cancellation_wins_over_opening_and_closing_whatever_the_order(order):
    events = (b.opened(), b.closed(minutes=10), b.cancelled(reason="storm", minutes=20))
    repo = FakeRepository()
    await handle(FakeUnitOfWork(repo), *(events[i] for i in order))
    e = repo.editions[b.EDITION]
    assert (e.status, e.cancellation_reason, e.name) == ("cancelled", "storm", "Week van de Uitwisseling Twente")


async def test_an_employers_answer_is_kept_whatever_the_order_and_a_refusal_ends_the_signup():
    for events in itertools.permutations((b.signup("s-1", approval="pending"), b.approved("s-1"))):
        repo = FakeRepository()
        await handle(FakeUnitOfWork(repo), *events)
        assert (repo.signups["s-1"].approval, repo.signups["s-1"].org) == ("approved", "org-a")
    for events in itertools.permutations((b.signup("s-2", approval="pending"), b.refused("s-2"))):
        repo = FakeRepository()
        await handle(FakeUnitOfWork(repo), *events)
        s = repo.signups["s-2"]
        assert (s.approval, s.active, s.withdrawn) == ("refused", False, False)
        assert "not this year" not in repr(repo.signups)  # the refusal's reason is not kept


async def test_a_signup_without_approval_is_not_required_and_a_changed_signup_changes_nothing(uow, repo):
    await handle(uow, b.signup("s-1"))
    stored = repo.signups["s-1"]
    assert stored.approval == "not_required"
    await handle(uow, b.signup_changed("s-1"))
    assert repo.signups["s-1"] == stored and uow.commits == 2  # handled (ignored), not dead-lettered


async def test_an_offer_change_updates_date_and_capacity_and_a_late_publication_does_not_undo_it(uow, repo):
    await handle(uow, b.offer_changed("o-1", day=date(2027, 6, 9), capacity=8, sequence=2),
                 b.offer_changed("o-1", day=date(2027, 6, 10), capacity=3, sequence=1),
                 b.offer("o-1", capacity=5))
    o = repo.offers["o-1"]
    assert (o.day, o.capacity, o.sequence, o.cancelled) == (date(2027, 6, 9), 8, 2, False)
    await handle(uow, b.offer_cancelled("o-1"), b.offer_changed("o-1", capacity=9, sequence=3))
    assert (repo.offers["o-1"].cancelled, repo.offers["o-1"].capacity) == (True, 9)


async def test_feedback_keeps_whether_it_may_be_shared_but_not_what_was_learned(uow, repo):
    await handle(uow, b.feedback("f-1", rating=5, share_publicly=True), b.feedback("f-2", rating=2))
    assert [(f.rating, f.share_publicly) for f in repo.feedback.values()] == [(5, True), (2, False)]
    assert "Veel geleerd" not in repr(repo.feedback)


async def test_each_notification_keeps_the_template_of_its_latest_outcome(uow, repo):
    nid = uuid.uuid4()
    await handle(uow, b.failed(nid, minutes=0, template="reminder"), b.sent(nid, minutes=5, template="reminder"))
    assert (repo.notifications[nid].status, repo.notifications[nid].template) == ("sent", "reminder")


async def test_an_edition_report_has_its_emails_per_template(uow, repo):
    await handle(uow, b.opened())
    repo.templates[b.EDITION] = [b.template("assigned", sent=3), b.template("reminder", sent=2, failed=1)]
    report = await service.edition_report(uow, b.ADMIN, b.EDITION, "Europe/Amsterdam")
    assert report.emails == [b.template("assigned", sent=3), b.template("reminder", sent=2, failed=1)]
