"""The unmatched reason codes are the published ones (schemas/reasons.py): the engine once emitted
`full` where the contract and every e-mail text say `all_full`, so that sentence never reached anyone."""

from __future__ import annotations

import pytest

from bench.generate import generate
from schemas.reasons import REASON_TEXTS, UNMATCHED_REASONS
from services.matching import domain, engine

from .builders import engine_offer, engine_participant, offer, participant
from .helpers import solve_doc


def test_every_code_the_engine_can_give_an_unmatched_person_is_published() -> None:
    assert set(engine.UNMATCHED_CODES) <= set(UNMATCHED_REASONS)
    assert {engine.UNMATCHED_CODE_OF[reason] for reason in engine.CHOICE_REASONS} <= set(UNMATCHED_REASONS)
    assert all(engine.UNMATCHED_CODES[code] == REASON_TEXTS[code] for code in engine.UNMATCHED_CODES)
    # The only published code the engine does not emit is the domain's, after ended seat offers.
    assert set(UNMATCHED_REASONS) - set(engine.UNMATCHED_CODES) == {domain.SEAT_OFFERS_ENDED}


def test_a_person_whose_every_choice_is_full_gets_all_full() -> None:
    offers = [engine_offer("x"), engine_offer("y", host_org="org-i")]
    people = [engine_participant("early", 1, ("x",)), engine_participant("early-2", 2, ("y",)),
              engine_participant("late", 3, ("x", "y"))]
    result = engine.solve(engine.Problem(offers, people))
    explanation = result.explanations["late"]
    assert (explanation.code, explanation.text) == ("all_full", REASON_TEXTS["all_full"])
    assert [n.reason for n in explanation.choices] == ["full", "full"]  # per choice: that one offer was full


def test_the_service_announces_all_full_for_a_full_edition() -> None:
    people = [participant("p1", ["a"], 0), participant("p2", ["a"], 1)]
    problem = domain.build_problem([offer("a")], people)
    plan = domain.plan(problem, engine.solve(problem), {})
    assert [(o.signup_id, o.state, o.reason_code) for o in plan.announce] == [("p2", "waitlisted", "all_full")]


@pytest.mark.parametrize("seed", [1, 2])
def test_every_code_emitted_on_generated_editions_is_published(seed: int) -> None:
    result = solve_doc(generate(400, 25, seed, capacity_ratio=0.5, org_cap_share=0.5, restricted_share=0.5))
    codes = {result.explanations[sid].code for sid in result.unmatched}
    assert "all_full" in codes and codes <= set(UNMATCHED_REASONS)
