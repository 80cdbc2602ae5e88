"""HTTP API plumbing shared by the services' FastAPI apps: one error shape, never a 500 for bad input,
and a correlation id on every request.

Every error answer is JSON (`ErrorOut`): {"error": code, "message": human text, "field": dotted path
or null, "details": [...]}. Domain errors (runtime/errors.py) map to 422 (RuleViolation), 404
(NotFound) and 409 (Conflict); malformed JSON and schema violations are 422 naming the field. A
database that cannot be reached is a 503 with Retry-After, not a 500; nothing was stored.

Correlation: a request's `X-Correlation-ID` (a UUID; a new one when absent) is bound to every log line
written while it is handled, returned in the response header, and given to the use case through the
`CorrelationId` dependency, so the events it causes carry it.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from estafette.runtime.docs import offline_fastapi
from estafette.runtime.auth import policy_of
from estafette.runtime.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation, Unauthenticated

log = structlog.get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
STATUS_OF: dict[type[DomainError], int] = {
    RuleViolation: 422, NotFound: 404, Conflict: 409, Unauthenticated: 401, Forbidden: 403,
}
#: Errors that mean "the database is away", answered 503 + Retry-After.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
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
    401: "No valid credentials: send `Authorization: Bearer <API key or token>`.",
    403: "The caller's role may not do this.",
    404: "Not found: the id in the path does not exist.",
    409: "Conflict with the current state (closed, already exists, deadline passed, ...).",
    422: "Invalid input: the field named in `field` breaks the schema or a rule.",
    503: "The service cannot reach its database; retry after `Retry-After` seconds. Nothing was stored.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the shared error shape. 422 and 503 are
    added to every route by `create_http_api`."""
    return {status: {"model": ErrorOut, "description": _DESCRIPTIONS[status]} for status in statuses}


def _error(status: int, code: str, message: str, field: str | None = None, details: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": code, "message": message, "field": field, "details": details or []}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def correlation_id(request: Request) -> uuid.UUID:
    return request.scope["state"]["correlation_id"]


#: The request's correlation id, for the events a use case publishes.
CorrelationId = Annotated[uuid.UUID, Depends(correlation_id)]


class CorrelationMiddleware:
    """Pure ASGI: read or make the correlation id, bind it to the logs, echo it, log the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

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
                route = scope.get("route")
                log.info(
                    "request handled", method=scope["method"], route=getattr(route, "path", scope["path"]),
                    status=status["code"], ms=round((time.perf_counter() - t0) * 1000, 1),
                )


def _document_operations(api: FastAPI) -> None:
    """Every operation's OpenAPI: the X-Correlation-ID header the middleware reads, and the route's
    policy (`x-policy`, from its policy dependency; see runtime/auth.py)."""
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
            for path, operations in build().get("paths", {}).items():
                for method, operation in operations.items():
                    operation.setdefault("parameters", []).append(header)
                    if name := policies.get((path, method)):
                        operation["x-policy"] = name
        return api.openapi_schema  # type: ignore[return-value]

    api.openapi = openapi  # type: ignore[method-assign]


def create_http_api(title: str, description: str = "", on_refusal: Any = None) -> FastAPI:
    """A FastAPI app with the shared error shape and correlation. `on_refusal(error)` is called for
    every domain error answered (e.g. to count refusals per rule)."""
    api = offline_fastapi(title=title, description=description, version="1", responses=errors(422, 503))
    api.add_middleware(CorrelationMiddleware)
    _document_operations(api)

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
