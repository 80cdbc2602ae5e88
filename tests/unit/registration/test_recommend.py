"""Recommendations from a learning goal (issue 11): the pure scoring and ordering of
services/registration/people.py (text rank + a bonus per theme asked for; the reason names themes and
the goal's words as written; best first, then more room, date, id) and `service.recommendations` with
the text search stubbed (stemming and `ts_rank_cd` are PostgreSQL's, tested in tests/integration)."""

from __future__ import annotations

import datetime as dt

import pytest

from estafette.runtime.errors import NotFound
from services.registration import people, service
from tests.unit.registration.builders import DAY_IN, EDITION_ID, NOW, edition, offer
from tests.unit.registration.fakes import FakeRegistrationUow
from tests.unit.registration.people_fakes import PeopleFakeRepository, placement

GOAL = "ik wil leren plannen met roosters"
#: What PostgreSQL's dutch configuration makes of GOAL (stop words drop out).
GOAL_TOKENS = [("leren", "ler"), ("plannen", "plann"), ("roosters", "rooster")]
DAY_2 = DAY_IN + dt.timedelta(days=1)

OFFERS = [
    offer("o-plan", title="Roosters plannen in de zorg", themes=["care"], capacity=10),
    offer("o-ict", title="Een dag bij de ICT-afdeling", themes=["digitalisation"], capacity=10, date=DAY_2),
    offer("o-weld", title="Lassen voor beginners", capacity=10),
    offer("o-full", title="Plannen op volle kracht", capacity=1),
    offer("o-gone", title="Plannen dat niet doorgaat", status="cancelled"),
    offer("o-else", title="Plannen elders", edition_id="e2"),
]


def test_goal_words_keep_the_first_word_of_each_lexeme():
    assert people.goal_words([("Plannen", "plann"), ("planning", "plann"), ("rooster", "rooster")]) == {
        "plann": "Plannen", "rooster": "rooster"}
    assert people.goal_words([]) == {}


def test_a_score_is_the_text_rank_plus_a_bonus_per_theme_asked_for():
    found = people.recommendation(OFFERS[1], 7, 0.1, ["plann"], {"plann": "plannen", "ler": "leren"},
                                  ["digitalisation", "care"])
    assert found.score == pytest.approx(0.1 + people.THEME_BONUS)
    assert (found.room, found.themes, found.words) == (7, ["digitalisation"], ["plannen"])
    assert found.reason == "theme: digitalisation; words: plannen"


def test_the_reason_names_what_matched_and_nothing_else():
    words = {"plann": "plannen", "rooster": "roosters"}
    assert people.recommendation(OFFERS[0], 1, 0.3, ["rooster", "plann"], words, []).reason == "words: plannen, roosters"
    assert people.recommendation(OFFERS[0], 1, 0.0, [], words, ["care"]).reason == "theme: care"
    assert people.recommendation(OFFERS[2], 1, 0.0, [], words, ["care"]).reason == ""


def test_best_first_then_more_room_then_date_and_id():
    def rec(offer_id: str, score: float, room: int, day: dt.date = DAY_IN) -> people.Recommendation:
        return people.Recommendation(offer(offer_id, date=day), room, score, [], [])

    ranked = people.ranked([rec("a", 0.1, 5), rec("b", 0.5, 1), rec("c", 0.1, 9), rec("e", 0.1, 5, DAY_IN - dt.timedelta(days=1)),
                            rec("d", 0.1, 5)])
    assert [r.offer.id for r in ranked] == ["b", "c", "e", "a", "d"]


# --- the use case ------------------------------------------------------------------------------------
def make_uow(**repo_fields) -> FakeRegistrationUow:
    fields = dict(
        editions=[edition(themes=["care", "digitalisation"]), edition(id="e2", region="groningen")], offers=OFFERS,
        tokens={GOAL: GOAL_TOKENS},
        text_ranks={"o-plan": (0.4, ["plann", "rooster"]), "o-full": (0.2, ["plann"]), "o-gone": (0.9, ["plann"]),
                    "o-else": (0.9, ["plann"])},
    )
    return FakeRegistrationUow(PeopleFakeRepository(**{**fields, **repo_fields}))


async def test_offers_about_the_goal_rank_above_unrelated_ones_with_their_reason():
    uow = make_uow()
    found = await service.recommendations(uow, EDITION_ID, goal=GOAL, themes=[], days=None, language="nl")
    assert [r.offer.id for r in found][:2] == ["o-plan", "o-full"]
    assert found[0].reason == "words: plannen, roosters"
    assert {r.offer.id for r in found} == {"o-plan", "o-full", "o-ict", "o-weld"}  # published, this edition
    assert uow.repo.room_query == ("dutch", ["ler", "plann", "rooster"], None)
    assert uow.repo.token_calls == [("dutch", GOAL)]


async def test_a_theme_asked_for_lifts_an_offer_and_a_full_offer_drops_out():
    uow = make_uow(placements=[placement("s1", "assigned", NOW, offer_id="o-full", rank=1)])
    found = await service.recommendations(uow, EDITION_ID, goal=GOAL, themes=["digitalisation"], days=None,
                                          language="nl")
    assert [r.offer.id for r in found][:2] == ["o-ict", "o-plan"]
    assert found[0].reason == "theme: digitalisation"
    assert "o-full" not in {r.offer.id for r in found}


async def test_a_held_seat_offer_takes_room_too():
    uow = make_uow(placements=[placement("s1", "offered", NOW, seat_offer_id="o-full", position=1)])
    found = await service.recommendations(uow, EDITION_ID, goal=GOAL, themes=[], days=None, language="nl")
    assert "o-full" not in {r.offer.id for r in found}


async def test_days_limit_the_offers_and_the_language_chooses_the_configuration():
    uow = make_uow()
    found = await service.recommendations(uow, EDITION_ID, goal="", themes=[], days=[DAY_2], language="de")
    assert [r.offer.id for r in found] == ["o-ict"]
    assert uow.repo.room_query == ("german", [], [DAY_2])


async def test_without_a_goal_the_text_search_is_not_asked_and_room_decides():
    uow = make_uow()
    found = await service.recommendations(uow, EDITION_ID, goal="   ", themes=[], days=None, language="en", limit=2)
    assert len(found) == 2
    assert all(r.score == 0 and r.reason == "" for r in found)
    assert uow.repo.room_query == ("english", [], None)
    assert uow.repo.token_calls == []


async def test_an_unknown_edition_is_not_found():
    with pytest.raises(NotFound):
        await service.recommendations(make_uow(), "nope", goal=GOAL, themes=[], days=None, language="nl")
