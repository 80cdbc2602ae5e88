"""Determinism and tie-breaking: the same instance in any order gives a byte-identical RESULT,
and equal-cost alternatives are decided in favour of earlier sign-ups."""

from __future__ import annotations

import random

import pytest

from bench.generate import generate

from .builders import offer_doc, participant_doc
from .helpers import result_doc, solve_doc


def shuffled(doc: dict, seed: int) -> dict:
    """Same instance: offers, participants, availability lists and object keys reordered
    (choices keep their order: it is the ranking)."""
    rnd = random.Random(seed)

    def reorder(d: dict) -> dict:
        items = list(d.items())
        rnd.shuffle(items)
        return dict(items)

    offers = [reorder(o) for o in doc["offers"]]
    people = []
    for p in doc["participants"]:
        p = dict(p)
        if "available" in p:
            p["available"] = rnd.sample(p["available"], len(p["available"]))
        people.append(reorder(p))
    rnd.shuffle(offers)
    rnd.shuffle(people)
    return {"participants": people, "offers": offers}


@pytest.mark.parametrize("participants, offers, seed", [(1_900, 120, 1), (3_000, 150, 2)])
def test_shuffled_input_gives_identical_result_bytes(participants: int, offers: int, seed: int) -> None:
    from services.matching.instance import result_to_json

    doc = generate(participants, offers, seed, two_visit_share=0.1)
    reference = result_to_json(solve_doc(doc))
    for k in range(3):
        assert result_to_json(solve_doc(shuffled(doc, k))) == reference


def placements(doc: dict) -> dict[str, tuple[str, int]]:
    return {a["participant"]: (a["offer"], a["rank"]) for a in result_doc(doc)["assignments"]}


def test_contested_seat_goes_to_the_earlier_sign_up() -> None:
    # Listed late-first and with ids against sign-up order, so neither order nor id decides.
    doc = {"offers": [offer_doc("x")], "participants": [participant_doc("a", 5, ["x"]), participant_doc("b", 1, ["x"])]}
    assert placements(doc) == {"b": ("x", 1)}


def test_equal_sign_up_times_are_broken_by_id() -> None:
    doc = {"offers": [offer_doc("x")], "participants": [participant_doc("p-2", 1, ["x"]), participant_doc("p-1", 1, ["x"])]}
    assert placements(doc) == {"p-1": ("x", 1)}


def test_earlier_sign_up_gets_the_better_rank_of_a_swap() -> None:
    # Both rank x first and y second: 1 + 4 either way, so the earlier one gets x.
    doc = {
        "offers": [offer_doc("x"), offer_doc("y")],
        "participants": [participant_doc("late", 7, ["x", "y"]), participant_doc("early", 3, ["x", "y"])],
    }
    assert placements(doc) == {"early": ("x", 1), "late": ("y", 2)}


def test_rank_cost_beats_sign_up_order() -> None:
    # early at x and late at y would cost 1 + 9; early at y and late at x costs 4 + 1.
    doc = {
        "offers": [offer_doc("x"), offer_doc("y"), offer_doc("w", capacity=0)],
        "participants": [participant_doc("early", 1, ["x", "y"]), participant_doc("late", 2, ["x", "w", "y"])],
    }
    assert placements(doc) == {"early": ("y", 2), "late": ("x", 1)}


def test_placements_beat_rank_cost() -> None:
    doc = {
        "offers": [offer_doc("x"), offer_doc("y")],
        "participants": [participant_doc("a", 1, ["x", "y"]), participant_doc("b", 2, ["x"])],
    }
    assert placements(doc) == {"a": ("y", 2), "b": ("x", 1)}


def test_full_tie_break_up_to_national_scale_weaker_beyond() -> None:
    import numpy as np

    from services.matching import engine

    person, rank = np.arange(5), np.arange(1, 6)
    # Sizes measured on the national and stress editions of the benchmark.
    national = {"n_people": 50_000, "cycle_bound": 7_140, "num_nodes": 58_898}
    stress = {"n_people": 500_000, "cycle_bound": 28_167, "num_nodes": 546_403}
    assert engine._choice_costs("sign-up+swaps", person, rank, **national) is not None
    assert engine._choice_costs("sign-up+swaps", person, rank, **stress) is None
    assert engine._choice_costs("sign-up", person, rank, **stress) is not None
    assert solve_doc(generate(300, 20, 3)).tie_break == "sign-up+swaps"
