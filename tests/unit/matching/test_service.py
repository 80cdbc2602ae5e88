"""Matching's use cases against the fake unit of work: the seat-offer state machine (accept, decline,
expiry, 409/404), re-match marking, the cancellation cascade, the withdrawal release, a run, the
correlation id that follows each participant onto the events, scoping (another region's edition or run
is refused exactly like an unknown one) and a participant's link (the page changes nothing, the button
answers once). Milliseconds, no infrastructure."""

from __future__ import annotations

import asyncio
import copy
import functools
import dataclasses
import inspect
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
from prometheus_client import CollectorRegistry

from estafette.runtime.access import Principal
from estafette.runtime.errors import Conflict, DomainError, NotFound
from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted, SeatOfferEnded, SeatOffered, SignupSubmitted
from services.matching import domain, engine, handlers, service
from services.matching.repository import Repository, RunLocks
from tests.unit.fakes import FakeUnitOfWork

from .builders import ADMIN, RUN, T0, link_of, offer, organiser, participant
from .fakes import EDITION, FakeClock, FakeRepository, FakeRunLocks, Row, cid, given, with_seat_offer

CID = uuid.UUID("00000000-0000-4000-8000-00000000c1d0")  # the request's correlation id
RULES = service.SeatOfferRules(hours=48, timezone=ZoneInfo("Europe/Amsterdam"))


async def in_tx(uow: FakeUnitOfWork[FakeRepository], use_case: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """A consumer's use case, inside one transaction (as the Kafka consumer runs it)."""
    async with uow.transaction() as tx:
        return await use_case(tx, *args)


async def refused(uow: FakeUnitOfWork[FakeRepository], call: Awaitable[Any], error: type[DomainError], code: str) -> DomainError:
    """A use case that must be refused stores and publishes nothing."""
    before = copy.deepcopy(vars(uow.repo)), list(uow.published)
    with pytest.raises(error) as caught:
        await call
    assert caught.value.code == code
    assert (vars(uow.repo), uow.published) == before
    return caught.value


def test_the_fakes_have_the_methods_of_what_they_stand_for() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(f).parameters)
            for name, f in vars(cls).items() if inspect.iscoroutinefunction(f) and not name.startswith("_")
        }

    assert methods(FakeRepository) == methods(Repository)
    assert methods(FakeRunLocks) == methods(RunLocks)


# --- seat offers: accept -------------------------------------------------------------------------
async def test_accept_makes_the_assignment_and_announces_it_with_the_participants_correlation_id() -> None:
    uow = with_seat_offer()
    answered = await service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0)

    assert answered.state == "accepted" and answered.ended_at == T0
    assert uow.repo.rows["p1", "a"].status == "active"
    assert uow.repo.outcomes["p1"][1].state == "assigned"
    [event] = uow.published
    assert isinstance(event, MatchAssigned)
    assert (event.signup_id, event.offer.offer_id, event.rank, event.run_id) == ("p1", "a", 1, RUN)
    assert event.correlation_id == cid("p1")  # the sign-up's, not the answering request's
    assert (event.edition, event.region) == (EDITION, "twente")
    assert EDITION not in uow.repo.rematch_since  # nothing freed: no re-match


async def test_an_event_falls_back_to_the_requests_correlation_id_for_a_participant_from_before() -> None:
    uow = with_seat_offer()
    _, p = uow.repo.participants["p1"]
    uow.repo.participants["p1"] = (EDITION, domain.Participant(**{**vars(p), "correlation_id": None}))
    await service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0)
    assert uow.published[0].correlation_id == CID


# --- decline and expiry ----------------------------------------------------------------------------
async def test_decline_ends_the_seat_offer_the_person_waits_and_the_edition_is_marked_for_rematch() -> None:
    uow = with_seat_offer()
    answered = await service.decline_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0)

    assert answered.state == "declined"
    assert uow.repo.outcomes["p1"][1].state == "waitlisted"
    assert await uow.repo.declined_pairs(EDITION) == {("p1", "a")}  # never placed again
    assert EDITION in uow.repo.rematch_since  # the seat goes to the next person
    [event] = uow.published
    assert isinstance(event, SeatOfferEnded)
    assert (event.signup_id, event.offer_id, event.reason, event.run_id) == ("p1", "a", "declined", RUN)
    assert event.correlation_id == cid("p1")


async def test_expiry_ends_only_the_seat_offers_whose_time_is_up() -> None:
    uow = with_seat_offer("p1", "a", expires_in=timedelta(minutes=-1))
    uow.repo.participants["p2"] = (EDITION, participant("p2", ["b"], correlation_id=cid("p2")))
    uow.repo.rows["p2", "b"] = Row(EDITION, 1, RUN, "offered", T0, T0, T0 + timedelta(minutes=1))

    assert await service.expire_seat_offers(uow, T0) == 1

    assert (uow.repo.rows["p1", "a"].status, uow.repo.rows["p2", "b"].status) == ("expired", "offered")
    assert uow.repo.outcomes["p1"][1].state == "waitlisted"
    assert EDITION in uow.repo.rematch_since
    [event] = uow.published
    assert isinstance(event, SeatOfferEnded)
    assert (event.signup_id, event.reason, event.correlation_id) == ("p1", "expired", cid("p1"))
    assert await service.expire_seat_offers(uow, T0) == 0  # nothing left to end


@pytest.mark.parametrize(
    ("status", "expires_in", "code", "says"),
    [
        ("offered", timedelta(seconds=-1), "seat_offer_expired", "expired at"),  # not yet ended by the loop
        ("expired", timedelta(seconds=-1), "seat_offer_expired", "expired at"),
        ("active", timedelta(hours=1), "seat_offer_accepted", "accepted already"),
        ("declined", timedelta(hours=1), "seat_offer_declined", "was declined"),
        ("released", timedelta(hours=1), "seat_offer_withdrawn", "withdrawn"),
        ("displaced", timedelta(hours=1), "seat_offer_cancelled", "host cancelled"),
    ],
)
@pytest.mark.parametrize("answer", [service.accept_seat_offer, service.decline_seat_offer])
async def test_a_seat_offer_that_is_not_open_answers_409(
    answer: Callable[..., Awaitable[Any]], status: str, expires_in: timedelta, code: str, says: str
) -> None:
    uow = with_seat_offer(status=status, expires_in=expires_in)
    error = await refused(uow, answer(uow, ADMIN, EDITION, "p1", CID, T0), Conflict, code)
    assert says in error.message


async def test_unknown_edition_or_no_seat_offer_answers_404() -> None:
    uow = with_seat_offer()
    await refused(uow, service.accept_seat_offer(uow, ADMIN, "nowhere", "p1", CID, T0), NotFound, "unknown_edition")
    await refused(uow, service.decline_seat_offer(uow, ADMIN, EDITION, "p9", CID, T0), NotFound, "unknown_seat_offer")
    uow.repo.rows["p1", "a"] = Row(EDITION, 1, RUN)  # assigned by a run: never a seat offer
    await refused(uow, service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0), NotFound, "unknown_seat_offer")


async def test_the_organisers_view_counts_what_became_of_each_seat_offer() -> None:
    uow = with_seat_offer()
    await service.decline_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0)
    view = await service.seat_offers(uow, ADMIN, EDITION, T0)
    assert [s.state for s in view.seat_offers] == ["declined"]
    assert {k: v for k, v in view.counts.items() if v} == {"declined": 1}
    assert list(view.counts) == list(domain.SEAT_OFFER_STATES)
    with pytest.raises(NotFound):
        await service.seat_offers(uow, ADMIN, "nowhere", T0)


# --- re-match marking ------------------------------------------------------------------------------
@pytest.mark.parametrize(("published", "marked"), [(False, False), (True, True)])
async def test_a_signup_or_offer_marks_the_edition_for_rematch_only_after_publication(published: bool, marked: bool) -> None:
    uow = given(published=published)
    await in_tx(uow, service.add_participant, EDITION, participant("late", ["a"]))
    assert (EDITION in uow.repo.rematch_since) is marked
    uow.repo.rematch_since.clear()
    await in_tx(uow, service.publish_offer, EDITION, offer("new"))
    assert (EDITION in uow.repo.rematch_since) is marked
    assert [p.signup_id for p in await uow.repo.participants_of(EDITION)] == ["late"]


async def test_a_signup_received_twice_is_kept_once_and_marks_nothing_the_second_time() -> None:
    uow = given()
    await in_tx(uow, service.add_participant, EDITION, participant("p1", ["a"], correlation_id=cid("p1")))
    uow.repo.rematch_since.clear()
    await in_tx(uow, service.add_participant, EDITION, participant("p1", ["b"]))
    assert uow.repo.participants["p1"][1].choices == ["a"] and uow.repo.participants["p1"][1].correlation_id == cid("p1")
    assert EDITION not in uow.repo.rematch_since


# --- cancellation cascade and withdrawal release ------------------------------------------------------
async def test_cancelling_an_offer_displaces_its_assignments_and_open_seat_offers() -> None:
    uow = given(offers=(offer("a", capacity=3), offer("b", "h2")))
    for signup_id, offer_id, status in [("p1", "a", "active"), ("p2", "a", "offered"), ("p3", "a", "declined"), ("p4", "b", "active")]:
        uow.repo.rows[signup_id, offer_id] = Row(EDITION, 1, RUN, status)
    await in_tx(uow, service.cancel_offer, EDITION, "a")

    assert uow.repo.offers["a"][1].status == "cancelled"
    statuses = {pair: row.status for pair, row in uow.repo.rows.items()}
    assert statuses == {("p1", "a"): "displaced", ("p2", "a"): "displaced", ("p3", "a"): "declined", ("p4", "b"): "active"}
    assert EDITION in uow.repo.rematch_since


async def test_cancelling_an_unknown_or_cancelled_offer_changes_nothing() -> None:
    uow = given(offers=(offer("a", status="cancelled"),))
    before = copy.deepcopy(vars(uow.repo))
    await in_tx(uow, service.cancel_offer, EDITION, "a")
    await in_tx(uow, service.cancel_offer, EDITION, "unknown")
    assert vars(uow.repo) == before


async def test_a_withdrawal_releases_the_seats_and_forgets_the_outcome() -> None:
    uow = with_seat_offer("p1", "a")
    uow.repo.rows["p1", "b"] = Row(EDITION, 2, RUN, "active")
    uow.repo.rows["p1", "c"] = Row(EDITION, 3, RUN, "expired")
    await in_tx(uow, service.withdraw_participant, EDITION, "p1")

    assert uow.repo.participants["p1"][1].status == "withdrawn"
    assert {p: r.status for p, r in uow.repo.rows.items()} == {("p1", "a"): "released", ("p1", "b"): "released", ("p1", "c"): "expired"}
    assert "p1" not in uow.repo.outcomes
    assert EDITION in uow.repo.rematch_since
    # The seat offer is void now: answering it is a 409 that says so.
    await refused(uow, service.accept_seat_offer(uow, ADMIN, EDITION, "p1", CID, T0), Conflict, "seat_offer_withdrawn")


async def test_a_withdrawal_before_publication_marks_nothing() -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    await in_tx(uow, service.withdraw_participant, EDITION, "p1")
    assert uow.repo.participants["p1"][1].status == "withdrawn" and not uow.repo.rematch_since


# --- runs ------------------------------------------------------------------------------------------
async def run_once(uow: FakeUnitOfWork[FakeRepository], correlation_id: uuid.UUID = CID) -> domain.RunFigures:
    """A run as the Runner does it: start, snapshot, solve, record."""
    run_id = uuid.uuid4()
    await service.start_run(uow, ADMIN, EDITION, run_id)
    snap = await service.take_snapshot(uow, EDITION, RULES, T0)
    return await service.record_result(uow, run_id, EDITION, correlation_id, snap, engine.solve(snap.problem), 0.0)


async def test_a_run_announces_each_outcome_with_that_participants_correlation_id() -> None:
    people = (
        participant("p1", ["a"], 0, correlation_id=cid("p1")),
        participant("p2", ["a"], 1, correlation_id=cid("p2")),  # the one seat is taken: waits
        participant("p3", ["a"], 2, org="h1"),  # own organisation, signed up before ids were kept
    )
    uow = given(people=people, published=False)
    figures = await run_once(uow)

    assert (figures.assigned, figures.waitlisted, figures.unmatched) == (1, 1, 1)
    by_type = {type(e): e for e in uow.published}
    assert by_type[MatchAssigned].signup_id == "p1" and by_type[MatchAssigned].correlation_id == cid("p1")
    waitlisted = by_type[MatchWaitlisted]
    assert (waitlisted.signup_id, waitlisted.reason_code, waitlisted.position, waitlisted.correlation_id) == ("p2", "all_full", 1, cid("p2"))
    unmatched = by_type[MatchUnmatched]
    assert (unmatched.signup_id, unmatched.reason_code, unmatched.correlation_id) == ("p3", "own_org", CID)  # fallback
    run_ids = {e.run_id for e in uow.published}
    assert len(run_ids) == 1
    finished = uow.repo.runs[run_ids.pop()]
    assert (finished.status, finished.figures) == ("done", figures)


async def test_after_publication_a_freed_seat_is_offered_to_the_waiting_person() -> None:
    people = (participant("p1", ["a"], 0, correlation_id=cid("p1")), participant("p2", ["a"], 1, correlation_id=cid("p2")))
    uow = given(people=people, published=False)
    await run_once(uow)
    await in_tx(uow, service.withdraw_participant, EDITION, "p1")
    assert EDITION in uow.repo.rematch_since
    uow.published.clear()

    figures = await run_once(uow)
    assert (figures.newly_assigned, figures.newly_offered) == (0, 1)
    [event] = uow.published
    assert isinstance(event, SeatOffered)
    assert (event.signup_id, event.correlation_id, event.expires_at) == ("p2", cid("p2"), T0 + timedelta(hours=48))
    assert EDITION not in uow.repo.rematch_since
    assert (await service.accept_seat_offer(uow, ADMIN, EDITION, "p2", CID, T0)).state == "accepted"


async def test_a_second_run_while_one_is_running_is_a_conflict_and_unknown_editions_404() -> None:
    uow = given()
    await service.start_run(uow, ADMIN, EDITION, uuid.uuid4())
    await refused(uow, service.start_run(uow, ADMIN, EDITION, uuid.uuid4()), Conflict, "run_in_progress")
    await refused(uow, service.start_run(uow, ADMIN, "nowhere", uuid.uuid4()), NotFound, "unknown_edition")
    with pytest.raises(NotFound):
        await service.run(uow, ADMIN, uuid.uuid4())


async def test_the_runner_executes_a_run_in_the_background_with_its_log_lines_bound_to_the_run(monkeypatch) -> None:
    uow = given(people=(participant("p1", ["a"], correlation_id=cid("p1")),), published=False)
    bound: list[dict[str, Any]] = []
    finish = uow.repo.finish_run

    async def finish_and_look(run_id: uuid.UUID, figures: domain.RunFigures) -> None:
        context = structlog.contextvars.get_contextvars()
        bound.append({key: context[key] for key in ("run_id", "edition_id") if key in context})
        await finish(run_id, figures)

    monkeypatch.setattr(uow.repo, "finish_run", finish_and_look)
    runner = service.Runner(uow, service.RunMetrics(CollectorRegistry()), RULES, FakeRunLocks(), clock=FakeClock())
    started = await runner.start(ADMIN, EDITION)
    await asyncio.gather(*runner.tasks.values())

    assert (await service.run(uow, ADMIN, started.id)).status == "done"
    assert bound == [{"run_id": str(started.id), "edition_id": EDITION}]
    [event] = uow.published
    assert isinstance(event, MatchAssigned) and event.correlation_id == cid("p1") and event.run_id == started.id


async def test_views_of_an_edition() -> None:
    uow = given(offers=(offer("a", capacity=2), offer("b", status="cancelled")), people=(participant("p1", ["a"]),), published=False)
    await run_once(uow)
    overview = await service.edition(uow, ADMIN, EDITION)
    assert (overview.offers, overview.seats, overview.participants, overview.assignments, overview.rematch_pending) == (1, 2, 1, 1, False)
    found = await service.assignments(uow, ADMIN, EDITION)
    assert [(a.signup_id, a.offer_id, a.rank) for a in found.assignments] == [("p1", "a", 1)] and found.waiting_list == []
    assert [r.status for r in await service.runs(uow, ADMIN, EDITION)] == ["done"]
    for view in (service.edition, service.assignments):
        with pytest.raises(NotFound):
            await view(uow, ADMIN, "nowhere")


# --- scoping: an edition of a region the caller may not see is answered like an unknown one ----------
def _views(principal: Principal, edition_id: str) -> list[Awaitable[Any]]:
    """Every organisers' use case about one edition (the reads and the acts), for `principal`."""
    uow = with_seat_offer()
    return [
        service.edition(uow, principal, edition_id), service.runs(uow, principal, edition_id),
        service.assignments(uow, principal, edition_id), service.seat_offers(uow, principal, edition_id, T0),
        service.start_run(uow, principal, edition_id, uuid.uuid4()),
        service.accept_seat_offer(uow, principal, edition_id, "p1", CID, T0),
        service.decline_seat_offer(uow, principal, edition_id, "p1", CID, T0),
    ]


@pytest.mark.parametrize("who", [organiser("groningen"), link_of("p2"), link_of("p1", "other-2027")], ids=["org-B", "link-of-other", "link-other-edition"])
async def test_an_edition_the_caller_may_not_see_is_refused_exactly_like_an_unknown_one(who: Principal) -> None:
    for mine, unknown in zip(_views(who, EDITION), _views(ADMIN, "nowhere"), strict=True):
        with pytest.raises(NotFound) as hidden:
            await mine
        with pytest.raises(NotFound) as missing:
            await unknown
        assert hidden.value.code == missing.value.code == "unknown_edition"
        assert hidden.value.message == missing.value.message.replace("nowhere", EDITION)


async def test_a_refused_answer_changes_nothing() -> None:
    uow = with_seat_offer()
    await refused(uow, service.accept_seat_offer(uow, organiser("groningen"), EDITION, "p1", CID, T0), NotFound, "unknown_edition")
    await refused(uow, service.decline_seat_offer(uow, link_of("p2"), EDITION, "p1", CID, T0), NotFound, "unknown_edition")


@pytest.mark.parametrize("who", [ADMIN, organiser("twente")], ids=["admin", "org-A"])
async def test_an_organiser_of_the_region_and_an_admin_see_and_answer_on_the_participants_behalf(who: Principal) -> None:
    uow = with_seat_offer()
    assert (await service.edition(uow, who, EDITION)).seat_offers_open == 1
    assert [s.signup_id for s in (await service.seat_offers(uow, who, EDITION, T0)).seat_offers] == ["p1"]
    assert (await service.accept_seat_offer(uow, who, EDITION, "p1", CID, T0)).state == "accepted"
    assert [type(e) for e in uow.published] == [MatchAssigned]


async def test_a_run_is_scoped_by_its_editions_region() -> None:
    uow = given()
    started = await service.start_run(uow, organiser("twente"), EDITION, uuid.uuid4())
    assert (await service.run(uow, organiser("twente"), started.id)).id == started.id
    with pytest.raises(NotFound) as hidden:
        await service.run(uow, organiser("groningen"), started.id)
    unknown = uuid.uuid4()
    with pytest.raises(NotFound) as missing:
        await service.run(uow, ADMIN, unknown)
    assert hidden.value.code == missing.value.code == "unknown_run"
    assert hidden.value.message == missing.value.message.replace(str(unknown), str(started.id))


async def test_the_participant_of_a_link_sees_no_organisers_view() -> None:
    uow = with_seat_offer()
    for view in (service.edition, service.assignments, functools.partial(service.seat_offers, now=T0), service.runs):
        with pytest.raises(NotFound):
            await view(uow, link_of("p1"), EDITION)


# --- a participant's link: the page (GET) and its one button (POST) -----------------------------------
async def test_opening_a_link_shows_the_seat_offer_and_changes_nothing() -> None:
    uow = with_seat_offer()
    before = copy.deepcopy(vars(uow.repo))
    for answer in ("accept", "decline"):
        shown = await service.seat_offer_link(uow, link_of("p1"), answer, T0)
        assert (shown.result, shown.seat_offer.state, shown.offer.title, shown.language) == ("open", "open", "Offer a", "nl")
    assert vars(uow.repo) == before and uow.published == []


async def test_pressing_accept_answers_once_and_pressing_again_changes_nothing() -> None:
    uow = with_seat_offer()
    pressed = await service.answer_by_link(uow, link_of("p1"), "accept", CID, T0)
    assert (pressed.result, pressed.seat_offer.state) == ("answered", "accepted")
    [event] = uow.published
    assert isinstance(event, MatchAssigned) and event.signup_id == "p1" and event.correlation_id == cid("p1")

    before = copy.deepcopy(vars(uow.repo))
    again = await service.answer_by_link(uow, link_of("p1"), "accept", CID, T0)
    assert (again.result, again.seat_offer.state) == ("again", "accepted")
    assert (await service.seat_offer_link(uow, link_of("p1"), "accept", T0)).result == "again"
    assert vars(uow.repo) == before and len(uow.published) == 1  # no second MatchAssigned


async def test_pressing_decline_answers_once_and_pressing_again_changes_nothing() -> None:
    uow = with_seat_offer()
    assert (await service.answer_by_link(uow, link_of("p1"), "decline", CID, T0)).result == "answered"
    again = await service.answer_by_link(uow, link_of("p1"), "decline", CID, T0)
    assert (again.result, again.seat_offer.state) == ("again", "declined")
    assert [type(e) for e in uow.published] == [SeatOfferEnded]


@pytest.mark.parametrize(
    ("status", "expires_in", "answer", "state"),
    [
        ("offered", timedelta(seconds=-1), "accept", "expired"),  # time is up, the loop has not ended it yet
        ("expired", timedelta(seconds=-1), "decline", "expired"),
        ("active", timedelta(hours=1), "decline", "accepted"),
        ("declined", timedelta(hours=1), "accept", "declined"),
        ("released", timedelta(hours=1), "accept", "withdrawn"),
        ("displaced", timedelta(hours=1), "decline", "cancelled"),
    ],
)
async def test_a_link_to_a_seat_offer_that_is_not_open_any_more_says_what_happened_and_changes_nothing(
    status: str, expires_in: timedelta, answer: domain.Answer, state: str
) -> None:
    uow = with_seat_offer(status=status, expires_in=expires_in)
    before = copy.deepcopy(vars(uow.repo))
    pressed = await service.answer_by_link(uow, link_of("p1"), answer, CID, T0)
    assert (pressed.result, pressed.seat_offer.state) == ("not_open", state)
    assert vars(uow.repo) == before and uow.published == []


async def test_a_link_without_a_seat_offer_behind_it_is_not_found() -> None:
    uow = given(people=(participant("p1", ["a"]),))
    for call in (service.seat_offer_link(uow, link_of("p1"), "accept", T0), service.answer_by_link(uow, link_of("p1"), "accept", CID, T0)):
        await refused(uow, call, NotFound, "unknown_seat_offer")
    await refused(uow, service.answer_by_link(uow, ADMIN, "accept", CID, T0), NotFound, "unknown_seat_offer")  # not a link


async def test_a_link_bound_to_one_seat_offer_answers_only_that_one() -> None:
    """The e-mail's links are bound to the offer of their seat offer: an old e-mail's link never answers
    a later seat offer of the same person (on another offer)."""
    uow = with_seat_offer(offer_id="a")
    before = copy.deepcopy(vars(uow.repo))
    for call in (service.seat_offer_link(uow, link_of("p1", offer_id="b"), "accept", T0),
                 service.answer_by_link(uow, link_of("p1", offer_id="b"), "accept", CID, T0)):
        await refused(uow, call, NotFound, "unknown_seat_offer")
    assert vars(uow.repo) == before and uow.published == []

    pressed = await service.answer_by_link(uow, link_of("p1", offer_id="a"), "accept", CID, T0)
    assert (pressed.result, pressed.seat_offer.state) == ("answered", "accepted")


# --- the handler: a v2 sign-up carries no personal data ---------------------------------------------
async def test_a_signup_is_kept_without_personal_data() -> None:
    uow = given(published=False)
    submitted = SignupSubmitted(
        region="twente", edition=EDITION, signup_id="s1", org="org-x", language="de", choices=["a"],
        max_visits=2, signed_up_at=T0, correlation_id=cid("s1"),
    )
    await in_tx(uow, handlers.signup_submitted, submitted)
    _, kept = uow.repo.participants["s1"]
    assert kept == domain.Participant("s1", "org-x", "de", ["a"], None, 2, T0, "active", cid("s1"))
    assert not {"name", "email"} & set(vars(kept))


# --- regions: an instance serves a set of regions; runs elsewhere are queued -------------------------
GRONINGEN = "groningen-2027"


def two_regions(**kwargs: Any) -> FakeUnitOfWork[FakeRepository]:
    """`given(...)` (an edition of twente) plus an edition of groningen with one offer and one person."""
    uow = given(**kwargs)
    uow.repo.editions[GRONINGEN] = domain.Edition(GRONINGEN, "groningen")
    uow.repo.offers["g"] = (GRONINGEN, offer("g"))
    uow.repo.participants["q1"] = (GRONINGEN, participant("q1", ["g"], correlation_id=cid("q1")))
    return uow


def runner_of(uow: FakeUnitOfWork[FakeRepository], regions: tuple[str, ...] | None, locks: FakeRunLocks | None = None) -> service.Runner:
    """The runner of an instance serving `regions` (None: every region)."""
    return service.Runner(uow, service.RunMetrics(CollectorRegistry()), RULES, locks or FakeRunLocks(), regions, clock=FakeClock())


async def settle(runner: service.Runner) -> None:
    """Wait for the runs executing in `runner`."""
    while runner.tasks:
        await asyncio.gather(*list(runner.tasks.values()), return_exceptions=True)


async def test_a_run_requested_on_an_instance_of_another_region_is_queued_not_executed() -> None:
    uow = two_regions(published=False)
    instance = runner_of(uow, ("twente",))
    queued = await instance.start(organiser("groningen"), GRONINGEN, CID)

    assert (queued.status, queued.stage, queued.attempt, queued.correlation_id) == ("queued", "queued", 0, CID)
    assert instance.tasks == {} and instance.locks.held == set()  # nothing executes here, no lock kept
    await refused(uow, instance.start(ADMIN, GRONINGEN), Conflict, "run_in_progress")  # one at a time
    assert (await service.run(uow, organiser("groningen"), queued.id)).status == "queued"
    assert uow.published == []


async def test_an_instance_of_the_region_starts_a_queued_run_and_the_others_leave_it() -> None:
    uow = two_regions(published=False)
    queued = await runner_of(uow, ("twente",)).start(ADMIN, GRONINGEN, CID)

    for other in (("twente",), ("drenthe", "utrecht")):
        locks = FakeRunLocks()
        assert await service.take_over_runs(uow, locks, other) == service.TakenOver([], [], busy=0)
        assert locks.taken == []  # never even tried: not its region
    locks = FakeRunLocks()
    taken = await service.take_over_runs(uow, locks, ("groningen",))
    [started] = taken.execute
    assert (started.id, started.status, started.stage, started.attempt) == (queued.id, "running", "loading", 1)
    assert locks.held == {queued.id} and taken.failed == []
    assert await service.take_over_runs(uow, locks, ("groningen",)) == service.TakenOver([], [], busy=1)  # its own: never again


async def test_the_instance_of_the_region_executes_a_queued_run_with_the_requests_correlation_id() -> None:
    uow = two_regions(published=False)
    queued = await runner_of(uow, ("twente",)).start(ADMIN, GRONINGEN, CID)
    groningen = runner_of(uow, ("groningen",))
    await groningen.take_over()
    await settle(groningen)

    done = uow.repo.runs[queued.id]
    assert (done.status, done.attempt, done.figures and done.figures.assigned) == ("done", 1, 1)
    [event] = uow.published
    assert isinstance(event, MatchAssigned) and (event.signup_id, event.run_id, event.region) == ("q1", queued.id, "groningen")
    assert groningen.locks.held == set()  # released when the run ended


async def test_a_run_another_live_instance_executes_is_never_touched() -> None:
    uow = two_regions(published=False)
    executing = await service.start_run(uow, ADMIN, GRONINGEN, uuid.uuid4(), ("groningen",))
    before = copy.deepcopy(vars(uow.repo))
    # Same region (scale-out) or every region: the other instance holds the run's lock.
    for regions in (("groningen",), None):
        locks = FakeRunLocks(others={executing.id})
        assert await service.take_over_runs(uow, locks, regions) == service.TakenOver([], [], busy=1)
        assert locks.held == set()
    assert vars(uow.repo) == before


async def test_an_interrupted_run_is_resumed_by_an_instance_of_its_region_and_finishes() -> None:
    uow = two_regions(published=False)
    interrupted = await service.start_run(uow, ADMIN, GRONINGEN, uuid.uuid4(), ("groningen",), CID)
    assert await service.take_over_runs(uow, FakeRunLocks(), ("twente",)) == service.TakenOver([], [], busy=0)  # not its region
    assert uow.repo.runs[interrupted.id].status == "running"

    instance = runner_of(uow, ("groningen",))  # e.g. the restarted one: nobody holds the lock any more
    await instance.take_over()
    await settle(instance)
    resumed = uow.repo.runs[interrupted.id]
    assert (resumed.status, resumed.attempt, resumed.error) == ("done", 2, None)
    assert [(type(e), e.signup_id, e.run_id) for e in uow.published] == [(MatchAssigned, "q1", interrupted.id)]


async def test_a_run_interrupted_too_often_is_failed_and_its_lock_released() -> None:
    uow = two_regions(published=False)
    run_id = uuid.uuid4()
    await service.start_run(uow, ADMIN, GRONINGEN, run_id, ("groningen",))
    uow.repo.runs[run_id] = dataclasses.replace(uow.repo.runs[run_id], attempt=domain.MAX_RUN_ATTEMPTS)
    locks = FakeRunLocks()
    taken = await service.take_over_runs(uow, locks, None)

    assert [r.id for r in taken.failed] == [run_id] and taken.execute == []
    failed = uow.repo.runs[run_id]
    assert (failed.status, failed.error) == ("failed", domain.interrupted_error(failed))
    assert locks.held == set() and uow.published == []


async def test_the_runs_of_this_instance_are_not_taken_over_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    instance = runner_of(uow, None)
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
    assert await service.take_over_runs(uow, instance.locks, None) == service.TakenOver([], [], busy=1)
    await instance.take_over()
    assert list(instance.tasks) == [started.id] and uow.repo.runs[started.id].attempt == 1
    go_on.set()
    await settle(instance)
    assert uow.repo.runs[started.id].status == "done"


async def test_a_result_is_written_only_by_the_execution_that_still_has_the_run() -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    run_id = uuid.uuid4()
    await service.start_run(uow, ADMIN, EDITION, run_id)
    snap = await service.take_snapshot(uow, EDITION, RULES, T0)
    uow.repo.runs[run_id] = dataclasses.replace(uow.repo.runs[run_id], attempt=2)  # resumed by another instance
    before = copy.deepcopy(vars(uow.repo))
    call = service.record_result(uow, run_id, EDITION, CID, snap, engine.solve(snap.problem), 0.0, attempt=1)
    await refused(uow, call, Conflict, "run_taken_over")
    await service.fail_run(uow, run_id, "boom", attempt=1)  # nor failed by it
    await service.set_progress(uow, run_id, 1, "solve", 0.5)
    assert vars(uow.repo) == before


async def test_a_run_whose_lock_was_lost_stops_here_and_writes_nothing() -> None:
    uow = given(people=(participant("p1", ["a"]),), published=False)
    instance = runner_of(uow, None)
    instance.stall_runs = True  # the run waits after its snapshot
    started = await instance.start(ADMIN, EDITION)
    task = instance.tasks[started.id]
    instance.locks.lose(started.id)  # e.g. its session broke and another instance took the run meanwhile
    await instance.take_over()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert uow.repo.runs[started.id].status == "running" and uow.published == []  # the other instance's now


async def test_rematch_and_seat_offer_expiry_touch_only_the_served_regions() -> None:
    uow = with_seat_offer("p1", "a", expires_in=timedelta(minutes=-1))  # of twente: its time is up
    uow.repo.editions[GRONINGEN] = domain.Edition(GRONINGEN, "groningen")
    uow.repo.rematch_since.update({EDITION: T0 - timedelta(minutes=1), GRONINGEN: T0 - timedelta(minutes=1)})

    assert await service.editions_to_rematch(uow, 2.0, ("groningen",)) == [GRONINGEN]
    assert await service.editions_to_rematch(uow, 2.0, ("twente", "drenthe")) == [EDITION]
    assert set(await service.editions_to_rematch(uow, 2.0)) == {EDITION, GRONINGEN}
    assert await service.expire_seat_offers(uow, T0, ("groningen",)) == 0
    assert uow.repo.rows["p1", "a"].status == "offered" and uow.published == []
    assert await service.expire_seat_offers(uow, T0, ("twente",)) == 1
    assert uow.repo.rows["p1", "a"].status == "expired"


async def test_the_loop_of_an_instance_rematches_only_editions_of_its_regions() -> None:
    uow = two_regions(people=(participant("p1", ["a"]),))  # both published: twente's run RUN is done
    uow.repo.runs[uuid.uuid4()] = domain.MatchRun(uuid.uuid4(), GRONINGEN, "full", "done", "done", 1.0, T0)
    uow.repo.rematch_since.update({EDITION: T0 - timedelta(minutes=1), GRONINGEN: T0 - timedelta(minutes=1)})
    instance = runner_of(uow, ("groningen",))
    stopping = asyncio.Event()
    loop = asyncio.create_task(instance.rematch_loop(stopping, debounce=2.0, poll=0.001))
    async with asyncio.timeout(10):  # a guard, not a measurement
        while GRONINGEN in uow.repo.rematch_since or instance.tasks:
            await asyncio.sleep(0.001)
    stopping.set()
    await loop

    assert [r.status for r in await uow.repo.runs_of(GRONINGEN)][0] == "done"
    assert [r.id for r in await uow.repo.runs_of(EDITION)] == [RUN]  # twente: left alone, still marked
    assert EDITION in uow.repo.rematch_since
    assert instance.locks.closed
