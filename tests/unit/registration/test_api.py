"""Registration's HTTP layer in process (httpx ASGITransport, fake unit of work): policies, hardened
inputs, the sign-up's `manage_url`, and the participant's link pages. No infrastructure."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from estafette.runtime.auth import Links
from schemas import SignupWithdrawn
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from tests.unit.fakes import FakeAuthenticator
from tests.unit.registration.builders import (
    ADMIN,
    EDITION_ID,
    NATIONAL,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    registry,
    signup,
)
from tests.unit.registration.fakes import FakeRegions, FakeRegistrationUow, FakeRepository

SECRET = "unit-test-link-secret"
PUBLIC_URL = "https://estafette.example/registration"
#: Bearer credentials of the fake authenticator.
KEYS = {"key-a": ORGANISER, "key-b": OTHER_ORGANISER, "key-n": NATIONAL, "key-admin": ADMIN}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def uow() -> FakeRegistrationUow:
    signups = (signup("s1"), signup("s-de", email="de@example.org", language="de", choices=["o1", "o2"]))
    return FakeRegistrationUow(FakeRepository((edition(signup_deadline=edition().signup_deadline.replace(year=2099)),),
                                              (offer("o1"), offer("o2", host_org="host-b", title="Digitale Führung")), signups))


@pytest.fixture
def regions() -> FakeRegions:
    return registry()


def api_client(uow: FakeRegistrationUow, regions: FakeRegions, **settings: object) -> httpx.AsyncClient:
    config = RegistrationSettings(public_url=PUBLIC_URL, link_max_age_hours=1, **settings)
    api = build_api(uow, RegistrationMetrics(CollectorRegistry()), Links(SECRET), config, regions)  # type: ignore[arg-type]
    api.state.auth = FakeAuthenticator(KEYS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://registration")


@pytest.fixture
async def client(uow: FakeRegistrationUow, regions: FakeRegions):  # noqa: ANN201
    async with api_client(uow, regions) as c:
        yield c


def link(signup_id: str = "s1", purpose: str = "signup", age_seconds: float = 0) -> str:
    issued = time.time() - age_seconds if age_seconds else None
    return Links(SECRET).make(purpose, signup_id, EDITION_ID, issued_at=issued)


#: Next year: a possible date on the real clock (editions more than five years ahead are refused).
NEXT_YEAR = datetime.now(UTC).year + 1
EDITION = {"id": f"twente-{NEXT_YEAR}", "region": "twente", "name": "Week", "signup_deadline": f"{NEXT_YEAR}-01-01T00:00:00Z",
           "starts_on": f"{NEXT_YEAR}-05-01", "ends_on": f"{NEXT_YEAR}-05-05"}
SIGNUP = {"org": "org-z", "name": "Anna de Vries", "email": "new@example.org", "choices": ["o1"], "consent": True}


# --- inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Anna\r\nBcc: all@example.org", "Anna\nde Vries", "Anna\x00", "Anna\tde Vries"])
async def test_a_name_with_line_breaks_or_control_characters_is_refused_naming_the_field(client, uow, name):
    r = await client.post(f"/editions/{EDITION_ID}/signups", json={**SIGNUP, "name": name})
    assert r.status_code == 422, r.text
    assert (r.json()["error"], r.json()["field"]) == ("invalid_request", "name")
    assert uow.published == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/editions", {**EDITION, "name": "Week\r\nvan"}, "name"),
        ("/editions", {**EDITION, "languages": ["nl"] * 4}, "languages"),
        (f"/editions/{EDITION_ID}/offers", {"host_org": "h", "title": "Visit\nBcc: x", "date": "2027-06-01", "capacity": 1}, "title"),
        (f"/editions/{EDITION_ID}/offers", {"host_org": "h", "title": "t", "date": "2027-06-01", "capacity": 1,
                                             "max_per_org": 2**40}, "max_per_org"),
        (f"/editions/{EDITION_ID}/offers", {"host_org": "h", "title": "t", "date": "2027-06-01", "capacity": 10_001}, "capacity"),
        (f"/editions/{EDITION_ID}/offers", {"host_org": "h", "title": "t", "date": "2027-06-01", "capacity": 1,
                                             "location": "Enschede\x00"}, "location"),
        (f"/editions/{EDITION_ID}/close", {"reason": "done\x00"}, "reason"),
    ],
)
async def test_organiser_inputs_are_bounded_and_free_of_control_characters(client, uow, path, body, field):
    r = await client.post(path, json=body, headers=bearer("key-a"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert uow.published == []


async def test_a_closing_reason_may_have_several_lines(client):
    r = await client.post(f"/editions/{EDITION_ID}/close", json={"reason": "Full.\nSee you next year."}, headers=bearer("key-a"))
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("path", ["/editions/e1%00", "/editions/%00/offers", f"/editions/{EDITION_ID}/offers/o%0A1"])
async def test_garbage_in_a_path_id_is_a_422_not_a_500(client, path):
    method = "DELETE" if path.count("/") == 4 else "GET"
    r = await client.request(method, path, headers=bearer("key-a"))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"


# --- policies -------------------------------------------------------------------------------------
async def test_organiser_routes_need_credentials(client):
    r = await client.post(f"/editions/{EDITION_ID}/close")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.delete(f"/editions/{EDITION_ID}/signups/s1", headers=bearer("nope"))).status_code == 401


@pytest.mark.parametrize(("key", "status"), [("key-a", 204), ("key-admin", 204), ("key-b", 404), ("key-n", 403)])
async def test_withdrawing_on_behalf_is_scoped_to_the_region(client, uow, key, status):
    r = await client.delete(f"/editions/{EDITION_ID}/signups/s1", headers=bearer(key))
    assert r.status_code == status, r.text
    assert len(uow.of_type(SignupWithdrawn)) == (1 if status == 204 else 0)


@pytest.mark.parametrize(("key", "status", "code"), [("key-a", 201, None), ("key-b", 403, "forbidden_region"), ("key-n", 403, "forbidden")])
async def test_opening_an_edition_in_another_region_is_forbidden(client, key, status, code):
    r = await client.post("/editions", json=EDITION, headers=bearer(key))
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"] == code


# --- the region registry ----------------------------------------------------------------------------
async def test_the_regions_of_the_registry_are_public(client, regions):
    for headers in ({}, bearer("key-n")):
        r = await client.get("/regions", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == [
            {"id": "groningen", "names": {"nl": "groningen (nl)", "de": "groningen (de)", "en": "groningen (en)"},
             "timezone": "Europe/Amsterdam", "languages": ["nl"]},
            {"id": "twente", "names": {"nl": "twente (nl)", "de": "twente (de)", "en": "twente (en)"},
             "timezone": "Europe/Amsterdam", "languages": ["nl", "de", "en"]},
        ]
    assert (await client.get("/regions", headers=bearer("nope"))).status_code == 401


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [({"region": "nowhere"}, "unknown_region", "region"),
     ({"region": "groningen", "languages": ["nl", "de"]}, "language_not_offered", "languages")],
)
async def test_an_edition_outside_the_registry_or_its_languages_is_a_422_naming_the_field(client, uow, changes, code, field):
    r = await client.post("/editions", json={**EDITION, **changes}, headers=bearer("key-admin"))
    assert r.status_code == 422, r.text
    assert (r.json()["error"], r.json()["field"]) == (code, field)
    assert uow.published == []


async def test_until_the_registry_is_read_the_routes_that_need_it_answer_503(uow):
    async with api_client(uow, FakeRegions(registry().regions.values(), ready=False), regions_ready_timeout_seconds=0.01) as c:
        for r in (await c.get("/regions"), await c.post("/editions", json=EDITION, headers=bearer("key-a"))):
            assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
            assert "region registry" in r.json()["message"]
        assert (await c.get(f"/editions/{EDITION_ID}")).status_code == 200  # the others do not wait
    assert uow.published == []


# --- erasure of personal data ---------------------------------------------------------------------
@pytest.mark.parametrize(("key", "status"), [(None, 401), ("key-b", 404), ("key-n", 403), ("key-a", 204), ("key-admin", 204)])
async def test_erasure_is_for_the_regions_organiser_and_admins(client, uow, key, status):
    r = await client.delete("/signups/s1/personal-data", headers=bearer(key) if key else {})
    assert r.status_code == status, r.text
    erased = status == 204
    assert uow.repo.signup_rows["s1"].email == ("" if erased else signup("s1").email)
    assert uow.raw == ([("estafette.twente.participants.v2", "s1", "ParticipantErased", None)] if erased else [])


async def test_erasure_again_is_a_204_and_an_unknown_signup_a_404(client, uow):
    for _ in range(2):
        assert (await client.delete("/signups/s1/personal-data", headers=bearer("key-a"))).status_code == 204
    assert len(uow.raw) == 1
    r = await client.delete("/signups/s9/personal-data", headers=bearer("key-admin"))
    assert (r.status_code, r.json()["error"]) == (404, "unknown_signup")
    hidden = await client.delete("/signups/s-de/personal-data", headers=bearer("key-b"))
    unknown = await client.delete("/signups/s9/personal-data", headers=bearer("key-b"))
    assert hidden.json() == {**unknown.json(), "message": unknown.json()["message"].replace("s9", "s-de")}


# --- the sign-up's link ---------------------------------------------------------------------------
async def test_the_signup_answer_has_the_participants_link(client, uow):
    with capture_logs() as logs:
        r = await client.post(f"/editions/{EDITION_ID}/signups", json=SIGNUP)
    assert r.status_code == 201, r.text
    answer = r.json()
    base, _, token = answer["manage_url"].rpartition("/")
    assert base == f"{PUBLIC_URL}/links/signup"
    claims = Links(SECRET).read(token, "signup", 60)
    assert (claims.signup_id, claims.edition_id) == (answer["signup_id"], EDITION_ID)
    assert token not in repr(logs)


async def test_the_link_page_shows_the_signup_with_its_forms_and_changes_nothing(client, uow):
    token = link("s-de")
    with capture_logs() as logs:
        r = await client.get(f"/links/signup/{token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-language"] == "de"
    page = r.text
    assert "Deine Anmeldung" in page and "Week van de Uitwisseling" in page
    assert "Een dag in de bakkerij" in page and "Digitale Führung" in page and "angemeldet" in page
    assert page.count("<button") == 2 and "Anmeldung zurückziehen" in page and "Meine Wahl speichern" in page
    assert f'action="{token}/withdraw"' in page and f'action="{token}/choices"' in page
    assert '<html lang="de">' in page and "<script" not in page
    assert uow.published == [] and uow.repo.signup_rows["s-de"].status == "submitted"
    assert token not in repr(logs)


async def test_withdraw_through_the_link_then_again_changes_nothing(client, uow):
    token = link("s1")
    for _ in range(2):
        r = await client.post(f"/links/signup/{token}/withdraw")
        assert r.status_code == 200, r.text
        assert "Je inschrijving is ingetrokken" in r.text and "<button" not in r.text
    assert [e.signup_id for e in uow.of_type(SignupWithdrawn)] == ["s1"]
    r = await client.get(f"/links/signup/{token}")  # the page now says so, without a button
    assert "Je inschrijving is ingetrokken" in r.text and "<button" not in r.text


@pytest.mark.parametrize(
    ("token", "status", "text"),
    [
        (link("s1", age_seconds=2 * 3600), 410, "Deze link is verlopen"),
        (link("s1")[:-2] + "xx", 404, "Deze link is niet geldig"),
        (link("s1", purpose="seat_offer_accept"), 404, "This link is not valid"),
        (link("s9"), 404, "This link is not valid"),  # a valid signature for a sign-up we do not have
        ("garbage%00%C3%BC", 404, "Deze link is niet geldig"),
    ],
)
async def test_expired_tampered_or_foreign_links_get_a_clear_page_and_change_nothing(client, uow, token, status, text):
    for method, path in (("GET", f"/links/signup/{token}"), ("POST", f"/links/signup/{token}/withdraw")):
        r = await client.request(method, path)
        assert r.status_code == status, (method, r.text)
        assert text in r.text and "<button" not in r.text
    assert uow.published == []
