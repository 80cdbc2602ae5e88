"""The registration HTTP API (OpenAPI at /docs): editions, offers and sign-ups."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from estafette.runtime.http import ApiError, create_http_api
from estafette.runtime.uow import UnitOfWork
from schemas.events import Id, Language, OfferFormat
from services.registration import domain, service


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EditionIn(Strict):
    id: Id
    region: Id
    name: str = Field(min_length=1, max_length=200)
    signup_deadline: AwareDatetime
    starts_on: date
    ends_on: date
    languages: list[Language] = Field(default=["nl"], min_length=1)


class OfferIn(Strict):
    id: Id | None = None
    host_org: Id
    title: str = Field(min_length=1, max_length=200)
    date: date
    capacity: int = Field(ge=1, le=10_000)
    max_per_org: int | None = Field(default=None, ge=1)
    format: OfferFormat = "visit"
    location: str = Field(default="", max_length=300)


class SignupIn(Strict):
    org: Id
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1, max_length=10)
    available: list[date] | None = Field(default=None, min_length=1)
    max_visits: int = Field(default=1, ge=1, le=5)


class SignupOut(BaseModel):
    signup_id: str
    edition: str
    status: str = "submitted"
    signed_up_at: datetime
    choices: list[str]


class Reason(Strict):
    reason: str = Field(default="", max_length=500)


CorrelationId = Annotated[uuid.UUID | None, Header(alias="X-Correlation-ID")]


class RegistrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("registration_accepted", "Requests that changed state", ["action"], registry=registry)
        self.refused = Counter("registration_refused", "Requests refused by a rule", ["code"], registry=registry)


def build_api(uow: UnitOfWork, metrics: RegistrationMetrics) -> FastAPI:
    api = create_http_api("Estafette registration", "Editions, host offers and sign-ups.")
    shared_error_handler = api.exception_handlers[ApiError]

    @api.exception_handler(ApiError)
    async def count_refusal(request: Request, exc: ApiError) -> JSONResponse:
        metrics.refused.labels(exc.code).inc()
        return await shared_error_handler(request, exc)

    @api.middleware("http")
    async def count_changes(request: Request, call_next):  # noqa: ANN001, ANN202
        response = await call_next(request)
        if request.method in ("POST", "DELETE") and response.status_code < 300:
            route = request.scope.get("route")
            metrics.accepted.labels(getattr(route, "name", "unknown")).inc()
        return response

    @api.post("/editions", status_code=201)
    async def open_edition(body: EditionIn, x_correlation_id: CorrelationId = None) -> dict[str, Any]:
        edition = domain.Edition(**body.model_dump(), status="open")
        await service.open_edition(uow, edition, x_correlation_id or uuid.uuid4())
        return edition.__dict__

    @api.get("/editions/{edition_id}")
    async def get_edition(edition_id: str) -> dict[str, Any]:
        return await service.edition_overview(uow, edition_id)

    @api.post("/editions/{edition_id}/close", status_code=204)
    async def close_edition(edition_id: str, body: Reason | None = None, x_correlation_id: CorrelationId = None) -> None:
        await service.close_edition(uow, edition_id, body.reason if body else "", x_correlation_id or uuid.uuid4())

    @api.post("/editions/{edition_id}/offers", status_code=201)
    async def publish_offer(edition_id: str, body: OfferIn, x_correlation_id: CorrelationId = None) -> dict[str, Any]:
        return await service.publish_offer(uow, edition_id, body.model_dump(), x_correlation_id or uuid.uuid4())

    @api.get("/editions/{edition_id}/offers")
    async def list_offers(edition_id: str) -> list[dict[str, Any]]:
        return await service.offers(uow, edition_id)

    @api.delete("/editions/{edition_id}/offers/{offer_id}", status_code=204)
    async def cancel_offer(edition_id: str, offer_id: str, x_correlation_id: CorrelationId = None) -> None:
        await service.cancel_offer(uow, edition_id, offer_id, "", x_correlation_id or uuid.uuid4())

    @api.post("/editions/{edition_id}/signups", status_code=201)
    async def submit_signup(edition_id: str, body: SignupIn, x_correlation_id: CorrelationId = None) -> SignupOut:
        event = await service.submit_signup(
            uow, edition_id, **body.model_dump(), correlation_id=x_correlation_id or uuid.uuid4()
        )
        return SignupOut(signup_id=event.signup_id, edition=edition_id, signed_up_at=event.signed_up_at, choices=event.choices)

    @api.delete("/editions/{edition_id}/signups/{signup_id}", status_code=204)
    async def withdraw_signup(edition_id: str, signup_id: str, x_correlation_id: CorrelationId = None) -> None:
        await service.withdraw_signup(uow, edition_id, signup_id, x_correlation_id or uuid.uuid4())

    return api
