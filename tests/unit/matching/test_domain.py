"""Matching's pure rules (domain.py): the decisions the repository executes (re-match marking,
cancellation cascade, withdrawal release, the seat-offer state machine), when a seat offer ends,
building the engine problem and deciding what a run announces; which instance executes a run (its
regions) and what becomes of a run nobody executes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from estafette.runtime.errors import Conflict
from schemas.reasons import UNMATCHED_REASONS
from services.matching import domain, engine

from .builders import DAY, EDITION, T0, held, offer, participant, previous, seat_offer

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def solve_and_plan(offers, people, before=None, frozen=(), open_seat_offers=(), declined=(), too_late=()):
    """A run as the service does it: people who were told they wait are 'waiting'."""
    before = before or {}
    waiting = {sid for sid, o in before.items() if o.state in domain.WAITING_STATES}
    problem = domain.build_problem(offers, people, frozen, (), declined, waiting, too_late)
    return problem, domain.plan(problem, engine.solve(problem), before, set(open_seat_offers), set(declined))


# --- regions: which instance executes a run ----------------------------------------------------------
@pytest.mark.parametrize(
    ("regions", "region", "served", "status"),
    [
        (None, "twente", True, "running"),  # an instance without --regions serves every region
        (("twente",), "twente", True, "running"),
        (("twente", "drenthe"), "drenthe", True, "running"),
        (("groningen",), "twente", False, "queued"),  # recorded, for an instance of twente to start
        ((), "twente", False, "queued"),
    ],
)
def test_a_run_runs_on_an_instance_of_its_editions_region_and_is_queued_elsewhere(
    regions: tuple[str, ...] | None, region: str, served: bool, status: str
) -> None:
    assert domain.serves(regions, region) is served
    assert domain.requested_status(regions, region) == status


def _run(status: str, attempt: int) -> domain.MatchRun:
    return domain.MatchRun(uuid.uuid4(), EDITION, "full", status, status, 0.0, T0, attempt=attempt)


@pytest.mark.parametrize(
    ("status", "attempt", "decision"),
    [
        ("queued", 0, "start"),
        ("running", 1, "resume"),  # its instance died: nothing of it was written, so run it again
        ("running", domain.MAX_RUN_ATTEMPTS - 1, "resume"),
        ("running", domain.MAX_RUN_ATTEMPTS, "fail"),  # it took its instances down every time
    ],
)
def test_a_run_nobody_executes_is_started_resumed_or_failed(status: str, attempt: int, decision: str) -> None:
    assert domain.take_over(_run(status, attempt)) == decision


def test_a_run_failed_as_interrupted_says_so() -> None:
    error = domain.interrupted_error(_run("running", domain.MAX_RUN_ATTEMPTS))
    assert error.startswith("interrupted") and str(domain.MAX_RUN_ATTEMPTS) in error


# --- re-match marking ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("published", "changed", "marked"), [(False, True, False), (True, True, True), (True, False, False), (False, False, False)]
)
def test_a_change_after_publication_marks_the_edition_for_rematch(published: bool, changed: bool, marked: bool) -> None:
    assert domain.needs_rematch(published, changed) is marked


# --- cancellation cascade --------------------------------------------------------------------------
def test_cancelling_an_offer_displaces_the_pairs_holding_its_seats() -> None:
    rows = [held("p1", "a"), held("p2", "a", "offered"), held("p3", "a", "declined"), held("p4", "b"), held("p5", "a", "released")]
    decision = domain.cancel_offer(offer("a"), rows, has_published_run=True)
    assert decision == domain.FreedSeats(True, (("p1", "a"), ("p2", "a")), "displaced", forget_outcome=False, rematch=True)
    assert domain.cancel_offer(offer("a"), rows, has_published_run=False).rematch is False


@pytest.mark.parametrize("known", [None, offer("a", status="cancelled")])
def test_cancelling_an_unknown_or_cancelled_offer_does_nothing(known: domain.Offer | None) -> None:
    assert domain.cancel_offer(known, [held("p1", "a")], has_published_run=True) == domain.FreedSeats(applies=False)


# --- withdrawal release ------------------------------------------------------------------------------
def test_a_withdrawal_releases_active_and_offered_rows_and_forgets_the_outcome() -> None:
    rows = [held("p1", "a"), held("p1", "b", "offered"), held("p1", "c", "expired"), held("p2", "a")]
    decision = domain.withdraw(participant("p1", ["a", "b", "c"]), rows, has_published_run=True)
    assert decision == domain.FreedSeats(True, (("p1", "a"), ("p1", "b")), "released", forget_outcome=True, rematch=True)
    assert domain.withdraw(participant("p1", ["a"]), rows, has_published_run=False).rematch is False


@pytest.mark.parametrize("known", [None, participant("p1", ["a"], status="withdrawn")])
def test_withdrawing_twice_or_an_unknown_signup_does_nothing(known: domain.Participant | None) -> None:
    assert domain.withdraw(known, [held("p1", "a")], has_published_run=True) == domain.FreedSeats(applies=False)


# --- the seat-offer state machine --------------------------------------------------------------------
def test_accepting_an_open_seat_offer_assigns_the_seat() -> None:
    decision = domain.accept(seat_offer())
    assert (decision.status, decision.outcome, decision.ended, decision.rematch) == ("active", "assigned", None, False)
    assert decision.pair == ("p1", "a")


def test_declining_means_waiting_again_never_this_pair_again_and_a_rematch() -> None:
    decision = domain.decline(seat_offer())
    assert (decision.status, decision.outcome, decision.ended, decision.rematch) == ("declined", "waitlisted", "declined", True)


def test_only_seat_offers_whose_time_is_up_expire() -> None:
    due = seat_offer("p1", expires_in=timedelta(0))
    open_ = seat_offer("p2", expires_in=timedelta(seconds=1))
    answered = seat_offer("p3", status="declined", expires_in=timedelta(hours=-1))
    [decision] = domain.expire_due([due, open_, answered])
    assert decision.seat_offer == due
    assert (decision.status, decision.outcome, decision.ended, decision.rematch) == ("expired", "waitlisted", "expired", True)


@pytest.mark.parametrize(
    ("status", "expires_in", "code", "message"),
    [
        ("offered", -1, "seat_offer_expired", "the seat offer on a expired at 2027-02-28T23:59:59+00:00; the seat has been offered"),
        ("expired", -1, "seat_offer_expired", "the seat offer on a expired at 2027-02-28T23:59:59+00:00"),
        ("active", 1, "seat_offer_accepted", "the seat offer on a has been accepted already: the place is yours"),
        ("declined", 1, "seat_offer_declined", "the seat offer on a was declined; the seat has been offered"),
        ("released", 1, "seat_offer_withdrawn", "the sign-up was withdrawn, so its seat offer on a is void"),
        ("displaced", 1, "seat_offer_cancelled", "the host cancelled a, so its seat offer is void"),
    ],
)
@pytest.mark.parametrize("answer", [domain.accept, domain.decline])
def test_answering_a_seat_offer_that_is_not_open_is_a_conflict(answer, status: str, expires_in: int, code: str, message: str) -> None:
    with pytest.raises(Conflict) as caught:
        answer(seat_offer(status=status, expires_in=timedelta(seconds=expires_in)))
    assert caught.value.code == code and caught.value.message.startswith(message)


def test_counts_of_what_became_of_the_seat_offers() -> None:
    counts = domain.count_seat_offers([seat_offer(), seat_offer(status="active"), seat_offer(expires_in=timedelta(0))])
    assert counts == {"open": 1, "accepted": 1, "declined": 0, "expired": 1, "withdrawn": 0, "cancelled": 0}


def test_events_carry_the_participants_correlation_id_else_the_fallback() -> None:
    mine, fallback = uuid.uuid4(), uuid.uuid4()
    assert domain.correlation_of(participant("p1", ["a"], correlation_id=mine), fallback) == mine
    assert domain.correlation_of(participant("p1", ["a"]), fallback) == fallback
    assert domain.correlation_of(None, fallback) == fallback


# --- when a seat offer ends -----------------------------------------------------------------------
def test_a_seat_offer_is_held_for_the_configured_hours() -> None:
    now = datetime(2027, 5, 1, 10, 0, tzinfo=UTC)
    assert domain.offer_expiry(now, DAY, 48, AMSTERDAM) == now + timedelta(hours=48)


def test_a_seat_offer_never_ends_after_the_day_before_the_visit() -> None:
    now = datetime(2027, 5, 31, 8, 0, tzinfo=UTC)  # 10:00 in Amsterdam, the visit is tomorrow
    expires = domain.offer_expiry(now, DAY, 48, AMSTERDAM)
    assert expires == datetime(2027, 5, 31, 23, 59, tzinfo=AMSTERDAM)
    assert expires.astimezone(UTC) == datetime(2027, 5, 31, 21, 59, tzinfo=UTC)  # summer time


def test_the_day_before_is_local_time_also_across_a_clock_change() -> None:
    visit = date(2027, 3, 29)  # clocks went forward on Sunday 28 March 2027
    now = datetime(2027, 3, 28, 9, 0, tzinfo=UTC)
    assert domain.offer_expiry(now, visit, 48, AMSTERDAM).astimezone(UTC) == datetime(2027, 3, 28, 21, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2027, 5, 31, 21, 59, tzinfo=UTC),  # exactly 23:59 the day before: nothing left to offer
        datetime(2027, 6, 1, 7, 0, tzinfo=UTC),  # the morning of the visit
        datetime(2027, 6, 2, 7, 0, tzinfo=UTC),  # after the visit
    ],
)
def test_no_seat_offer_once_the_day_before_the_visit_is_over(now: datetime) -> None:
    assert domain.offer_expiry(now, DAY, 48, AMSTERDAM) is None


@pytest.mark.parametrize(
    ("status", "expires_in", "state"),
    [
        ("offered", 1, "open"),
        ("offered", -1, "expired"),  # its time is up, the expiry loop has not ended it yet
        ("expired", -1, "expired"),
        ("active", 1, "accepted"),
        ("declined", 1, "declined"),
        ("released", 1, "withdrawn"),
        ("displaced", 1, "cancelled"),
    ],
)
def test_what_became_of_a_seat_offer(status: str, expires_in: int, state: str) -> None:
    assert domain.seat_offer_state(status, T0 + timedelta(seconds=expires_in), T0) == state


# --- building the engine problem -----------------------------------------------------------------
def test_cancelled_offers_keep_the_ranks_people_chose() -> None:
    _, plan = solve_and_plan([offer("a", "h1", status="cancelled"), offer("b", "h2")], [participant("p1", ["a", "b"])])
    assert [(a.participant, a.offer, a.rank) for a in plan.new_assignments] == [("p1", "b", 2)]


def test_unknown_offers_are_left_out_of_the_choices() -> None:
    problem = domain.build_problem([offer("b", "h2")], [participant("p1", ["not-yet-known", "b"])])
    assert problem.participants[0].choices == ("b",)


def test_declined_pairs_are_forbidden_for_present_people_and_known_offers_only() -> None:
    problem = domain.build_problem(
        [offer("a")], [participant("p", ["a"])], declined={("p", "a"), ("gone", "a"), ("p", "unknown")}
    )
    assert problem.forbidden == {("p", "a")}


def test_too_late_offers_are_kept_from_waiting_people_only() -> None:
    offers = [offer("soon"), offer("own", host_org="x"), offer("later", host_org="h2", day=date(2027, 6, 9))]
    people = [participant("waiting", ["soon", "own", "later"], 0), participant("late", ["soon"], 1)]
    problem = domain.build_problem(offers, people, waiting={"waiting"}, too_late={"soon", "own"})
    # Not "own": an offer at one's own organisation keeps that reason in the explanation.
    assert problem.forbidden == {("waiting", "soon")}

    result = engine.solve(problem)
    assert {(a.participant, a.offer) for a in result.assignments} == {("waiting", "later"), ("late", "soon")}


def test_an_open_seat_offer_is_never_forbidden_even_when_its_day_is_close() -> None:
    problem = domain.build_problem(
        [offer("a")], [participant("p", ["a"])], frozen={("p", "a")}, waiting={"p"}, too_late={"a"}
    )
    assert problem.forbidden == frozenset()
    assert engine.solve(problem).assigned == 1


def test_input_hash_ignores_row_order_but_not_content() -> None:
    offers = [offer("a", "h1"), offer("b", "h2", capacity=2)]
    people = [participant("p1", ["a"]), participant("p2", ["b", "a"], 1, org="y")]
    h = domain.input_hash(domain.build_problem(offers, people))
    assert domain.input_hash(domain.build_problem(offers[::-1], people[::-1])) == h
    assert domain.input_hash(domain.build_problem([offer("a", "h1", capacity=2), offers[1]], people)) != h
    assert domain.input_hash(domain.build_problem(offers, people, declined={("p1", "a")})) != h  # forbidden pairs count


# --- what a run announces --------------------------------------------------------------------------
def test_waitlisted_versus_unmatched_and_positions() -> None:
    people = [
        participant("p1", ["a"], 0),
        participant("p2", ["a"], 1),  # could take a if it frees up: waitlisted, position 1
        participant("p3", ["a"], 2, org="h1"),  # own organisation: never possible, unmatched
        participant("p4", ["a"], 3, available=[date(2027, 6, 2)]),  # never available that day
        participant("p5", ["a"], 4, org="y"),  # waitlisted, position 2
    ]
    _, plan = solve_and_plan([offer("a")], people)
    states = {o.signup_id: (o.state, o.reason_code, o.position) for o in plan.outcomes}
    assert states == {
        "p1": ("assigned", None, None),
        "p2": ("waitlisted", "all_full", 1),
        "p5": ("waitlisted", "all_full", 2),
        "p3": ("unmatched", "own_org", None),
        "p4": ("unmatched", "unavailable", None),
    }
    assert sorted(o.signup_id for o in plan.announce) == ["p2", "p3", "p4", "p5"]
    assert {o.reason_code for o in plan.outcomes if o.reason_code} <= set(UNMATCHED_REASONS)


def test_only_changes_are_announced_and_frozen_pairs_are_not_new() -> None:
    offers = [offer("a", "h1"), offer("b", "h2")]
    people = [participant("p1", ["a"], 0), participant("p2", ["a"], 1), participant("p3", ["b"], 2)]
    before = previous(p2=("waitlisted", "all_full"), p3=("unmatched", "all_full"))
    _, plan = solve_and_plan(offers, people, before, frozen=[("p1", "a")])
    assert [(a.participant, a.offer) for a in plan.new_assignments] == [("p3", "b")]
    assert plan.announce == []  # p2 is still waiting: no second e-mail


def test_a_freed_seat_is_offered_to_a_waitlisted_person_but_assigned_to_others() -> None:
    offers = [offer("a"), offer("b", host_org="h2"), offer("c", host_org="h3")]
    people = [
        participant("waiting", ["a"], 0),  # was told: waiting list
        participant("moved", ["b"], 1),  # was told: assigned (to a cancelled offer), now displaced
        participant("late", ["c"], 2),  # signed up after publication, was told nothing yet
    ]
    _, plan = solve_and_plan(offers, people, previous(waiting=("waitlisted", "all_full"), moved=("assigned", None)))

    assert [(a.participant, a.offer) for a in plan.new_seat_offers] == [("waiting", "a")]
    assert sorted((a.participant, a.offer) for a in plan.new_assignments) == [("late", "c"), ("moved", "b")]
    states = {o.signup_id: o.state for o in plan.outcomes}
    assert states == {"waiting": "offered", "moved": "assigned", "late": "assigned"}
    assert plan.announce == []  # SeatOffered and MatchAssigned tell them, not a waiting-list e-mail


def test_the_seat_goes_to_the_earliest_waiting_person_and_moves_on_when_declined() -> None:
    people = [participant("first", ["a"], 0), participant("second", ["a"], 1), participant("third", ["a"], 2)]
    before = previous(first=("waitlisted", "all_full"), second=("waitlisted", "all_full"), third=("waitlisted", "all_full"))

    _, plan = solve_and_plan([offer("a")], people, before)
    assert [a.participant for a in plan.new_seat_offers] == ["first"]

    # "first" declined (or let it expire): the pair is never placed again, "second" is next.
    before["first"] = domain.MatchOutcome("first", "waitlisted")
    _, plan = solve_and_plan([offer("a")], people, before, declined={("first", "a")})
    assert [a.participant for a in plan.new_seat_offers] == ["second"]
    first = next(o for o in plan.outcomes if o.signup_id == "first")
    assert (first.state, first.reason_code) == ("unmatched", domain.SEAT_OFFERS_ENDED)
    assert domain.SEAT_OFFERS_ENDED in UNMATCHED_REASONS
    assert [o.signup_id for o in plan.announce] == ["first"]  # told once that nothing is left


def test_an_open_seat_offer_holds_its_seat_and_its_holder_gets_nothing_else() -> None:
    offers = [offer("a"), offer("b", host_org="h2", day=date(2027, 6, 2))]
    people = [participant("holder", ["a", "b"], 0, max_visits=2), participant("next", ["a"], 1)]
    before = previous(holder=("offered", None), next=("waitlisted", "all_full"))
    problem, plan = solve_and_plan(offers, people, before, frozen={("holder", "a")}, open_seat_offers={("holder", "a")})

    assert problem.participants[0].max_visits == 1  # one seat offer at a time
    assert plan.new_seat_offers == [] and plan.new_assignments == []
    states = {o.signup_id: (o.state, o.position) for o in plan.outcomes}
    assert states == {"holder": ("offered", None), "next": ("waitlisted", 1)}
    assert plan.announce == []


def test_a_waiting_person_with_two_visits_is_offered_one_seat_at_a_time() -> None:
    offers = [offer("a"), offer("b", host_org="h2", day=date(2027, 6, 2))]
    _, plan = solve_and_plan(offers, [participant("p", ["a", "b"], max_visits=2)], previous(p=("waitlisted", "all_full")))
    assert [(a.participant, a.offer) for a in plan.new_seat_offers] == [("p", "a")]


def test_an_unmatched_person_who_gets_a_seat_later_is_assigned_directly() -> None:
    _, plan = solve_and_plan([offer("a")], [participant("p", ["a"])], previous(p=("unmatched", "all_full")))
    assert [a.participant for a in plan.new_assignments] == ["p"] and plan.new_seat_offers == []


def test_a_too_late_offer_keeps_the_person_waitlisted_not_unmatched() -> None:
    people = [participant("holder", ["a"], 0), participant("p", ["a"], 1)]
    before = previous(holder=("assigned", None), p=("waitlisted", "all_full"))
    _, plan = solve_and_plan([offer("a")], people, before, frozen={("holder", "a")}, too_late={"a"})
    assert [(o.signup_id, o.state, o.position) for o in plan.outcomes] == [("holder", "assigned", None), ("p", "waitlisted", 1)]
    assert plan.announce == []
