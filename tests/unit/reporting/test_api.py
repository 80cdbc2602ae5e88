"""Reporting's HTTP API over the fake unit of work: the JSON shapes the README documents, 404 for an
unknown edition, the policies (Figures on the reports, Public on the dashboard) with a fake
authenticator, the dashboard's language negotiation (runtime.i18n.negotiate), and the OpenAPI
document (response models, error responses, policies)."""

from datetime import date

import httpx
import pytest

from services.reporting.api import build_api
from tests.unit.fakes import FakeAuthenticator
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.reporting import builders as b
from tests.unit.reporting.fakes import FakeRegions, FakeRepository, handle

PRINCIPALS = {"admin": b.ADMIN, "national": b.NATIONAL, "twente": b.organiser(b.REGION), "groningen": b.organiser("groningen")}

EDITION_FIELDS = {
    "edition", "region", "name", "status", "cancellation_reason", "cancelled_at", "starts_on", "ends_on", "offers",
    "seats", "offers_cancelled", "signups", "withdrawn", "approval", "organisations", "assigned", "waitlisted",
    "unmatched", "awaiting_rematch", "seat_offers_open", "first_choice_share", "emails_sent", "emails_failed",
    "emails_by_template", "feedback", "by_day",
}
NO_APPROVALS = {"not_required": 0, "pending": 0, "approved": 0, "refused": 0}
NO_FEEDBACK = {"count": 0, "average_rating": None, "shareable": 0}


def row(**figures) -> dict:
    """A /reports/regions row (or the national totals): zeros unless given."""
    return {"editions": 0, "offers": 0, "signups": 0, "withdrawn": 0, "assigned": 0, "emails_sent": 0,
            "approval": NO_APPROVALS, "feedback": NO_FEEDBACK, **figures}


@pytest.fixture
def registry() -> FakeRegions | None:
    return None


@pytest.fixture
async def client(registry):
    repo = FakeRepository()
    uow = FakeUnitOfWork(repo)
    await handle(uow, b.opened(), b.leg_started("leg-1"), b.handed_over("leg-1", "achterhoek", minutes=5))
    repo.figures[b.EDITION] = b.figures(assigned=4, first_choice=1, feedback_count=2, rating_total=9,
                                        feedback_shareable=1, signups=5, not_required=0, pending_approval=2,
                                        approved=3, refused=1, withdrawn=1)
    repo.days[b.EDITION] = [b.day(date(2027, 5, 4), signups=2)]
    repo.templates[b.EDITION] = [b.template("assigned", sent=4), b.template("reminder", sent=3, failed=1)]
    api = build_api(uow, "Europe/Amsterdam", registry)
    api.state.auth = FakeAuthenticator(PRINCIPALS)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting", headers=bearer("admin")) as c:
        yield c


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


async def test_the_edition_report_has_the_documented_shape(client):
    body = (await client.get(f"/reports/editions/{b.EDITION}")).json()
    assert set(body) == EDITION_FIELDS
    assert (body["edition"], body["status"], body["first_choice_share"]) == (b.EDITION, "open", 0.25)
    assert (body["cancellation_reason"], body["cancelled_at"]) == (None, None)
    assert body["feedback"] == {"count": 2, "average_rating": 4.5, "shareable": 1}
    assert body["approval"] == {"not_required": 0, "pending": 2, "approved": 3, "refused": 1}
    assert body["approval"]["pending"] + body["approval"]["approved"] == body["signups"]
    assert body["emails_by_template"] == {"assigned": {"sent": 4, "failed": 0}, "reminder": {"sent": 3, "failed": 1}}
    assert body["by_day"] == [{"date": "2027-05-04", "signups": 2, "offers": 0, "seats": 0, "assigned": 0}]


async def test_the_regions_report_has_regions_national_totals_and_relay_legs(client):
    body = (await client.get("/reports/regions")).json()
    journey = {"approval": {"not_required": 0, "pending": 2, "approved": 3, "refused": 1},
               "feedback": {"count": 2, "average_rating": 4.5, "shareable": 1}}
    assert body["regions"] == [
        {"region": b.REGION, **row(editions=1, signups=5, withdrawn=1, assigned=4, **journey)}]
    assert body["national"] == {"regions": 1, **row(editions=1, signups=5, withdrawn=1, assigned=4, **journey)}
    assert list(body["regions"][0])[0] == "region" and list(body["national"])[0] == "regions"
    assert body["relay"] == [{"leg": "leg-1", "region": b.REGION, "edition": b.EDITION, "starts_on": "2027-06-07",
                              "handed_over_to": "achterhoek", "handed_over_at": b.at(5).isoformat().replace("+00:00", "Z")}]


@pytest.mark.parametrize("registry", [FakeRegions(b.REGION, "groningen")])
async def test_regions_of_the_registry_without_editions_are_rows_of_zeros(client):
    body = (await client.get("/reports/regions")).json()
    assert body["regions"][0] == {"region": "groningen", **row()}
    assert [(r["region"], r["editions"], r["assigned"]) for r in body["regions"]] == [("groningen", 0, 0), (b.REGION, 1, 4)]
    assert (body["national"]["regions"], body["national"]["editions"], body["national"]["assigned"]) == (2, 1, 4)
    own = (await client.get("/reports/regions", headers=bearer("groningen"))).json()
    assert [r["region"] for r in own["regions"]] == ["groningen"] and own["national"]["regions"] == 1


@pytest.mark.parametrize("path", ["/reports/editions/no-such-edition", "/dashboard?edition=no-such-edition"])
async def test_an_unknown_edition_is_a_404_with_the_error_shape(client, path):
    r = await client.get(path)
    assert r.status_code == 404
    assert (r.json()["error"], r.json()["field"]) == ("unknown_edition", "edition_id")


@pytest.mark.parametrize(
    ("lang", "accept", "expected"),
    [
        ("de", "en", "de"),
        ("en", None, "en"),
        (None, None, "nl"),
        (None, "", "nl"),
        ("fr", "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR, en-GB;q=0.7, de;q=0.9", "de"),
        (None, "de;q=0.2, EN-us;q=0.8", "en"),
        (None, "en;q=0, de;q=0.1", "de"),
        (None, "fr, es;q=0.5", "nl"),
        (None, "*", "nl"),
        (None, "de;q=abc, en;q=0.5", "en"),
        (None, "en, de", "en"),
        ("NL", "de", "nl"),
    ],
)
async def test_the_dashboard_language_is_lang_else_accept_language_else_dutch(client, lang, accept, expected):
    r = await client.get("/dashboard", params={"lang": lang} if lang else {},
                         headers={"Accept-Language": accept} if accept is not None else {})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (r.headers["content-language"], r.headers["vary"]) == (expected, "Accept-Language")
    assert f'<html lang="{expected}">' in r.text


async def test_one_edition_on_the_dashboard(client):
    r = await client.get("/dashboard", params={"edition": b.EDITION}, headers={"Accept-Language": "de-DE"})
    assert "Pro Tag" in r.text and "04.05.2027" in r.text
    # 4 assigned, 1 of them first choice: counts below 5 are suppressed, and so is the share they would give
    assert "25,0" not in r.text and "&lt; 5" in r.text


@pytest.mark.parametrize("path", [f"/reports/editions/{b.EDITION}", "/reports/regions"])
async def test_the_reports_need_credentials(client, path):
    for headers in ({"Authorization": ""}, bearer("no-such-key")):
        r = await client.get(path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"] in ("unauthenticated", "invalid_credentials")


@pytest.mark.parametrize(("caller", "status"), [("admin", 200), ("national", 200), ("twente", 200), ("groningen", 404)])
async def test_an_edition_report_is_seen_by_its_region_national_and_admin(client, caller, status):
    r = await client.get(f"/reports/editions/{b.EDITION}", headers=bearer(caller))
    assert r.status_code == status
    if status == 404:  # exactly like an unknown edition
        unknown = (await client.get("/reports/editions/no-such-edition")).json()
        assert (r.json()["error"], r.json()["field"]) == (unknown["error"], unknown["field"]) == ("unknown_edition", "edition_id")


async def test_an_organiser_of_another_region_gets_an_empty_regions_report(client):
    body = (await client.get("/reports/regions", headers=bearer("groningen"))).json()
    assert (body["regions"], body["relay"]) == ([], [])
    assert body["national"] == {"regions": 0, **row()}
    national = (await client.get("/reports/regions", headers=bearer("national"))).json()
    assert national == (await client.get("/reports/regions")).json()


@pytest.mark.parametrize("path", ["/dashboard", f"/dashboard?edition={b.EDITION}"])
async def test_the_dashboard_is_public_but_refuses_a_wrong_credential(client, path):
    assert (await client.get(path, headers={"Authorization": ""})).status_code == 200
    assert (await client.get(path, headers=bearer("groningen"))).status_code == 200
    assert (await client.get(path, headers=bearer("no-such-key"))).status_code == 401


@pytest.mark.parametrize("path", ["/reports/editions/a%00b", "/reports/editions/-x", "/dashboard?edition=a%00b"])
async def test_an_edition_id_that_cannot_be_one_is_a_422(client, path):
    r = await client.get(path)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


async def test_the_openapi_document_declares_models_and_errors(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    edition = paths["/reports/editions/{edition_id}"]["get"]["responses"]
    assert edition["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/EditionReportOut")
    assert edition["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    regions = paths["/reports/regions"]["get"]["responses"]
    assert regions["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RegionsReportOut")
    dashboard = paths["/dashboard"]["get"]
    assert "text/html" in dashboard["responses"]["200"]["content"] and "404" in dashboard["responses"]
    assert "Accept-Language" in dashboard["description"]
    assert {path: op["get"]["x-policy"] for path, op in paths.items()} == {
        "/reports/editions/{edition_id}": "figures", "/reports/regions": "figures", "/dashboard": "public",
        "/dashboard/events": "public", "/feeds/dashboard": "public", "/relay": "public", "/relay/feed.json": "public",
        "/relay/feed.atom": "public"}
    assert "401" in edition and "401" in regions and "401" in dashboard["responses"]



async def test_a_cancelled_edition_reports_its_status_and_reason_in_json_and_on_the_dashboard():
    repo = FakeRepository()
    uow = FakeUnitOfWork(repo)
    await handle(uow, b.opened(), b.cancelled(reason="Corona: <geen> bezoeken", minutes=30), b.closed(minutes=40))
    api = build_api(uow, "Europe/Amsterdam")
    api.state.auth = FakeAuthenticator(PRINCIPALS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://reporting",
                                 headers=bearer("admin")) as client:
        body = (await client.get(f"/reports/editions/{b.EDITION}")).json()
        assert (body["status"], body["cancellation_reason"]) == ("cancelled", "Corona: <geen> bezoeken")
        assert body["cancelled_at"] == b.at(30).isoformat().replace("+00:00", "Z")
        pages = {lang: (await client.get("/dashboard", params={"lang": lang, "edition": b.EDITION})).text
                 for lang in ("nl", "de", "en")}
        overview = (await client.get("/dashboard", params={"lang": "de"})).text
    assert "geannuleerd" in pages["nl"] and "abgesagt" in pages["de"] and "cancelled" in pages["en"]
    assert "Corona: &lt;geen&gt; bezoeken" in pages["nl"] and "<geen>" not in pages["nl"]
    assert "abgesagt" in overview
