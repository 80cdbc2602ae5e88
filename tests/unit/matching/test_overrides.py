"""Issue 11: organisers' overrides (pin, forbid; audited), the dry-run preview (writes nothing) and
the runs' explanations per person, against the fake repository."""

from __future__ import annotations

import copy
import time
import uuid
from zoneinfo import ZoneInfo

import pytest

from estafette.runtime.errors import Conflict, NotFound, RuleViolation
from services.matching import engine, service

from .builders import ADMIN, T0, offer, organiser, participant
from .fakes import EDITION, given

RULES = service.SeatOfferRules(hours=48, timezone=ZoneInfo("Europe/Amsterdam"))
#: a (1 seat), b (1 seat); p1 signed up first and chose a; p2 chose a, then b.
OFFERS = (offer("a"), offer("b"))
PEOPLE = (participant("p1", ["a"], minutes=0), participant("p2", ["a", "b"], minutes=1))


def uow():
    return given(OFFERS, PEOPLE, published=False)


async def run_once(u) -> uuid.UUID:
    run_id = uuid.uuid4()
    await service.start_run(u, ADMIN, EDITION, run_id)
    snap = await service.take_snapshot(u, EDITION, RULES, T0)
    result = engine.solve(snap.problem)
    await service.record_result(u, run_id, EDITION, run_id, snap, result, time.perf_counter())
    return run_id


async def test_a_pin_changes_the_result_and_is_audited() -> None:
    u = uow()
    made = await service.add_override(u, organiser(), EDITION, "p2", "a", "pin", "needs the bakery", T0)
    assert (made.kind, made.created_by, made.created_at, made.reason) == ("pin", "key:twente", T0, "needs the bakery")
    await run_once(u)
    placed = {(a.signup_id, a.offer_id) for a in await u.repo.assignments_of(EDITION)}
    assert placed == {("p2", "a")}  # without the pin: p1 on a, p2 on b


async def test_without_overrides_the_first_sign_up_gets_its_choice() -> None:
    u = uow()
    await run_once(u)
    assert {(a.signup_id, a.offer_id) for a in await u.repo.assignments_of(EDITION)} == {("p1", "a"), ("p2", "b")}


async def test_a_forbid_keeps_the_pair_apart_and_the_explanation_says_so() -> None:
    u = uow()
    await service.add_override(u, ADMIN, EDITION, "p1", "a", "forbid", "works there next month", T0)
    run_id = await run_once(u)
    assert {(a.signup_id, a.offer_id) for a in await u.repo.assignments_of(EDITION)} == {("p2", "a")}
    [why] = await service.explanations(u, ADMIN, run_id, "p1")
    assert (why.code, [(c.offer_id, c.reason) for c in why.choices]) == ("forbidden", [("a", "forbidden")])
    placed = {e.signup_id: e for e in await service.explanations(u, ADMIN, run_id)}
    assert (placed["p2"].code, placed["p2"].ranks) == ("placed", [1])


async def test_a_removed_override_stays_listed_and_no_longer_applies() -> None:
    u = uow()
    made = await service.add_override(u, ADMIN, EDITION, "p2", "a", "pin", "why", T0)
    removed = await service.remove_override(u, organiser(), EDITION, made.id, T0)
    assert (removed.removed_by, removed.removed_at) == ("key:twente", T0)
    assert await service.overrides(u, ADMIN, EDITION) == []
    assert [o.id for o in await service.overrides(u, ADMIN, EDITION, include_removed=True)] == [made.id]
    await run_once(u)
    assert {(a.signup_id, a.offer_id) for a in await u.repo.assignments_of(EDITION)} == {("p1", "a"), ("p2", "b")}


@pytest.mark.parametrize(("signup_id", "offer_id", "kind", "code"), [
    ("p1", "b", "pin", "not_chosen"),
    ("nobody", "a", "forbid", "unknown_signup"),
    ("p1", "zz", "forbid", "unknown_offer"),
])
async def test_overrides_that_cannot_be_made_are_refused(signup_id: str, offer_id: str, kind, code: str) -> None:
    u = uow()
    with pytest.raises(RuleViolation) as refused:
        await service.add_override(u, ADMIN, EDITION, signup_id, offer_id, kind, "why", T0)
    assert refused.value.code == code
    assert u.repo.overrides == {}


async def test_one_live_override_per_pair_and_other_regions_see_nothing() -> None:
    u = uow()
    await service.add_override(u, ADMIN, EDITION, "p1", "a", "forbid", "why", T0)
    with pytest.raises(Conflict) as again:
        await service.add_override(u, ADMIN, EDITION, "p1", "a", "pin", "why", T0)
    assert again.value.code == "override_exists"
    with pytest.raises(NotFound):
        await service.overrides(u, organiser("groningen"), EDITION)
    with pytest.raises(NotFound):
        await service.add_override(u, organiser("groningen"), EDITION, "p2", "a", "pin", "why", T0)


async def test_the_preview_shows_the_difference_and_writes_nothing() -> None:
    u = uow()
    await run_once(u)  # published: p1 on a, p2 on b
    await service.add_override(u, ADMIN, EDITION, "p1", "a", "forbid", "why", T0)
    await u.repo.add_participants([(EDITION, participant("p3", ["b", "a"], minutes=2))])
    before = copy.deepcopy(vars(u.repo))
    published = list(u.published)
    shown = await service.preview(u, ADMIN, EDITION, RULES, T0)
    assert vars(u.repo) == before and u.published == published  # nothing written, nothing announced
    # Published pairs are frozen (the forbid does not move p1); p3 finds no room.
    assert {(p.signup_id, p.offer_id) for p in shown.assignments} == {("p1", "a"), ("p2", "b")}
    assert shown.diff.newly_placed == [] and shown.diff.moved == []
    assert [o.signup_id for o in shown.diff.newly_waitlisted] == ["p3"]
    assert (shown.diff.unchanged, shown.overrides) == (2, 1)


async def test_the_preview_names_who_would_be_newly_placed() -> None:
    u = uow()
    shown = await service.preview(u, organiser(), EDITION, RULES, T0)
    assert [(p.signup_id, p.offer_id, p.state) for p in shown.diff.newly_placed] == [("p1", "a", "assigned"), ("p2", "b", "assigned")]
    assert u.repo.runs == {} and u.repo.rows == {}


async def test_an_infeasible_pin_is_a_conflict_in_the_preview() -> None:
    u = given((offer("a", host_org="x"),), (participant("p1", ["a"], org="x"),), published=False)
    await service.add_override(u, ADMIN, EDITION, "p1", "a", "pin", "own org", T0)
    with pytest.raises(Conflict) as refused:
        await service.preview(u, ADMIN, EDITION, RULES, T0)
    assert refused.value.code == "override_infeasible" and "own organisation" in refused.value.message
