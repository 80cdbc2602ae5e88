"""The registration HTTP API (OpenAPI at /docs): editions, offers and sign-ups. Each route translates
a request into one call of `service`; refusals are domain errors, answered by the shared error shape."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from estafette.runtime.errors import DomainError
from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.uow import Uow
from schemas.events import Id, Language, OfferFormat
from services.registration import domain, service
from services.registration.repository import Repository


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


class Reason(Strict):
    reason: str = Field(default="", max_length=500)


class EditionOverviewOut(BaseModel):
    """An edition (the fields of `domain.Edition`) with what it holds now."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    region: str
    name: str
    signup_deadline: datetime
    starts_on: date
    ends_on: date
    languages: list[str]
    status: domain.EditionStatus
    offers: int = Field(description="Published offers.")
    signups: int = Field(description="Submitted sign-ups.")


class SignupOut(BaseModel):
    signup_id: str
    edition: str
    status: domain.SignupStatus
    signed_up_at: datetime
    choices: list[str]


class RegistrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("registration_accepted", "Requests that changed state", ["action"], registry=registry)
        self.refused = Counter("registration_refused", "Requests refused by a rule", ["code"], registry=registry)

    def refusal(self, error: DomainError) -> None:
        self.refused.labels(error.code).inc()


def build_api(uow: Uow[Repository], metrics: RegistrationMetrics) -> FastAPI:
    api = create_http_api("Estafette registration", "Editions, host offers and sign-ups.", on_refusal=metrics.refusal)

    @api.middleware("http")
    async def count_changes(request: Request, call_next):  # noqa: ANN001, ANN202
        """registration_accepted{action=<route name>} for every POST or DELETE that succeeded."""
        response: Response = await call_next(request)
        if request.method in ("POST", "DELETE") and response.status_code < 300:
            route = request.scope.get("route")
            metrics.accepted.labels(getattr(route, "name", "unknown")).inc()
        return response

    @api.post("/editions", status_code=201, responses=errors(409))
    async def open_edition(body: EditionIn, correlation_id: CorrelationId) -> domain.Edition:
        return await service.open_edition(uow, domain.Edition(**body.model_dump()), correlation_id=correlation_id)

    @api.get("/editions/{edition_id}", responses=errors(404))
    async def get_edition(edition_id: str) -> EditionOverviewOut:
        overview = await service.edition_overview(uow, edition_id)
        return EditionOverviewOut(**vars(overview.edition), **vars(overview.counts))

    @api.post("/editions/{edition_id}/close", status_code=204, responses=errors(404))
    async def close_edition(edition_id: str, correlation_id: CorrelationId, body: Reason | None = None) -> None:
        await service.close_edition(uow, edition_id, reason=body.reason if body else "", correlation_id=correlation_id)

    @api.post("/editions/{edition_id}/offers", status_code=201, responses=errors(404, 409))
    async def publish_offer(edition_id: str, body: OfferIn, correlation_id: CorrelationId) -> domain.Offer:
        return await service.publish_offer(
            uow, edition_id, offer_id=body.id, **body.model_dump(exclude={"id"}), correlation_id=correlation_id
        )

    @api.get("/editions/{edition_id}/offers", responses=errors(404))
    async def list_offers(edition_id: str) -> list[domain.Offer]:
        return await service.offers(uow, edition_id)

    @api.delete("/editions/{edition_id}/offers/{offer_id}", status_code=204, responses=errors(404))
    async def cancel_offer(edition_id: str, offer_id: str, correlation_id: CorrelationId) -> None:
        await service.cancel_offer(uow, edition_id, offer_id, correlation_id=correlation_id)

    @api.post("/editions/{edition_id}/signups", status_code=201, responses=errors(404, 409))
    async def submit_signup(edition_id: str, body: SignupIn, correlation_id: CorrelationId) -> SignupOut:
        signup = await service.submit_signup(uow, edition_id, **body.model_dump(), correlation_id=correlation_id)
        return SignupOut(
            signup_id=signup.id, edition=signup.edition_id, status=signup.status, signed_up_at=signup.signed_up_at,
            choices=signup.choices,
        )

    @api.delete("/editions/{edition_id}/signups/{signup_id}", status_code=204, responses=errors(404))
    async def withdraw_signup(edition_id: str, signup_id: str, correlation_id: CorrelationId) -> None:
        await service.withdraw_signup(uow, edition_id, signup_id, correlation_id=correlation_id)

    return api
