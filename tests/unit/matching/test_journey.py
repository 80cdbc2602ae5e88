"""Matching's part of the journey (issue 9), against the fakes: closed and cancelled editions are never
matched again (409, no re-match, queued runs failed, a run in flight writes nothing), a cancellation
ends the open seat offers without an event, pending sign-ups wait for their employer's approval, a
refusal ends a sign-up like a withdrawal, changed sign-ups and offers, the automatic run at the
sign-up deadline (a scheduled step), and "now" from the platform clock. Also the engine: frozen pairs
keep their seats when an offer changed under them. Milliseconds, no infrastructure."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from estafette.runtime.errors import Conflict, DomainError
from schemas import (
    EditionCancelled,
    EditionOpened,
    MatchAssigned,
    MatchWaitlisted,
    OfferChanged,
    SeatOffered,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
)
from services.matching import domain, engine, handlers, service
from tests.unit.fakes import FakeUnitOfWork

from .builders import ADMIN, DAY, RUN, T0, engine_offer, engine_participant, offer, participant
from .fakes import EDITION, FakeClock, FakeRepository, FakeRunLocks, Row, cid, given, with_seat_offer

CID = uuid.UUID("00000000-0000-4000-8000-00000000c1d0")
RULES = service.SeatOfferRules(hours=48, timezone=ZoneInfo("Europe/Amsterdam"))
DEADLINE = datetime(2027, 5, 1, tzinfo=UTC)


async def in_tx(uow: FakeUnitOfWork[FakeRepository], use_case: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    async with uow.transaction() as tx:
        return await use_case(tx, *args)


async def refused(uow: FakeUnitOfWork[FakeRepository], call: Awaitable[Any], error: type[DomainError], code: str) -> DomainError:
    before = copy.deepcopy(vars(uow.repo)), list(uow.published)
    with pytest.raises(error) as caught:
        await call
    assert caught.value.code == code
    assert (vars(uow.repo), uow.published) == before
    return caught.value


async def run_once(uow: FakeUnitOfWork[FakeRepository], now: datetime = T0) -> domain.RunFigures:
    run_id = uuid.uuid4()
    await service.start_run(uow, ADMIN, EDITION, run_id)
    snap = await service.take_snapshot(uow, EDITION, RULES, now)
    return await service.record_result(uow, run_id, EDITION, CID, snap, engine.solve(snap.problem), 0.0)


def runner_of(uow: FakeUnitOfWork[FakeRepository], clock: FakeClock | None = None) -> service.Runner:
    return service.Runner(uow, service.RunMetrics(CollectorRegistry()), RULES, FakeRunLocks(), clock=clock or FakeClock())


async def settle(runner: service.Runner) -> None:
    while runner.tasks:
        await asyncio.gather(*list(runner.tasks.values()), return_exceptions=True)


def set_status(uow: FakeUnitOfWork[FakeRepository], status: str) -> None:
    uow.repo.editions[EDITION] = dataclasses.replace(uow.repo.editions[EDITION], status=status)


def assigned_pairs(uow: FakeUnitOfWork[FakeRepository]) -> set[tuple[str, str]]:
    return {pair for pair, row in uow.repo.rows.items() if row.status == "active"}


# --- the engine: frozen pairs are published facts ----------------------------------------------------
def test_frozen_pairs_beyond_an_offers_lowered_capacity_keep_their_seats_and_nobody_new_is_placed() -> None:
    offers = [engine_offer("x", capacity=1), engine_offer("y", capacity=1)]
    people = [
        engine_participant("a", 1, ("x",)), engine_participant("b", 2, ("x",)),  # both placed before the change
        engine_participant("c", 3, ("x", "y")), engine_participant("d", 4, ("x",)),
    ]
    result = engine.solve(engine.Problem(offers, people, frozen={("a", "x"), ("b", "x")}))
    assert {(a.participant, a.offer) for a in result.assignments} == {("a", "x"), ("b", "x"), ("c", "y")}
    assert result.unmatched == ("d",) and result.explanations["d"].code == "all_full"


def test_a_frozen_pair_keeps_its_seat_after_its_offer_moved_to_a_day_the_participant_did_not_give() -> None:
    offers = [engine_offer("x", day="2027-06-02"), engine_offer("y", day="2027-06-02")]
    people = [engine_participant("a", 1, ("x", "y"), available=frozenset({date(2027, 5, 31)}), max_visits=2)]
    result = engine.solve(engine.Problem(offers, people, frozen={("a", "x")}))
    assert [(a.participant, a.offer) for a in result.assignments] == [("a", "x")]  # y: same day, not available


def test_a_pinned_pair_must_still_be_feasible() -> None:
    offers = [engine_offer("x", capacity=1)]
    people = [engine_participant("a", 1, ("x",)), engine_participant("b", 2, ("x",))]
    with pytest.raises(engine.MatchingError, match="pinned pair"):
        engine.solve(engine.Problem(offers, people, pinned={("a", "x"), ("b", "x")}))


# --- domain rules --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "code"), [("closed", "edition_closed"), ("cancelled", "edition_cancelled")])
def test_a_closed_or_cancelled_edition_is_never_matched_again(status: str, code: str) -> None:
    edition = domain.Edition(EDITION, "twente", status)
    assert not domain.matchable(edition)
    with pytest.raises(Conflict) as caught:
        domain.check_matchable(edition)
    assert caught.value.code == code and "never matched again" in caught.value.message
    run = domain.MatchRun(uuid.uuid4(), EDITION, "full", "queued", "queued", 0.0, T0, attempt=0)
    assert domain.take_over(run, edition) == "fail"
    assert domain.take_over_error(run, edition).startswith(f"{code}: ")
    domain.check_matchable(domain.Edition(EDITION, "twente"))  # open: fine


def _deadline_edition(status: str = "open", match_at_deadline: bool = True) -> domain.Edition:
    return domain.Edition(EDITION, "twente", status, match_at_deadline=match_at_deadline, signup_deadline=DEADLINE)


@pytest.mark.parametrize(
    ("edition", "runs", "runs_now"),
    [
        (_deadline_edition(), [], True),
        (_deadline_edition(), ["failed"], True),  # a failed run published nothing
        (_deadline_edition(), ["queued"], False),
        (_deadline_edition(), ["running"], False),
        (_deadline_edition(), ["done"], False),  # published already (the organiser ran it)
        (_deadline_edition("closed"), [], False),
        (_deadline_edition("cancelled"), [], False),
        (_deadline_edition(match_at_deadline=False), [], False),
        (None, [], False),
    ],
)
def test_the_automatic_run_at_the_deadline(edition: domain.Edition | None, runs: list[str], runs_now: bool) -> None:
    found = [domain.MatchRun(uuid.uuid4(), EDITION, "full", s, s, 0.0, T0) for s in runs]
    assert domain.deadline_run(edition, found) is runs_now


def test_approval_changed_signups_and_changed_offers_decide() -> None:
    pending = participant("p", ["a"]).__class__(**{**vars(participant("p", ["a"])), "approval": "pending"})
    assert not domain.may_be_matched(pending)
    assert domain.approve(pending, has_published_run=True) == domain.Change(True, rematch=True)
    assert domain.approve(dataclasses.replace(pending, approval="approved"), True) == domain.Change(False)
    assert domain.change_signup(pending, [], has_published_run=True) == domain.Change(True, rematch=False)  # still pending
    placed = participant("q", ["a"])
    assert domain.change_signup(placed, [domain.Assignment("q", "a", 1, "active")], True) == domain.Change(False)
    assert domain.change_signup(placed, [], True) == domain.Change(True, rematch=True)
    old = offer("a", capacity=2)
    assert domain.change_offer(old, dataclasses.replace(old, capacity=3, sequence=1), True) == domain.Change(True, True)
    assert domain.change_offer(old, dataclasses.replace(old, capacity=1, sequence=1), True) == domain.Change(True, False)
    assert domain.change_offer(old, dataclasses.replace(old, capacity=3, sequence=1), False) == domain.Change(True, False)
    assert domain.change_offer(dataclasses.replace(old, sequence=2), dataclasses.replace(old, sequence=1), True).applies is False
    assert domain.change_offer(dataclasses.replace(old, status="cancelled"), dataclasses.replace(old, sequence=1), True).applies is False
    assert domain.change_offer(None, old, True).applies is False


# --- closed and cancelled editions ---------------------------------------------------------------------
@pytest.mark.parametrize(("status", "code"), [("closed", "edition_closed"), ("cancelled", "edition_cancelled")])
async def test_a_run_of_a_closed_or_cancelled_edition_is_refused(status: str, code: str) -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    set_status(uow, status)
    await refused(uow, service.start_run(uow, ADMIN, EDITION, uuid.uuid4()), Conflict, code)
    await refused(uow, runner_of(uow).start(ADMIN, EDITION), Conflict, code)


async def test_cancelling_ends_open_seat_offers_without_an_event_and_keeps_the_assignments() -> None:
    uow = with_seat_offer("p1", "a")
    uow.repo.offers["b"] = (EDITION, offer("b", "h2"))
    uow.repo.participants["p2"] = (EDITION, participant("p2", ["b"], correlation_id=cid("p2")))
    uow.repo.rows["p2", "b"] = Row(EDITION, 1, RUN, "active")
    uow.repo.rematch_since[EDITION] = T0
    queued = uuid.uuid4()
    await runner_of(uow).locks.take(queued)
    uow.repo.runs[queued] = domain.MatchRun(queued, EDITION, "incremental", "queued", "queued", 0.0, T0, attempt=0)
    uow.repo.steps["match_at_deadline", EDITION] = DEADLINE

    await in_tx(uow, handlers.edition_cancelled, EditionCancelled(region="twente", edition=EDITION, reason="corona"))

    assert uow.repo.editions[EDITION].status == "cancelled"
    assert {p: r.status for p, r in uow.repo.rows.items()} == {("p1", "a"): "cancelled", ("p2", "b"): "active"}
    assert uow.published == []  # notifications tells everyone, once
    assert EDITION not in uow.repo.rematch_since and uow.repo.steps == {}
    failed = uow.repo.runs[queued]
    assert (failed.status, failed.error and failed.error.split(":")[0]) == ("failed", "edition_cancelled")
    # The seat offer is void: answering says so, and the organiser's view counts it as cancelled.
    error = await refused(uow, service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0), Conflict, "seat_offer_cancelled")
    assert "edition was cancelled" in error.message
    assert (await service.seat_offers(uow, ADMIN, EDITION, T0)).counts["cancelled"] == 1
    # Cancelled once: again, nothing changes.
    before = copy.deepcopy(vars(uow.repo))
    await in_tx(uow, service.cancel_edition, EDITION)
    await in_tx(uow, service.close_edition, EDITION)  # a cancelled edition stays cancelled
    assert vars(uow.repo) == before


async def test_after_a_cancellation_a_withdrawal_frees_the_seat_but_nothing_is_rematched() -> None:
    uow = given(people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    await run_once(uow)
    await in_tx(uow, service.cancel_edition, EDITION)
    await in_tx(uow, service.withdraw_participant, EDITION, "p1")
    assert uow.repo.rows["p1", "a"].status == "released"
    assert EDITION not in uow.repo.rematch_since
    uow.repo.rematch_since[EDITION] = T0 - timedelta(minutes=1)  # a mark from before the cancellation
    assert await service.editions_to_rematch(uow, 2.0) == []


async def test_the_rematch_loop_never_runs_a_closed_edition(monkeypatch: pytest.MonkeyPatch) -> None:
    uow = given(people=(participant("p1", ["a"]),))
    await in_tx(uow, service.close_edition, EDITION)
    uow.repo.rematch_since[EDITION] = T0 - timedelta(minutes=1)  # a mark from before it was closed
    instance = runner_of(uow)
    stopping = asyncio.Event()
    rounds: list[list[str]] = []
    looked_up = service.editions_to_rematch

    async def counted(*args: Any) -> list[str]:
        rounds.append(found := await looked_up(*args))
        if len(rounds) == 3:
            stopping.set()
        return found

    monkeypatch.setattr(service, "editions_to_rematch", counted)
    await instance.rematch_loop(stopping, debounce=2.0, poll=0.001)
    assert rounds == [[], [], []]
    assert [r.id for r in await uow.repo.runs_of(EDITION)] == [RUN]


async def test_a_queued_run_of_an_edition_cancelled_meanwhile_fails_with_that_reason_on_take_over() -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    queued = await service.start_run(uow, ADMIN, EDITION, uuid.uuid4(), ("groningen",))
    set_status(uow, "cancelled")  # as if the cancellation arrived while the run was being queued
    locks = FakeRunLocks()
    taken = await service.take_over_runs(uow, locks, None)
    assert [r.id for r in taken.failed] == [queued.id] and taken.execute == []
    assert uow.repo.runs[queued.id].error == domain.run_error(Conflict("edition_cancelled", f"edition {EDITION} was cancelled: it is never matched again"))
    assert locks.held == set() and uow.published == []


@pytest.mark.parametrize("ending", [service.cancel_edition, service.close_edition])
async def test_a_run_in_flight_writes_nothing_when_its_edition_ends_meanwhile(monkeypatch: pytest.MonkeyPatch, ending) -> None:
    uow = given(people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    instance = runner_of(uow)
    loop = asyncio.get_running_loop()
    solving, go_on = asyncio.Event(), asyncio.Event()
    solve = engine.solve

    def held_up_solve(*args: Any) -> engine.Result:  # in the worker thread
        loop.call_soon_threadsafe(solving.set)
        asyncio.run_coroutine_threadsafe(go_on.wait(), loop).result()
        return solve(*args)

    monkeypatch.setattr(engine, "solve", held_up_solve)
    started = await instance.start(ADMIN, EDITION)
    await solving.wait()
    await in_tx(uow, ending, EDITION)
    go_on.set()
    await settle(instance)

    run = uow.repo.runs[started.id]
    code = "edition_cancelled" if ending is service.cancel_edition else "edition_closed"
    assert run.status == "failed" and run.error is not None and run.error.startswith(f"{code}: ")
    assert uow.published == [] and uow.repo.rows == {} and uow.repo.outcomes == {}


# --- approval ----------------------------------------------------------------------------------------------
def submitted(signup_id: str, choices: list[str], approval: str = "not_required", minutes: int = 0) -> SignupSubmitted:
    return SignupSubmitted(region="twente", edition=EDITION, signup_id=signup_id, org="org-x", choices=choices,
                           signed_up_at=T0 + timedelta(minutes=minutes), approval=approval, correlation_id=cid(signup_id))


async def test_a_pending_signup_is_kept_but_not_matched_until_it_is_approved() -> None:
    uow = given(offers=(offer("a", capacity=2),), published=False)
    await in_tx(uow, handlers.signup_submitted, submitted("p1", ["a"], "pending"))
    await in_tx(uow, handlers.signup_submitted, submitted("p2", ["a"], minutes=1))
    assert uow.repo.participants["p1"][1].approval == "pending"
    overview = await service.edition(uow, ADMIN, EDITION)
    assert (overview.participants, overview.awaiting_approval) == (1, 1)

    figures = await run_once(uow)
    assert figures.participants == 1 and assigned_pairs(uow) == {("p2", "a")}
    assert [e.signup_id for e in uow.published] == ["p2"]  # nothing about p1: not matched yet
    assert EDITION not in uow.repo.rematch_since

    await in_tx(uow, handlers.signup_approved, SignupApproved(region="twente", edition=EDITION, signup_id="p1"))
    assert uow.repo.participants["p1"][1].approval == "approved"
    assert EDITION in uow.repo.rematch_since  # published: the approved person is matched now
    await run_once(uow)
    assert assigned_pairs(uow) == {("p1", "a"), ("p2", "a")}
    [late] = [e for e in uow.of_type(MatchAssigned) if e.signup_id == "p1"]
    assert late.correlation_id == cid("p1")


async def test_a_pending_signup_after_publication_marks_nothing_and_an_approval_twice_changes_nothing() -> None:
    uow = given()
    await in_tx(uow, handlers.signup_submitted, submitted("p1", ["a"], "pending"))
    assert EDITION not in uow.repo.rematch_since
    await in_tx(uow, service.approve_participant, EDITION, "p1")
    uow.repo.rematch_since.clear()
    before = copy.deepcopy(vars(uow.repo))
    await in_tx(uow, service.approve_participant, EDITION, "p1")
    await in_tx(uow, service.approve_participant, EDITION, "unknown")
    assert vars(uow.repo) == before


async def test_a_refusal_ends_the_signup_like_a_withdrawal() -> None:
    uow = with_seat_offer("p1", "a")
    uow.repo.participants["p1"] = (EDITION, dataclasses.replace(uow.repo.participants["p1"][1], approval="approved"))
    await in_tx(uow, handlers.signup_refused, SignupRefused(region="twente", edition=EDITION, signup_id="p1", reason="no"))
    assert uow.repo.participants["p1"][1].status == "refused"
    assert uow.repo.rows["p1", "a"].status == "released" and "p1" not in uow.repo.outcomes
    assert EDITION in uow.repo.rematch_since and uow.published == []
    assert await uow.repo.participants_of(EDITION) == []


# --- changed sign-ups ----------------------------------------------------------------------------------------
async def test_a_waiting_participant_changes_choices_and_is_rematched_a_placed_one_keeps_the_assignment() -> None:
    uow = given(offers=(offer("a"), offer("b", "h2")), people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    await run_once(uow)
    assert assigned_pairs(uow) == {("p1", "a")}

    await in_tx(uow, handlers.signup_changed, SignupChanged(region="twente", edition=EDITION, signup_id="p2", choices=["b"], max_visits=1))
    assert uow.repo.participants["p2"][1].choices == ["b"] and EDITION in uow.repo.rematch_since
    await run_once(uow)
    assert uow.repo.rows["p2", "b"].status == "offered"  # they were told they wait: the seat is offered to them
    uow.repo.rematch_since.clear()

    before = copy.deepcopy(vars(uow.repo))
    await in_tx(uow, handlers.signup_changed, SignupChanged(region="twente", edition=EDITION, signup_id="p1", choices=["b"]))
    assert vars(uow.repo) == before  # placed: frozen, the change is not applied


# --- changed offers --------------------------------------------------------------------------------------------
def changed(offer_id: str, sequence: int, capacity: int = 1, title: str = "Offer a", day: date = DAY) -> OfferChanged:
    return OfferChanged(region="twente", edition=EDITION, offer_id=offer_id, host_org="h1", title=title, date=day,
                        capacity=capacity, location="Hengelo", sequence=sequence, changed=["capacity"])


async def test_more_seats_rematch_and_place_the_waiting_list_with_the_changed_offer_on_the_events() -> None:
    uow = given(people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    await run_once(uow)
    uow.published.clear()
    await in_tx(uow, handlers.offer_changed, changed("a", 1, capacity=2, title="Bakery tour", day=date(2027, 6, 2)))
    kept = uow.repo.offers["a"][1]
    assert (kept.capacity, kept.title, kept.date, kept.location, kept.sequence) == (2, "Bakery tour", date(2027, 6, 2), "Hengelo", 1)
    assert EDITION in uow.repo.rematch_since

    await run_once(uow)
    [offered] = uow.of_type(SeatOffered)  # p2 was told they wait: the new seat is offered to them
    assert offered.signup_id == "p2" and (offered.offer.title, offered.offer.date, offered.offer.location) == ("Bakery tour", date(2027, 6, 2), "Hengelo")
    # An older version arriving late changes nothing.
    before = copy.deepcopy(vars(uow.repo))
    await in_tx(uow, handlers.offer_changed, changed("a", 1, capacity=9))
    assert vars(uow.repo) == before


async def test_fewer_seats_than_taken_keep_those_placed_and_place_nobody_new() -> None:
    uow = given(offers=(offer("a", capacity=2),), people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    await run_once(uow)
    await in_tx(uow, handlers.offer_changed, changed("a", 1, capacity=1))
    assert EDITION not in uow.repo.rematch_since
    await in_tx(uow, service.add_participant, EDITION, participant("p3", ["a"], 2))
    uow.published.clear()
    figures = await run_once(uow)  # the re-match: no crash, no infeasible problem
    assert assigned_pairs(uow) == {("p1", "a"), ("p2", "a")} and figures.assigned == 2
    [waiting] = uow.published
    assert isinstance(waiting, MatchWaitlisted) and (waiting.signup_id, waiting.reason_code) == ("p3", "all_full")


# --- the automatic run at the sign-up deadline --------------------------------------------------------------
def opened(match_at_deadline: bool = True, deadline: datetime = DEADLINE) -> EditionOpened:
    return EditionOpened(region="twente", edition=EDITION, name="Twente", signup_deadline=deadline,
                         starts_on=date(2027, 5, 31), ends_on=date(2027, 6, 4), match_at_deadline=match_at_deadline,
                         requires_approval=True)


async def test_an_edition_with_match_at_deadline_schedules_its_run_at_the_deadline() -> None:
    uow = FakeUnitOfWork(FakeRepository())
    await in_tx(uow, handlers.edition_opened, opened())
    kept = uow.repo.editions[EDITION]
    assert (kept.requires_approval, kept.match_at_deadline, kept.signup_deadline, kept.status) == (True, True, DEADLINE, "open")
    assert uow.repo.steps == {("match_at_deadline", EDITION): DEADLINE}
    await in_tx(uow, handlers.edition_opened, opened(match_at_deadline=False))
    assert uow.repo.steps == {}
    await in_tx(uow, handlers.edition_opened, opened())
    await in_tx(uow, service.close_edition, EDITION)
    assert uow.repo.steps == {} and uow.repo.editions[EDITION].status == "closed"
    await in_tx(uow, handlers.edition_opened, opened())  # a redelivery never reopens it
    assert uow.repo.editions[EDITION].status == "closed"


async def test_the_deadline_step_records_one_queued_run_that_the_take_over_starts() -> None:
    uow = given(people=(participant("p1", ["a"], correlation_id=cid("p1")),), published=False)
    uow.repo.editions[EDITION] = dataclasses.replace(uow.repo.editions[EDITION], match_at_deadline=True, signup_deadline=DEADLINE)
    queued = await in_tx(uow, service.match_at_deadline, EDITION, DEADLINE)
    assert queued is not None and (queued.status, queued.attempt, queued.id) == ("queued", 0, domain.deadline_run_id(EDITION, DEADLINE))
    assert await in_tx(uow, service.match_at_deadline, EDITION, DEADLINE) is None  # once
    instance = runner_of(uow)
    await instance.take_over()
    await settle(instance)
    assert uow.repo.runs[queued.id].status == "done"
    assert await in_tx(uow, service.match_at_deadline, EDITION, DEADLINE + timedelta(days=1)) is None  # published
    assert [e.signup_id for e in uow.of_type(MatchAssigned)] == ["p1"]


async def test_no_deadline_run_for_a_cancelled_edition() -> None:
    uow = given(published=False)
    uow.repo.editions[EDITION] = dataclasses.replace(uow.repo.editions[EDITION], match_at_deadline=True, status="cancelled")
    assert await in_tx(uow, service.match_at_deadline, EDITION, DEADLINE) is None
    assert uow.repo.runs == {}


# --- the platform clock ---------------------------------------------------------------------------------------
async def test_seat_offers_are_made_and_expired_on_the_platform_clock() -> None:
    uow = given(people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    await run_once(uow)
    await in_tx(uow, service.withdraw_participant, EDITION, "p1")
    later = T0 + timedelta(days=20)  # the test clock moved on; the fake database clock did not
    clock = FakeClock(later)
    instance = runner_of(uow, clock)
    await instance.start(ADMIN, EDITION)
    await settle(instance)
    [offered] = uow.of_type(SeatOffered)
    assert offered.expires_at == later + timedelta(hours=48)
    assert uow.repo.rows["p2", "a"].offered_at == later

    assert await service.expire_seat_offers(uow, later + timedelta(hours=47)) == 0
    assert await service.expire_seat_offers(uow, later + timedelta(hours=48)) == 1
    assert uow.repo.rows["p2", "a"].status == "expired" and uow.repo.rows["p2", "a"].ended_at == later + timedelta(hours=48)


async def test_a_seat_offer_is_open_or_expired_as_of_the_clock_it_is_read_at() -> None:
    uow = with_seat_offer(expires_in=timedelta(hours=1))
    assert (await service.seat_offers(uow, ADMIN, EDITION, T0)).seat_offers[0].state == "open"
    assert (await service.seat_offers(uow, ADMIN, EDITION, T0 + timedelta(hours=2))).seat_offers[0].state == "expired"
    await refused(uow, service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0 + timedelta(hours=2)), Conflict, "seat_offer_expired")
