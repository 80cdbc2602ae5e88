"""HTTP API plumbing shared by the services' FastAPI apps: one error shape, never a 500 for bad input,
and a correlation id on every request.

Every error answer is JSON (`ErrorOut`): {"error": code, "message": human text, "field": dotted path
or null, "details": [...]}. Domain errors (runtime/errors.py) map to 422 (RuleViolation), 404
(NotFound), 409 (Conflict), 401 and 403; malformed JSON and schema violations are 422 naming the
field. A database that cannot be reached is a 503 with Retry-After, not a 500; nothing was stored.
The framework's own refusals use the same shape: 400 (a body that cannot be parsed), 404 (no such
path), 405 (method not allowed, with Allow), 413 (a body over `max_body_bytes`, refused before it is
held in memory), 415 (a body that is not JSON sent to a route that takes JSON), 429 (the public
rate limit, with Retry-After; runtime/ratelimit.py). Every operation's OpenAPI lists the statuses it
can answer, so a client (or a fuzzer) never meets an undocumented one.

Correlation: a request's `X-Correlation-ID` (a UUID; a new one when absent) is bound to every log line
written while it is handled, returned in the response header, and given to the use case through the
`CorrelationId` dependency, so the events it causes carry it.

Cost (issue 13, ingress): every layer here is pure ASGI (no `BaseHTTPMiddleware`, which runs each
request through an extra task, memory streams and a streaming response), and every dependency is
`async def` (FastAPI runs a plain `def` dependency in a worker thread: a thread hand-off per request).
A service that counts its state changes passes `on_accepted` instead of adding an HTTP middleware.
Error bodies are rendered with orjson; route responses take FastAPI's own fast path (pydantic to JSON
bytes) when a route declares no response class.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import asyncpg
import orjson
import structlog
from fastapi import Depends, FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from estafette.runtime.auth import policy_of
from estafette.runtime.docs import offline_fastapi
from estafette.runtime.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation, Unauthenticated
from estafette.runtime.ratelimit import RateLimited, RateLimiter
from estafette.runtime.settings import HttpLimits

log = structlog.get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
STATUS_OF: dict[type[DomainError], int] = {
    RuleViolation: 422, NotFound: 404, Conflict: 409, Unauthenticated: 401, Forbidden: 403,
}
#: Errors that mean "the database is away for now", answered 503 + Retry-After (never 500): nothing
#: was stored, and the same request succeeds once the database is back.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError), the pool not set up yet
    asyncpg.PostgresConnectionError,  # 08xxx: connection lost (ConnectionDoesNotExistError), failed, rejected
    asyncpg.InterfaceError,  # the client's side: connection closed, pool is closing
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery mode
    asyncpg.AdminShutdownError,  # 57P01: connection terminated by a (fast or immediate) shutdown
    asyncpg.CrashShutdownError,  # 57P02: terminated because another server process crashed
    asyncpg.TooManyConnectionsError,  # 53300: too many clients already
)


class ErrorDetail(BaseModel):
    field: str | None
    message: str
    type: str


class ErrorOut(BaseModel):
    """The one error shape of every Estafette API."""

    error: str = Field(description="Machine-readable code, e.g. unknown_offer, deadline_passed.")
    message: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(description="The input field concerned (dotted path), if any.")
    details: list[ErrorDetail] = Field(default_factory=list, description="Every problem found, for 422s.")


_DESCRIPTIONS = {
    400: "The request body cannot be parsed.",
    401: "No valid credentials: send `Authorization: Bearer <API key or token>`.",
    403: "The caller's role may not do this.",
    404: "Not found: the id in the path does not exist.",
    405: "This method is not allowed on this path (see `Allow`).",
    409: "Conflict with the current state (closed, already exists, deadline passed, ...).",
    413: "The request body is larger than the service accepts (`max_body_bytes`, 1 MiB by default).",
    415: "The request body must be JSON: send `Content-Type: application/json`.",
    422: "Invalid input: the field named in `field` breaks the schema or a rule.",
    429: "Too many requests from this client without credentials; retry after `Retry-After` seconds.",
    503: "The service cannot reach its database; retry after `Retry-After` seconds. Nothing was stored.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
#: Error codes of the framework's own refusals (HTTPException), by status.
_HTTP_CODES = {
    400: "bad_request", 404: "unknown_path", 405: "method_not_allowed", 413: "body_too_large",
    415: "unsupported_media_type", 503: "unavailable",
}


_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the shared error shape. `create_http_api`
    adds what the runtime itself can answer (see `_runtime_statuses`)."""
    return {status: {"model": ErrorOut, **_described(status)} for status in statuses}


def _described(status: int) -> dict[str, Any]:
    """An error response's description (and Retry-After, where it is sent)."""
    return {"description": _DESCRIPTIONS[status], **({"headers": _RETRY_AFTER} if status in (429, 503) else {})}


class _OrjsonResponse(JSONResponse):
    """A JSON answer rendered with orjson (the same bytes for the error shape, several times faster)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, code: str, message: str, field: str | None = None, details: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": code, "message": message, "field": field, "details": details or []}
    return _OrjsonResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


async def correlation_id(request: Request) -> uuid.UUID:
    # async: FastAPI would run a plain function in a worker thread, a thread hand-off per request
    return request.scope["state"]["correlation_id"]


#: The request's correlation id, for the events a use case publishes.
CorrelationId = Annotated[uuid.UUID, Depends(correlation_id)]


#: Methods that change state: `on_accepted` counts their 2xx answers.
_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CorrelationMiddleware:
    """Pure ASGI: read or make the correlation id, bind it to the logs, echo it, log the request, and
    call `on_accepted(route name)` for every POST, PUT, PATCH or DELETE answered with a 2xx."""

    def __init__(self, app: Any, on_accepted: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.on_accepted = on_accepted

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(CORRELATION_HEADER.lower().encode())
        try:
            cid = uuid.UUID(raw.decode("latin-1")) if raw else uuid.uuid4()
        except ValueError:
            response = _error(422, "invalid_request", f"{CORRELATION_HEADER} must be a UUID", CORRELATION_HEADER)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["correlation_id"] = cid
        status = {"code": 500}

        async def send_with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-correlation-id", str(cid).encode())]
            await send(message)

        t0 = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=str(cid)):
            try:
                await self.app(scope, receive, send_with_header)
            finally:
                # the route's template, never the raw path: a link's path carries its token
                matched = scope.get("route")
                route = getattr(matched, "path", "(no route)")
                log.info(
                    "request handled", method=scope["method"], route=route,
                    status=status["code"], ms=round((time.perf_counter() - t0) * 1000, 1),
                )
                if self.on_accepted is not None and 200 <= status["code"] < 300 and scope["method"] in _CHANGING:
                    self.on_accepted(getattr(matched, "name", "unknown"))


class BodyLimitMiddleware:
    """Pure ASGI: a request body over `max_bytes` is answered 413 before it is held in memory: at once
    when its Content-Length says so, else as soon as the bytes received pass the limit (chunked
    bodies). A body within the limit is handed on in one piece."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (or not HTTP)
            return
        try:
            declared = int(headers.get(b"content-length") or 0)
        except ValueError:
            await _error(400, _HTTP_CODES[400], "Content-Length is not a number")(scope, receive, send)
            return
        if declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> dict[str, Any]:
            nonlocal body
            if body is None:
                return await receive()
            message, body = body, None
            return message

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = _error(413, _HTTP_CODES[413], f"the request body is larger than {self.max_bytes} bytes",
                          headers={"Connection": "close"})
        await response(scope, receive, send)


def _takes_json(route: APIRoute) -> bool:
    """Does the route read a JSON body (a pydantic body parameter, not a form)?"""
    return route.body_field is not None and not isinstance(route.body_field.field_info, params.Form)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class JsonRoute(APIRoute):
    """A route that takes a JSON body answers a body of another content type with 415 (not a
    misleading 422); routes without a JSON body (form posts of link pages, GETs) are left alone."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        if not _takes_json(self):
            return handler

        async def json_only(request: Request) -> Any:
            has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
            if has_body and not _is_json(request.headers.get("content-type")):
                raise HTTPException(415, "the request body must be JSON: send Content-Type: application/json")
            return await handler(request)

        return json_only


def _document_operations(api: FastAPI) -> None:
    """Every operation's OpenAPI: the X-Correlation-ID header the middleware reads, the route's
    policy (`x-policy`, from its policy dependency; see runtime/auth.py), and every status the runtime
    itself can answer for it (a route documents its own: `responses=errors(404, 409)`)."""
    build = api.openapi
    header = {
        "name": CORRELATION_HEADER, "in": "header", "required": False,
        "schema": {"type": "string", "format": "uuid"},
        "description": "Your id for this request (a new one when absent); echoed in the response and carried "
                       "by the events it causes.",
    }

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            policies = {
                (route.path_format, method.lower()): policy_of(route)
                for route in api.routes if isinstance(route, APIRoute) for method in route.methods
            }
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    operation.setdefault("parameters", []).append(header)
                    if name := policies.get((path, method)):
                        operation["x-policy"] = name
                    responses = operation.setdefault("responses", {})
                    for response in responses.values():  # errors() on an HTML route: still JSON
                        _error_shape_as_json(response)
                    for status in _runtime_statuses(operation, name):
                        response = responses.setdefault(str(status), _described(status))
                        # a page route's own 404 page, and the runtime's JSON 404 for a path it cannot route
                        response.setdefault("content", {}).setdefault("application/json", {"schema": _ERROR_REF})
                    operation["responses"] = dict(sorted(responses.items()))
        return api.openapi_schema  # type: ignore[return-value]

    api.openapi = openapi  # type: ignore[method-assign]


def _runtime_statuses(operation: dict[str, Any], policy: str | None) -> list[int]:
    """The statuses the runtime can answer for an operation, besides 422 and 503 (every route)."""
    statuses = []
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses += [404, 405]  # an id that is unknown, or that routes elsewhere once decoded ("a%2Fclose")
    body = operation.get("requestBody")
    if body is not None:
        statuses += [400, 413]
        if any(_is_json(media) for media in body.get("content", {})):
            statuses.append(415)
    if policy in ("public", "organiser", "figures", "admin"):
        statuses.append(401)  # credentials, when sent, must be valid
        statuses.append(429 if policy == "public" else 403)
    return statuses


def _error_shape_as_json(response: dict[str, Any]) -> None:
    """FastAPI documents a route's `responses=errors(...)` under the route's media type; on an HTML
    route that would be text/html, but the error shape is always sent as application/json."""
    content = response.get("content", {})
    for media in [m for m, spec in content.items() if m != "application/json" and spec.get("schema") == _ERROR_REF]:
        content.setdefault("application/json", content.pop(media))


def create_http_api(
    title: str, description: str = "", on_refusal: Any = None, limits: HttpLimits | None = None,
    on_accepted: Callable[[str], None] | None = None,
) -> FastAPI:
    """A FastAPI app with the shared error shape, correlation, the body limit and the public rate
    limit. `on_refusal(error)` is called for every domain error answered (e.g. to count refusals per
    rule); `on_accepted(route name)` for every POST, PUT, PATCH or DELETE answered with a 2xx (e.g. to
    count state changes per route: cheaper than an HTTP middleware of the service's own). `limits`
    default to the environment's (ESTAFETTE_MAX_BODY_BYTES, ..., runtime/settings.py)."""
    limits = limits or HttpLimits()
    api = offline_fastapi(title=title, description=description, version="1", responses=errors(422, 503))
    api.router.route_class = JsonRoute
    api.state.rate_limit = RateLimiter(limits.public_rate_limit_per_minute, limits.public_rate_limit_burst)
    api.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    api.add_middleware(CorrelationMiddleware, on_accepted=on_accepted)  # outermost: every answer, 413 too, carries the id
    _document_operations(api)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 404:
            message = "there is no such resource here"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed here"
        else:
            message = str(exc.detail)
        return _error(exc.status_code, code, message, headers=exc.headers)

    @api.exception_handler(RateLimited)
    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return _error(429, "rate_limited", f"too many requests; try again in {exc.retry_after} s",
                      headers={"Retry-After": str(exc.retry_after)})

    @api.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        if on_refusal is not None:
            on_refusal(exc)
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 422)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _error(status, exc.code, exc.message, exc.field, headers=headers)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=repr(exc))
        return _error(503, "unavailable", "the service cannot reach its database; try again shortly",
                      headers={"Retry-After": "5"})

    for cls in UNAVAILABLE_ERRORS:
        api.add_exception_handler(cls, unavailable)

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors_ = exc.errors()
        first = errors_[0] if errors_ else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            message, field = f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}", None
        else:
            field = _field(first["loc"])
            message = f"{field}: {first['msg']}"
        details = [
            {"field": None if e["type"] == "json_invalid" else _field(e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in errors_
        ]
        return _error(422, "invalid_request", message, field, details)

    return api
