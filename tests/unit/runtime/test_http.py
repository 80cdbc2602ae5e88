"""The shared HTTP layer: one error shape, domain errors mapped to statuses, 503 (not 500) without a
database, and a correlation id on every request."""

import json
import logging
import uuid

import asyncpg
import httpx
import pytest
import structlog
from pydantic import BaseModel

from estafette.runtime.errors import Conflict, NotFound, RuleViolation
from estafette.runtime.http import CorrelationId, create_http_api
from estafette.runtime.logging import configure_logging
from estafette.runtime.uow import UnitOfWork


class Body(BaseModel):
    count: int


@pytest.fixture
def refusals() -> list[str]:
    return []


@pytest.fixture
def client(refusals):
    api = create_http_api("test", on_refusal=lambda exc: refusals.append(exc.code))
    uow = UnitOfWork("nowhere")  # its pool is never set: the database is unreachable

    @api.post("/things")
    async def create(body: Body, correlation_id: CorrelationId) -> dict:
        structlog.get_logger("test").info("creating a thing")
        return {"count": body.count, "correlation_id": str(correlation_id)}

    @api.get("/things/{thing}")
    async def get(thing: str) -> dict:
        raise NotFound("unknown_thing", f"thing {thing} does not exist")

    @api.get("/rule")
    async def rule() -> dict:
        raise RuleViolation("date_outside_edition", "date 2030-01-01 is outside the edition", "date")

    @api.get("/conflict")
    async def conflict() -> dict:
        raise Conflict("edition_closed", "edition e1 is closed")

    @api.get("/stored")
    async def stored() -> dict:
        async with uow.transaction():
            return {}

    @api.get("/starting")
    async def starting() -> dict:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

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


async def test_domain_errors_map_to_statuses_with_the_one_shape(client, refusals):
    r = await client.get("/things/x")
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_thing", "message": "thing x does not exist", "field": None, "details": []}
    r = await client.get("/rule")
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "date_outside_edition", "date")
    r = await client.get("/conflict")
    assert (r.status_code, r.json()["error"]) == (409, "edition_closed")
    assert refusals == ["unknown_thing", "date_outside_edition", "edition_closed"]


@pytest.mark.parametrize("path", ["/stored", "/starting"])
async def test_an_unreachable_or_starting_database_is_a_503_with_retry_after(client, path):
    r = await client.get(path)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"] == "unavailable"


async def test_the_correlation_id_is_taken_echoed_and_given_to_the_use_case(client):
    cid = uuid.uuid4()
    r = await client.post("/things", json={"count": 1}, headers={"X-Correlation-ID": str(cid)})
    assert r.status_code == 200
    assert r.headers["x-correlation-id"] == str(cid) and r.json()["correlation_id"] == str(cid)
    fresh = await client.post("/things", json={"count": 1})
    assert uuid.UUID(fresh.headers["x-correlation-id"]) != cid
    assert fresh.json()["correlation_id"] == fresh.headers["x-correlation-id"]


async def test_a_malformed_correlation_id_is_a_422_naming_the_header(client):
    r = await client.post("/things", json={"count": 1}, headers={"X-Correlation-ID": "not-a-uuid"})
    assert r.status_code == 422
    assert (r.json()["error"], r.json()["field"]) == ("invalid_request", "X-Correlation-ID")


async def test_every_log_line_of_a_request_carries_its_correlation_id(client, capsys):
    configure_logging("test")
    cid = uuid.uuid4()
    await client.post("/things", json={"count": 1}, headers={"X-Correlation-ID": str(cid)})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logging.getLogger().handlers.clear()
    mine = [line for line in lines if line.get("event") in {"creating a thing", "request handled"}]
    assert {line["event"] for line in mine} == {"creating a thing", "request handled"}
    assert all(line["correlation_id"] == str(cid) for line in mine)
    handled = next(line for line in mine if line["event"] == "request handled")
    assert (handled["route"], handled["status"]) == ("/things", 200)


def test_every_route_documents_the_error_shape():
    api = create_http_api("test")

    @api.post("/x/{thing}")
    async def x(thing: str, body: Body) -> dict:
        return {}

    responses = api.openapi()["paths"]["/x/{thing}"]["post"]["responses"]
    assert {"422", "503"} <= set(responses)
    parameters = api.openapi()["paths"]["/x/{thing}"]["post"]["parameters"]
    assert "X-Correlation-ID" in {p["name"] for p in parameters if p["in"] == "header"}
    for status in ("422", "503"):  # FastAPI's own 422 schema (HTTPValidationError) is replaced
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
