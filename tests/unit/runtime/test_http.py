"""The shared HTTP error shape: clear 4xx for bad input, 503 (not 500) without a database."""

import httpx
import pytest
from pydantic import BaseModel

from estafette.runtime.errors import NotFound
from estafette.runtime.http import create_http_api
from estafette.runtime.uow import UnitOfWork


class Body(BaseModel):
    count: int


@pytest.fixture
def client():
    api = create_http_api("test")
    uow = UnitOfWork("nowhere")  # its pool is never set: the database is unreachable

    @api.post("/things")
    async def create(body: Body) -> dict:
        return {"count": body.count}

    @api.get("/things/{thing}")
    async def get(thing: str) -> dict:
        raise NotFound("unknown_thing", f"thing {thing} does not exist")

    @api.get("/stored")
    async def stored() -> dict:
        async with uow.transaction():
            return {}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t")


async def test_malformed_json_is_a_422_without_field(client):
    r = await client.post("/things", content=b'{"count": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request" and r.json()["message"].startswith("malformed JSON")
    assert r.json()["field"] is None


async def test_a_wrong_type_names_the_field(client):
    r = await client.post("/things", json={"count": "many"})
    assert (r.status_code, r.json()["field"]) == (422, "count")
    assert r.json()["message"].startswith("count: ")


async def test_domain_errors_keep_their_status_and_code(client):
    r = await client.get("/things/x")
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_thing", "message": "thing x does not exist", "field": None, "details": []}


async def test_an_unreachable_database_is_a_503_with_retry_after(client):
    r = await client.get("/stored")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"] == "unavailable"
