"""The shared HTTP layer: one error shape, domain errors mapped to statuses, 503 (not 500) without a
database, a correlation id on every request, and the runtime's own refusals (413, 415, 404/405, 429)
in the same shape and documented on every operation."""

import importlib
import inspect
import json
import logging
import uuid

import asyncpg
import httpx
import pytest
import structlog
from fastapi import Depends
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from estafette.runtime.auth import Public
from estafette.runtime.errors import Conflict, NotFound, RuleViolation
from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.inputs import PathId
from estafette.runtime.logging import configure_logging
from estafette.runtime.settings import HttpLimits
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


#: What asyncpg and the OS raise while Postgres starts up, recovers, restarts, runs out of connection
#: slots, or drops connections, and while the service's own pool closes.
TRANSIENT_DATABASE_ERRORS = [
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.CannotConnectNowError("the database system is in recovery mode"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.ClientCannotConnectError("cannot connect"),
    asyncpg.exceptions.ConnectionRejectionError("connection rejected"),
    asyncpg.PostgresConnectionError("connection exception"),
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection has been released back to the pool"),
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    ConnectionResetError(104, "Connection reset by peer"),
    BrokenPipeError(32, "Broken pipe"),
    TimeoutError(),  # connect or command timeout
    OSError(113, "No route to host"),
]


@pytest.fixture
def failing():
    """A route that raises the error given in ?n= (an index into TRANSIENT_DATABASE_ERRORS), from the
    route itself and from a dependency."""
    api = create_http_api("test")

    def error(n: int) -> BaseException:
        return TRANSIENT_DATABASE_ERRORS[n]

    async def failing_dependency(n: int) -> None:
        raise error(n)

    @api.post("/route")
    async def route(n: int) -> dict:
        raise error(n)

    @api.get("/dependency", dependencies=[Depends(failing_dependency)])
    async def dependency() -> dict:
        return {}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t")


@pytest.mark.parametrize("n", range(len(TRANSIENT_DATABASE_ERRORS)),
                         ids=[f"{type(e).__name__}:{e}" for e in TRANSIENT_DATABASE_ERRORS])
async def test_every_transient_database_error_is_a_503_with_retry_after(failing, n):
    for r in (await failing.post(f"/route?n={n}"), await failing.get(f"/dependency?n={n}")):
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["error"] == "unavailable"
        assert r.json()["field"] is None and r.headers["x-correlation-id"]


@pytest.mark.parametrize("service", ["registration", "matching", "notifications", "reporting"])
def test_every_service_builds_its_http_api_with_the_shared_error_handling(service):
    """Each service's API is made by create_http_api (and so answers the errors above with 503); a
    FastAPI app of its own would answer them with 500."""
    source = inspect.getsource(importlib.import_module(f"services.{service}.api"))
    assert "create_http_api(" in source
    assert "FastAPI(" not in source.replace("offline_fastapi(", "")


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


# --- the runtime's own refusals: body limit, content type, framework errors, rate limit ------------
def _limited_api(**limits: int):
    api = create_http_api("test", limits=HttpLimits(**{"max_body_bytes": 100, **limits}))

    @api.post("/things/{thing_id}", responses=errors(404))
    async def create(thing_id: PathId, body: Body, _: Public) -> dict:
        return {"thing_id": thing_id, "count": body.count}

    @api.post("/links/{token}/withdraw")  # a link page's one button: a form post, no body parameter
    async def withdraw(token: str) -> dict:
        return {"withdrawn": True}

    @api.get("/public")
    async def public(_: Public) -> dict:
        return {}

    page_statuses = {404: {"content": {"text/html": {}}, "description": "A page: this link is not valid."}}

    @api.get("/links/{token}", response_class=HTMLResponse, responses={**page_statuses, **errors(409)})
    async def page(token: str) -> HTMLResponse:
        return HTMLResponse("<p>hello</p>")

    return api


@pytest.fixture
def limited():
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_limited_api()), base_url="http://t")


def _shape(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message", "field", "details"} and body["error"] == code
    assert r.headers["x-correlation-id"]  # the correlation middleware answers for these too
    return body


async def test_a_body_over_the_limit_is_a_413_by_its_content_length(limited):
    r = await limited.post("/things/a", content=b'{"count": 1}' + b" " * 200, headers={"content-type": "application/json"})
    assert "100 bytes" in _shape(r, 413, "body_too_large")["message"]


async def test_a_streamed_body_over_the_limit_is_a_413_without_reading_it_all(limited):
    sent = []

    async def chunks():
        for _ in range(1000):
            sent.append(1)
            yield b"x" * 30

    r = await limited.post("/things/a", content=chunks(), headers={"content-type": "application/json"})
    _shape(r, 413, "body_too_large")
    assert len(sent) < 10


async def test_a_body_within_the_limit_is_handed_on(limited):
    r = await limited.post("/things/a", json={"count": 3})
    assert (r.status_code, r.json()) == (200, {"thing_id": "a", "count": 3})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_on_a_json_route_is_a_415(limited, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = await limited.post("/things/a", content=b'{"count": 1}', headers=headers)
    assert "application/json" in _shape(r, 415, "unsupported_media_type")["message"]


async def test_json_with_a_charset_or_a_json_suffix_is_json(limited):
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = await limited.post("/things/a", content=b'{"count": 1}', headers={"content-type": content_type})
        assert r.status_code == 200, content_type


async def test_form_posts_of_link_pages_are_not_refused(limited):
    r = await limited.post("/links/tok/withdraw", content=b"", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    r = await limited.post("/links/tok/withdraw", data={"confirm": "yes"})
    assert r.status_code == 200
    assert (await limited.post("/links/tok/withdraw")).status_code == 200


async def test_a_nul_byte_in_a_path_id_is_a_422_naming_it(limited):
    r = await limited.post("/things/a%00b", json={"count": 1})
    assert _shape(r, 422, "invalid_request")["field"] == "path.thing_id"


async def test_unknown_paths_and_methods_use_the_error_shape(limited):
    _shape(await limited.get("/nowhere"), 404, "unknown_path")
    r = await limited.get("/things/a")
    assert _shape(r, 405, "method_not_allowed")["message"] == "GET is not allowed here"
    assert r.headers["allow"] == "POST"


async def test_anonymous_callers_of_public_routes_are_rate_limited_with_retry_after():
    api = _limited_api(public_rate_limit_per_minute=6, public_rate_limit_burst=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client:
        assert [(await client.get("/public")).status_code for _ in range(2)] == [200, 200]
        r = await client.get("/public")
        _shape(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "10"  # 6 a minute: one token every 10 s
        # routes without a public policy are not limited
        assert (await client.post("/links/tok/withdraw")).status_code == 200


def test_every_operation_documents_what_the_runtime_can_answer():
    paths = _limited_api().openapi()["paths"]
    assert set(paths["/things/{thing_id}"]["post"]["responses"]) == {
        "200", "400", "401", "404", "405", "413", "415", "422", "429", "503"}
    assert set(paths["/links/{token}/withdraw"]["post"]["responses"]) == {"200", "404", "405", "422", "503"}
    public = paths["/public"]["get"]["responses"]
    assert set(public) == {"200", "401", "422", "429", "503"}
    assert "Retry-After" in public["429"]["headers"] and "Retry-After" in public["503"]["headers"]
    assert public["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


def test_an_html_route_documents_its_error_answers_as_json():
    responses = _limited_api().openapi()["paths"]["/links/{token}"]["get"]["responses"]
    error_shape = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
    for status in ("405", "409", "422", "503"):
        assert responses[status]["content"] == {"application/json": error_shape}, status
    # its own 404 page, and the runtime's 404 for a path that does not route (a token with a "/")
    assert responses["404"]["content"] == {"text/html": {}, "application/json": error_shape}


async def test_the_request_log_names_the_route_template_never_the_raw_path(limited, capsys):
    configure_logging("test")
    await limited.post("/links/secret-token/withdraw")
    await limited.get("/links/secret-token/withdraw/more")  # routes nowhere
    out = capsys.readouterr().out
    logging.getLogger().handlers.clear()
    handled = [json.loads(line) for line in out.splitlines() if '"request handled"' in line]
    assert [(line["route"], line["status"]) for line in handled] == [
        ("/links/{token}/withdraw", 200), ("(no route)", 404)]
    assert not [line for line in out.splitlines() if "secret-token" in line and '"logger": "httpx"' not in line]


async def test_on_accepted_is_called_with_the_route_name_for_each_successful_change():
    accepted: list[str] = []
    api = create_http_api("test", on_accepted=accepted.append)

    @api.post("/things", status_code=201)
    async def create_thing(body: Body) -> dict:
        return {"count": body.count}

    @api.get("/things")
    async def list_things() -> list:
        return []

    @api.delete("/things/{thing}", status_code=204)
    async def delete_thing(thing: str) -> None:
        raise NotFound("unknown_thing", f"thing {thing} does not exist")

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t")
    assert (await client.post("/things", json={"count": 1})).status_code == 201
    assert (await client.post("/things", json={"count": "many"})).status_code == 422
    assert (await client.get("/things")).status_code == 200
    assert (await client.delete("/things/t1")).status_code == 404
    assert (await client.post("/nowhere", json={})).status_code == 404
    assert accepted == ["create_thing"]


def _sync_calls(dependant) -> list[str]:  # noqa: ANN001
    """The dependencies (and endpoint) of a route that FastAPI would run in a worker thread."""
    found = []
    call = dependant.call
    if call is not None:
        target = call if inspect.isfunction(call) or inspect.ismethod(call) else getattr(call, "__call__", call)  # noqa: B004
        if not inspect.iscoroutinefunction(target):
            found.append(getattr(call, "__name__", repr(call)))
    for dep in dependant.dependencies:
        found += _sync_calls(dep)
    return found


def test_the_runtimes_dependencies_never_run_in_a_worker_thread():
    """FastAPI runs a plain `def` dependency in a worker thread: a thread hand-off for every request
    (issue 13 measured it at a tenth of a sign-up's CPU). The runtime's own dependencies are async."""
    api = create_http_api("test")

    @api.post("/things/{thing}")
    async def create(thing: PathId, body: Body, _: Public, correlation_id: CorrelationId) -> dict:
        return {}

    (route,) = [r for r in api.routes if getattr(r, "path", "") == "/things/{thing}"]
    assert _sync_calls(route.dependant) == []


def test_the_runtimes_http_layers_are_pure_asgi():
    """No `BaseHTTPMiddleware` (an extra task, memory streams and a streaming response per request)."""
    from starlette.middleware.base import BaseHTTPMiddleware

    api = create_http_api("test")
    assert api.user_middleware and all(m.cls is not BaseHTTPMiddleware for m in api.user_middleware)


async def test_error_bodies_are_the_same_json_as_before(client):
    r = await client.get("/things/ä-1")
    assert r.headers["content-type"] == "application/json"
    assert r.content == json.dumps(r.json(), ensure_ascii=False, separators=(",", ":")).encode()
    assert r.json()["message"] == "thing ä-1 does not exist"
