"""HTTP API plumbing shared by the services' FastAPI apps: one error shape, never a 500 for bad input.

Every error answer is JSON: {"error": code, "message": human text, "field": dotted path or null,
"details": [...]} with a 4xx status. Malformed JSON and schema violations are 422 naming the field.
A database that cannot be reached is a 503 with Retry-After, not a 500; nothing was stored.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = structlog.get_logger(__name__)


class ApiError(Exception):
    status = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def create_http_api(title: str, description: str = "") -> FastAPI:
    api = FastAPI(title=title, description=description, version="1")

    @api.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "message": exc.message, "field": exc.field, "details": []}, status_code=exc.status
        )

    @api.exception_handler(OSError)
    @api.exception_handler(asyncpg.PostgresConnectionError)
    @api.exception_handler(asyncpg.InterfaceError)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=repr(exc))
        return JSONResponse(
            {"error": "unavailable", "message": "the service cannot reach its database; try again shortly", "field": None, "details": []},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            message, field = f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}", None
        else:
            field = _field(first["loc"])
            message = f"{field}: {first['msg']}"
        details = [
            {"field": None if e["type"] == "json_invalid" else _field(e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in errors
        ]
        return JSONResponse(
            {"error": "invalid_request", "message": message, "field": field, "details": details}, status_code=422
        )

    return api
