"""The notifications HTTP API over the fake unit of work, with a fake authenticator: policy Organiser
(401 without credentials, 403 for the national role), region scoping (404 / empty page), bounded
query parameters, and the OpenAPI document (policy and error responses)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from estafette.runtime.consumer import dispatch
from services.notifications import handlers
from services.notifications.api import build_api
from tests.unit.fakes import FakeAuthenticator
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.notifications import builders
from tests.unit.notifications.fakes import FakeRepository

PRINCIPALS = {"admin": builders.ADMIN, "national": builders.NATIONAL, "twente": builders.organiser("twente"),
              "groningen": builders.organiser("groningen")}
GRONINGEN_EDITION = "wvdu-2026-groningen"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    uow = FakeUnitOfWork(FakeRepository())
    handle = dispatch(handlers.matches(builders.answer_links(), builders.journey()))
    for event in (builders.assigned("s-t"), builders.assigned("s-g", region="groningen", edition=GRONINGEN_EDITION)):
        async with uow.transaction() as tx:
            await handle(tx, event)
        uow.repo.later(1)  # oldest first: s-t, then s-g
    api = build_api(uow)  # type: ignore[arg-type]
    api.state.auth = FakeAuthenticator(PRINCIPALS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://notifications") as c:
        yield c


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


async def ids(client: httpx.AsyncClient, caller: str, **params: str) -> list[str]:
    r = await client.get("/notifications", params=params, headers=bearer(caller))
    assert r.status_code == 200, r.text
    return [i["signup_id"] for i in r.json()["items"]]


async def test_an_admin_sees_every_region_and_an_organiser_their_own(client: httpx.AsyncClient) -> None:
    assert await ids(client, "admin") == ["s-t", "s-g"]
    assert await ids(client, "twente") == ["s-t"]
    assert await ids(client, "groningen") == ["s-g"]
    assert await ids(client, "twente", edition=GRONINGEN_EDITION) == []


async def test_another_regions_message_is_a_404_like_an_unknown_one(client: httpx.AsyncClient) -> None:
    (theirs,) = (await client.get("/notifications", headers=bearer("groningen"))).json()["items"]
    other = await client.get(f"/notifications/{theirs['id']}", headers=bearer("twente"))
    unknown = await client.get(f"/notifications/{uuid.uuid4()}", headers=bearer("twente"))
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"] == unknown.json()["error"] == "unknown_notification"
    assert (await client.get(f"/notifications/{theirs['id']}", headers=bearer("admin"))).json() == theirs


@pytest.mark.parametrize("path", ["/notifications", f"/notifications/{uuid.uuid4()}"])
async def test_without_credentials_401_and_for_the_national_role_403(client: httpx.AsyncClient, path: str) -> None:
    for headers in ({}, bearer("no-such-key")):
        r = await client.get(path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    national = await client.get(path, headers=bearer("national"))
    assert national.status_code == 403 and national.json()["error"] == "forbidden"


@pytest.mark.parametrize("param", ["edition", "signup_id"])
@pytest.mark.parametrize("value", ["a\x00b", "", "-x", "x" * 65])
async def test_an_id_that_cannot_be_one_is_a_422_naming_it(client: httpx.AsyncClient, param: str, value: str) -> None:
    r = await client.get("/notifications", params={param: value}, headers=bearer("admin"))
    assert r.status_code == 422 and r.json()["field"] == f"query.{param}"


async def test_the_openapi_document_declares_the_policy_and_the_errors(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    listing, one = paths["/notifications"]["get"], paths["/notifications/{notification_id}"]["get"]
    assert listing["x-policy"] == one["x-policy"] == "organiser"
    assert {"401", "403"} <= set(listing["responses"]) and {"401", "403", "404"} <= set(one["responses"])


async def test_a_message_awaiting_its_participants_contact_is_listed_with_that_status(client: httpx.AsyncClient) -> None:
    """The fixture's match events came before any contact details: both messages wait for them."""
    assert await ids(client, "admin", status="awaiting_contact") == ["s-t", "s-g"]
    assert await ids(client, "twente", status="awaiting_contact") == ["s-t"]
    assert await ids(client, "admin", status="pending") == []
    (item,) = (await client.get("/notifications", headers=bearer("twente"))).json()["items"]
    assert (item["status"], item["language"], item["next_attempt_at"]) == ("awaiting_contact", None, None)
