"""People and recommendations (issue 11) on the real platform: the people list (search, filter, pages),
one sign-up with its history (events with times; an organiser's late admission audited: who, why),
edits on someone's behalf, and recommendations ranked by PostgreSQL's full-text search in Dutch and in
German, with their reasons."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.support import Infra, TestClock, services

pytestmark = pytest.mark.integration

REGION = "twente"
DEADLINE = datetime(2027, 4, 1, tzinfo=UTC)
EDITION = {"region": REGION, "name": "People week", "signup_deadline": DEADLINE.isoformat(), "starts_on": "2027-05-01",
           "ends_on": "2027-05-05", "languages": ["nl", "de"], "themes": ["care", "ict", "metal"]}


@pytest.fixture(scope="module")
def organiser(infra: Infra) -> dict[str, str]:
    return {"Authorization": f"Bearer {infra.key('organiser', REGION)}"}


@pytest.fixture(scope="module")
def registration(infra: Infra, organiser: dict[str, str]) -> Iterator[tuple[httpx.Client, TestClock]]:
    clock = TestClock(datetime(2027, 1, 10, tzinfo=UTC))
    with services(infra, "registration", extra_env=clock.env) as svc, \
            httpx.Client(base_url=svc["registration"].url, timeout=30) as http:
        yield http, clock


def edition_with(http: httpx.Client, organiser: dict[str, str], offers: list[dict]) -> tuple[str, list[str]]:
    edition = f"pp-{uuid.uuid4().hex[:8]}"
    assert http.post("/editions", json={"id": edition, **EDITION}, headers=organiser).status_code == 201
    ids = []
    for offer in offers:
        r = http.post(f"/editions/{edition}/offers", headers=organiser,
                      json={"host_org": "org-h", "date": "2027-05-02", "capacity": 5, **offer})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return edition, ids


@pytest.mark.parametrize(("lang", "goal", "planning", "unrelated"), [
    ("nl", "ik wil leren plannen met roosters",
     [{"title": "Roosters maken in de zorg", "themes": ["care"]}, {"title": "Slim plannen van diensten"}],
     [{"title": "Lassen voor beginners", "themes": ["metal"]}, {"title": "Een dag bij de ICT-afdeling", "themes": ["ict"]}]),
    ("de", "ich will lernen, mit Dienstplänen zu planen",
     [{"title": "Dienstpläne erstellen in der Pflege", "themes": ["care"]}, {"title": "Schichten besser planen"}],
     [{"title": "Schweißen für Anfänger", "themes": ["metal"]}, {"title": "Ein Tag in der IT-Abteilung", "themes": ["ict"]}]),
])
def test_recommendations_rank_planning_offers_above_unrelated_ones(registration, organiser, lang, goal, planning, unrelated):
    http, _ = registration
    edition, ids = edition_with(http, organiser, unrelated + planning)
    r = http.get(f"/editions/{edition}/recommendations", params={"goal": goal, "lang": lang})
    assert r.status_code == 200, r.text
    ranked = [o["offer_id"] for o in r.json()]
    assert set(ranked[:2]) == set(ids[2:]), r.json()
    assert set(ranked[2:]) == set(ids[:2])
    assert all("words: " in o["reason"] for o in r.json()[:2])
    themed = http.get(f"/editions/{edition}/recommendations", params={"goal": goal, "lang": lang, "themes": "metal"}).json()
    assert themed[0]["offer_id"] == ids[0] and themed[0]["reason"].startswith("theme: metal")


def test_people_list_history_late_admission_and_edits(registration, organiser):
    http, clock = registration
    edition, offers = edition_with(http, organiser, [{"title": "Bakkerij"}, {"title": "Zorg"}])
    for i in range(5):
        body = {"org": "org-a", "name": f"Anna {i}", "email": f"anna{i}@example.org", "choices": [offers[0]], "consent": True}
        assert http.post(f"/editions/{edition}/signups", json=body).status_code == 201
    page = http.get(f"/editions/{edition}/people", params={"limit": 2}, headers=organiser).json()
    assert [p["name"] for p in page["people"]] == ["Anna 0", "Anna 1"]
    rest = http.get(f"/editions/{edition}/people", params={"limit": 10, "cursor": page["next_cursor"]}, headers=organiser).json()
    assert [p["name"] for p in rest["people"]] == ["Anna 2", "Anna 3", "Anna 4"] and rest["next_cursor"] is None
    found = http.get(f"/editions/{edition}/people", params={"q": "ANNA3@"}, headers=organiser).json()["people"]
    assert [p["name"] for p in found] == ["Anna 3"]
    signup = found[0]["signup_id"]
    r = http.patch(f"/editions/{edition}/people/{signup}", json={"choices": [offers[1]], "learning_goal": "Zorg leren"},
                   headers=organiser)
    assert r.status_code == 200, r.text
    assert [h["kind"] for h in r.json()["history"]] == ["SignupSubmitted", "ChangedOnBehalf", "SignupChanged"]
    assert http.request("DELETE", f"/editions/{edition}/signups/{signup}", json={"reason": "ziek"}, headers=organiser).status_code == 204
    history = http.get(f"/editions/{edition}/people/{signup}", headers=organiser).json()["history"]
    assert history[-1]["kind"] == "SignupWithdrawn" and history[-1]["reason"] == "ziek"
    assert [p["name"] for p in http.get(f"/editions/{edition}/people", params={"status": "withdrawn"}, headers=organiser).json()["people"]] == ["Anna 3"]

    clock.move_to(datetime(2027, 4, 2, tzinfo=UTC))  # past the deadline
    late = {"org": "org-b", "name": "Laat", "email": "laat@example.org", "choices": [offers[0]], "consent": True}
    r = http.post(f"/editions/{edition}/people", json=late, headers=organiser)
    assert (r.status_code, r.json()["error"]) == (409, "deadline_passed")
    r = http.post(f"/editions/{edition}/people", json={**late, "override_deadline": True, "reason": "ziek geweest"},
                  headers=organiser)
    assert r.status_code == 201, r.text
    history = http.get(f"/editions/{edition}/people/{r.json()['signup_id']}", headers=organiser).json()["history"]
    audit = [h for h in history if h["kind"] == "LateAdmission"]
    assert len(audit) == 1 and audit[0]["reason"] == "ziek geweest" and audit[0]["actor"]
    assert http.get(f"/editions/{edition}/people", headers={"Authorization": "Bearer nope"}).status_code == 401
