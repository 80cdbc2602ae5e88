"""The HTTP layer over the fake unit of work: the answers keep the field names their consumers read
(tests/integration, estafette/tools/match_run.py), errors have the one shape, every route declares its
policy (401 without credentials, 403 for the national role, 404 for another region), OpenAPI documents
every route's model and statuses, and a participant's link pages (nl/de/en; the GET changes nothing,
the POST answers once; expired 410, not valid 404, not open any more 409)."""

from __future__ import annotations

import re
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from estafette.runtime.access import Principal
from estafette.runtime.auth import Links
from schemas import MatchAssigned, SeatOfferEnded
from services.matching import service
from services.matching.api import build_api
from services.matching.link_pages import LinkPages

from .builders import ADMIN, EDITION, NATIONAL, participant
from tests.unit.fakes import FakeAuthenticator

from .fakes import FakeClock, FakeRunLocks, given, with_seat_offer

RULES = service.SeatOfferRules(hours=48, timezone=ZoneInfo("Europe/Amsterdam"))
LINKS = Links("unit-test-link-secret")
MAX_AGE = 3600.0
PAGES = LinkPages(ZoneInfo("Europe/Amsterdam"))
#: The fake key ring: credential -> principal.
KEYS = {
    "admin": ADMIN, "national": NATIONAL,
    "twente": Principal("organiser", region="twente"), "groningen": Principal("organiser", region="groningen"),
}


def client(uow, key: str | None = "admin", regions: tuple[str, ...] | None = None) -> TestClient:
    """The API of an instance serving `regions` (None: every region)."""
    runner = service.Runner(uow, service.RunMetrics(CollectorRegistry()), RULES, FakeRunLocks(), regions, clock=FakeClock())
    api = build_api(uow, runner, LINKS, PAGES, MAX_AGE, clock=FakeClock())
    api.state.auth = FakeAuthenticator(KEYS)
    return TestClient(api, headers={"Authorization": f"Bearer {key}"} if key else None)


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
                run["waitlisted"], run["unmatched"], run["rank_cost"], run["attempt"]) == ("done", "done", 1.0, "full", 1, 1, 1, 0, 1, 1)
        assert {"id", "duration_ms", "input_hash", "participants", "offers", "error"} <= run.keys()
        assert http.get(f"/editions/{EDITION}/match-runs").json() == [run]
        edition = http.get(f"/editions/{EDITION}").json()
        assert edition == {"id": EDITION, "region": "twente", "status": "open", "rematch_pending": False, "offers": 1,
                           "seats": 1, "participants": 2, "assignments": 1, "seat_offers_open": 0,
                           "awaiting_approval": 0, "match_at_deadline": False}
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
    assert http.get("/editions/bad%00id").status_code == 422  # PathId: NUL is a 422, never a 500


def test_a_run_requested_on_an_instance_of_another_region_answers_queued() -> None:
    """Honest answers: the run is recorded, not executed here; its status says so until an instance of
    the edition's region starts it."""
    uow = given(people=(participant("p1", ["a"]),), published=False)
    with client(uow, "twente", regions=("groningen",)) as http:
        started = http.post(f"/editions/{EDITION}/match-runs")
        assert started.status_code == 202, started.text
        run = started.json()
        assert (run["status"], run["stage"], run["attempt"], run["progress"]) == ("queued", "queued", 0, 0.0)
        assert http.get(f"/match-runs/{run['id']}").json() == run
        again = http.post(f"/editions/{EDITION}/match-runs")
        assert (again.status_code, again.json()["error"]) == (409, "run_in_progress")
    assert uow.published == [] and uow.repo.runs[uuid.UUID(run["id"])].status == "queued"


# --- access: who may call the organisers' routes -------------------------------------------------------
ORGANISER_ROUTES = [
    ("get", f"/editions/{EDITION}"),
    ("get", f"/editions/{EDITION}/match-runs"),
    ("post", f"/editions/{EDITION}/match-runs"),
    ("get", f"/editions/{EDITION}/assignments"),
    ("get", f"/editions/{EDITION}/seat-offers"),
    ("post", f"/editions/{EDITION}/seat-offers/p1/accept"),
    ("post", f"/editions/{EDITION}/seat-offers/p1/decline"),
]


@pytest.mark.parametrize(("method", "path"), ORGANISER_ROUTES)
@pytest.mark.parametrize(("key", "status", "error"), [
    (None, 401, "unauthenticated"), ("wrong", 401, "invalid_credentials"), ("national", 403, "forbidden"),
    ("groningen", 404, "unknown_edition"),
])
def test_organisers_routes_refuse_anonymous_national_and_other_regions(
    method: str, path: str, key: str | None, status: int, error: str
) -> None:
    uow = with_seat_offer()
    answer = client(uow, key).request(method, path)
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
    assert uow.published == [] and uow.repo.runs.keys() == given().repo.runs.keys()


@pytest.mark.parametrize(("method", "path"), ORGANISER_ROUTES)
def test_the_organiser_of_the_region_may(method: str, path: str) -> None:
    answer = client(with_seat_offer(), "twente").request(method, path)
    assert answer.status_code in (200, 202), answer.text


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("national", 403), ("groningen", 404), ("twente", 200)])
def test_a_run_is_scoped_by_its_editions_region(key: str | None, status: int) -> None:
    uow = given()
    with client(uow, "admin") as http:
        run_id = http.post(f"/editions/{EDITION}/match-runs").json()["id"]
    answer = client(uow, key).get(f"/match-runs/{run_id}")
    assert answer.status_code == status, answer.text


# --- a participant's link pages -------------------------------------------------------------------------
def link(answer: str, signup_id: str = "p1", edition_id: str = EDITION, issued_at: float | None = None) -> str:
    return f"/links/seat-offers/{LINKS.make(f'seat_offer_{answer}', signup_id, edition_id, issued_at=issued_at)}/{answer}"


def buttons(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]*)"><p><button type="submit">([^<]*)</button>', html)


def test_the_accept_page_shows_the_offer_in_the_participants_language_with_one_button_and_changes_nothing() -> None:
    uow = with_seat_offer()
    http = client(uow, key=None)  # a link needs no credentials
    page = http.get(link("accept"))

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "nl" and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Er is een plek voor je vrijgekomen" in html and "Offer a" in html and "h1" in html
    assert "dinsdag 1 juni 2027" in html  # the visit, by Babel
    assert "maandag 1 maart 2027 om 02:00" in html  # held until T0 + 1 h (01:00 UTC), in Amsterdam time
    assert buttons(html) == [("accept", "Plek aannemen")]  # ONE button, POSTing to the page itself
    assert uow.published == [] and uow.repo.rows["p1", "a"].status == "offered"


def test_pressing_accept_makes_the_place_yours_and_pressing_again_changes_nothing() -> None:
    uow = with_seat_offer()
    http = client(uow, key=None)
    url = link("accept")
    done = http.post(url, content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})  # as a browser's form
    assert done.status_code == 200 and "De plek is van jou" in done.text and buttons(done.text) == []
    assert [type(e) for e in uow.published] == [MatchAssigned]

    again = http.post(url)
    assert again.status_code == 200 and "Je hebt deze plek al aangenomen" in again.text
    assert [type(e) for e in uow.published] == [MatchAssigned]  # no second MatchAssigned

    declining = http.post(link("decline"))  # the decline link of an accepted seat offer
    assert declining.status_code == 409 and "Je hebt deze plek aangenomen" in declining.text
    assert [type(e) for e in uow.published] == [MatchAssigned]


@pytest.mark.parametrize(("language", "title", "button"), [
    ("de", "Den angebotenen Platz ablehnen?", "Platz ablehnen"), ("en", "Decline the place offered to you?", "Decline this place"),
])
def test_the_decline_page_speaks_the_participants_language(language: str, title: str, button: str) -> None:
    uow = with_seat_offer()
    _, p = uow.repo.participants["p1"]
    uow.repo.participants["p1"] = (EDITION, type(p)(**{**vars(p), "language": language}))
    http = client(uow, key=None)
    page = http.get(link("decline"))
    assert page.status_code == 200 and title in page.text and buttons(page.text) == [("decline", button)]
    assert page.headers["content-language"] == language
    assert http.post(link("decline")).status_code == 200
    assert [type(e) for e in uow.published] == [SeatOfferEnded]


def test_an_expired_seat_offer_answers_409_with_a_page_saying_what_happened() -> None:
    uow = with_seat_offer(status="expired")
    for method in ("get", "post"):
        page = client(uow, key=None).request(method, link("accept"))
        assert page.status_code == 409 and "Deze plek is niet meer beschikbaar" in page.text
        assert "aangeboden aan de volgende persoon" in page.text and buttons(page.text) == []
    assert uow.published == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_expired_tampered_other_purpose_and_unknown_links_show_a_clear_page_and_change_nothing(method: str) -> None:
    uow = with_seat_offer()
    http = client(uow, key=None)
    expired = link("accept", issued_at=time.time() - MAX_AGE - 60)
    tampered = link("accept").replace("/accept", "x/accept")
    other_purpose = link("decline").replace("/decline", "/accept")
    cases = [
        (expired, 410, "Deze link is verlopen"), (tampered, 404, "Deze link is niet geldig"),
        (other_purpose, 404, "Deze link is niet geldig"), (link("accept", "p9"), 404, "Er is je geen plek aangeboden"),
        ("/links/seat-offers/%00/accept", 404, "Deze link is niet geldig"),
    ]
    for url, status, says in cases:
        page = http.request(method, url)
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (status, "text/html"), url
        assert says in page.text and buttons(page.text) == []
    english = http.request(method, expired, headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "This link has expired" in english.text
    assert uow.published == [] and uow.repo.rows["p1", "a"].status == "offered"


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/editions/{edition_id}", "get", {"200", "401", "403", "404", "422", "503"}),
        ("/editions/{edition_id}/match-runs", "post", {"202", "401", "403", "404", "409", "422", "503"}),
        ("/editions/{edition_id}/seat-offers/{signup_id}/accept", "post", {"200", "401", "403", "404", "409", "422", "503"}),
        ("/links/seat-offers/{token}/accept", "post", {"200", "404", "409", "410", "422", "503"}),
    ],
)
def test_openapi_documents_models_and_errors(path: str, method: str, statuses: set[str]) -> None:
    spec = client(given()).get("/openapi.json").json()
    responses = spec["paths"][path][method]["responses"]
    assert statuses <= set(responses)
    ok = responses[next(s for s in statuses if s.startswith("2"))]["content"]
    assert "$ref" in ok["application/json"]["schema"] if path.startswith("/editions") else list(ok) == ["text/html"]


def test_every_route_declares_its_policy() -> None:
    spec = client(given()).get("/openapi.json").json()
    policies = {(method, path): op.get("x-policy") for path, ops in spec["paths"].items() for method, op in ops.items()}
    assert {k: v for k, v in policies.items() if not k[1].startswith("/links/")} == dict.fromkeys(
        [(m, p) for m, p in policies if not p.startswith("/links/")], "organiser")
    assert {k: v for k, v in policies.items() if k[1].startswith("/links/")} == {
        (m, f"/links/seat-offers/{{token}}/{a}"): "link" for m in ("get", "post") for a in ("accept", "decline")}
