"""The HTTP layer over the fake unit of work: the answers keep the field names their consumers read
(tests/integration, estafette/tools/match_run.py), errors have the one shape, and OpenAPI documents
every route's model and its 404/409."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.matching import service
from services.matching.api import build_api

from .builders import participant
from .fakes import EDITION, given, with_seat_offer

RULES = service.SeatOfferRules(hours=48, timezone=ZoneInfo("Europe/Amsterdam"))


def client(uow) -> TestClient:
    return TestClient(build_api(uow, service.Runner(uow, service.RunMetrics(CollectorRegistry()), RULES)))


def test_a_run_started_over_http_and_the_views_keep_their_field_names() -> None:
    uow = given(people=(participant("p1", ["a"]), participant("p2", ["a"], 1)), published=False)
    with client(uow) as http:  # the run executes in the background, on the client's event loop
        started = http.post(f"/editions/{EDITION}/match-runs")
        assert started.status_code == 202 and started.json()["status"] == "running", started.text
        for _ in range(500):
            run = http.get(f"/match-runs/{started.json()['id']}").json()
            if run["status"] != "running":
                break
            time.sleep(0.01)

        assert (run["status"], run["stage"], run["progress"], run["kind"], run["assigned"], run["newly_assigned"],
                run["waitlisted"], run["unmatched"], run["rank_cost"]) == ("done", "done", 1.0, "full", 1, 1, 1, 0, 1)
        assert {"id", "duration_ms", "input_hash", "participants", "offers", "error"} <= run.keys()
        assert http.get(f"/editions/{EDITION}/match-runs").json() == [run]
        edition = http.get(f"/editions/{EDITION}").json()
        assert edition == {"id": EDITION, "region": "twente", "status": "open", "rematch_pending": False, "offers": 1,
                           "seats": 1, "participants": 2, "assignments": 1, "seat_offers_open": 0}
        result = http.get(f"/editions/{EDITION}/assignments").json()
        assert [(a["signup_id"], a["offer_id"], a["rank"]) for a in result["assignments"]] == [("p1", "a", 1)]
        assert result["waiting_list"] == [{"signup_id": "p2", "state": "waitlisted", "reason_code": "all_full", "position": 1}]


def test_seat_offer_answers_and_errors() -> None:
    http = client(with_seat_offer())
    declined = http.post(f"/editions/{EDITION}/seat-offers/p1/decline")
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    again = http.post(f"/editions/{EDITION}/seat-offers/p1/accept")
    assert again.status_code == 409
    assert again.json()["error"] == "seat_offer_declined" and again.json()["field"] is None
    view = http.get(f"/editions/{EDITION}/seat-offers").json()
    assert view["counts"]["declined"] == 1 and [s["signup_id"] for s in view["seat_offers"]] == ["p1"]
    assert http.post(f"/editions/{EDITION}/seat-offers/p9/accept").json()["error"] == "unknown_seat_offer"
    assert http.post("/editions/nowhere/match-runs").status_code == 404


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/editions/{edition_id}", "get", {"200", "404", "422", "503"}),
        ("/editions/{edition_id}/match-runs", "post", {"202", "404", "409", "422", "503"}),
        ("/editions/{edition_id}/seat-offers/{signup_id}/accept", "post", {"200", "404", "409", "422", "503"}),
    ],
)
def test_openapi_documents_models_and_errors(path: str, method: str, statuses: set[str]) -> None:
    spec = client(given()).get("/openapi.json").json()
    responses = spec["paths"][path][method]["responses"]
    assert set(responses) == statuses
    ok = next(s for s in statuses if s.startswith("2"))
    assert "$ref" in responses[ok]["content"]["application/json"]["schema"]
