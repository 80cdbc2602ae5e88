"""The registration HTTP API (OpenAPI at /docs): editions, offers and sign-ups, the region registry,
erasure of a participant's personal data, and the participant's link pages. Each route declares its
policy (`Public`, `Organiser`, `link_policy()`) and translates a request into one call of `service`;
refusals are domain errors, answered by the shared error shape (link pages answer with a small HTML
page instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from estafette.runtime.auth import LinkClaims, LinkExpired, LinkInvalid, Links, Organiser, Public, link_policy
from estafette.runtime.errors import DomainError, NotFound
from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.inputs import Line, Paragraphs, PathId
from estafette.runtime.pages import Page, page_response
from estafette.runtime.regions import RegionBook
from estafette.runtime.uow import Uow
from schemas.events import Id, Language, OfferFormat
from services.registration import domain, service
from services.registration.config import RegistrationSettings
from services.registration.pages import LinkPages
from services.registration.repository import Repository

#: Upper bound of capacities and per-organisation caps (an exchange visit, not a stadium).
MAX_PLACES = 10_000
#: The purpose of the link a participant gets with their sign-up (runtime/auth.py `Links`).
SIGNUP_LINK = "signup"
#: A link's token in a path: any text up to this length; the signature decides (never a 500).
LinkToken = Annotated[str, Path(max_length=1000, description="The token of the participant's link.")]
_PAGE_STATUSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "A page for the participant."},
    404: {"content": {"text/html": {}}, "description": "A page saying the link is not valid (tampered, another purpose, unknown sign-up)."},
    410: {"content": {"text/html": {}}, "description": "A page saying the link has expired."},
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EditionIn(Strict):
    id: Id
    region: Id
    name: Line(200)
    signup_deadline: AwareDatetime
    starts_on: date
    ends_on: date
    languages: list[Language] = Field(default=["nl"], min_length=1, max_length=3)


class OfferIn(Strict):
    id: Id | None = None
    host_org: Id
    title: Line(200)
    date: date
    capacity: int = Field(ge=1, le=MAX_PLACES)
    max_per_org: int | None = Field(default=None, ge=1, le=MAX_PLACES)
    format: OfferFormat = "visit"
    location: Line(300, min_length=0) = ""


class SignupIn(Strict):
    org: Id
    name: Line(200)
    email: EmailStr
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1, max_length=10)
    available: list[date] | None = Field(default=None, min_length=1, max_length=366)
    max_visits: int = Field(default=1, ge=1, le=5)


class Reason(Strict):
    reason: Paragraphs(500) = ""


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


class RegionNamesOut(BaseModel):
    nl: str
    de: str
    en: str


class RegionOut(BaseModel):
    """A region of the region registry, as portals show it."""

    id: str = Field(description="The region's id, e.g. `twente`: an edition's `region`.")
    names: RegionNamesOut = Field(description="Its display name in Dutch, German and English.")
    timezone: str = Field(description="Its editions' local time, e.g. `Europe/Amsterdam`.")
    languages: list[str] = Field(description="The languages its editions may use (nl, de, en).")


class SignupOut(BaseModel):
    signup_id: str
    edition: str
    status: domain.SignupStatus
    signed_up_at: datetime
    choices: list[str]
    manage_url: str = Field(description="The participant's own page of this sign-up (a signed link; withdraw there).")


class RegistrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("registration_accepted", "Requests that changed state", ["action"], registry=registry)
        self.refused = Counter("registration_refused", "Requests refused by a rule", ["code"], registry=registry)

    def refusal(self, error: DomainError) -> None:
        self.refused.labels(error.code).inc()


def build_api(
    uow: Uow[Repository], metrics: RegistrationMetrics, links: Links, settings: RegistrationSettings, registry: RegionBook
) -> FastAPI:
    api = create_http_api("Estafette registration", "Editions, host offers and sign-ups.", on_refusal=metrics.refusal)
    pages = LinkPages()

    async def loaded_registry() -> RegionBook:
        """The region registry once it has been read to its end (just started: wait for it briefly, as
        for the API keys); 503 with Retry-After when it cannot be read in time."""
        if not registry.ready.is_set():
            try:
                await asyncio.wait_for(registry.ready.wait(), settings.regions_ready_timeout_seconds)
            except TimeoutError:
                raise HTTPException(
                    503, "the region registry is not loaded yet; try again shortly", headers={"Retry-After": "5"}
                ) from None
        return registry

    registry_loaded = Depends(loaded_registry)

    @api.middleware("http")
    async def count_changes(request: Request, call_next):  # noqa: ANN001, ANN202
        """registration_accepted{action=<route name>} for every POST or DELETE that succeeded."""
        response: Response = await call_next(request)
        if request.method in ("POST", "DELETE") and response.status_code < 300:
            route = request.scope.get("route")
            metrics.accepted.labels(getattr(route, "name", "unknown")).inc()
        return response

    @api.get("/regions", responses=errors(401))
    async def list_regions(_: Public, regions: RegionBook = registry_loaded) -> list[RegionOut]:
        """The regions of the region registry, by id: where editions can be opened, in which languages.
        A region added by `estafette regions apply` is listed within seconds."""
        return [RegionOut.model_validate(r.model_dump(include=set(RegionOut.model_fields))) for r in service.regions(regions)]

    @api.post("/editions", status_code=201, responses=errors(401, 403, 409))
    async def open_edition(
        body: EditionIn, principal: Organiser, correlation_id: CorrelationId, regions: RegionBook = registry_loaded
    ) -> domain.Edition:
        """Open an edition in a region of the registry (422 `unknown_region`), in languages the region
        offers (422 `language_not_offered`)."""
        edition = domain.Edition(**body.model_dump())
        return await service.open_edition(uow, edition, registry=regions, principal=principal, correlation_id=correlation_id)

    @api.get("/editions/{edition_id}", responses=errors(401, 404))
    async def get_edition(edition_id: PathId, _: Public) -> EditionOverviewOut:
        overview = await service.edition_overview(uow, edition_id)
        return EditionOverviewOut(**vars(overview.edition), **vars(overview.counts))

    @api.post("/editions/{edition_id}/close", status_code=204, responses=errors(401, 403, 404))
    async def close_edition(
        edition_id: PathId, principal: Organiser, correlation_id: CorrelationId, body: Reason | None = None
    ) -> None:
        reason = body.reason if body else ""
        await service.close_edition(uow, edition_id, principal=principal, reason=reason, correlation_id=correlation_id)

    @api.post("/editions/{edition_id}/offers", status_code=201, responses=errors(401, 403, 404, 409))
    async def publish_offer(edition_id: PathId, body: OfferIn, principal: Organiser, correlation_id: CorrelationId) -> domain.Offer:
        return await service.publish_offer(
            uow, edition_id, principal=principal, offer_id=body.id, **body.model_dump(exclude={"id"}),
            correlation_id=correlation_id,
        )

    @api.get("/editions/{edition_id}/offers", responses=errors(401, 404))
    async def list_offers(edition_id: PathId, _: Public) -> list[domain.Offer]:
        return await service.offers(uow, edition_id)

    @api.delete("/editions/{edition_id}/offers/{offer_id}", status_code=204, responses=errors(401, 403, 404))
    async def cancel_offer(edition_id: PathId, offer_id: PathId, principal: Organiser, correlation_id: CorrelationId) -> None:
        await service.cancel_offer(uow, edition_id, offer_id, principal=principal, correlation_id=correlation_id)

    @api.post("/editions/{edition_id}/signups", status_code=201, responses=errors(401, 404, 409))
    async def submit_signup(edition_id: PathId, body: SignupIn, _: Public, correlation_id: CorrelationId) -> SignupOut:
        signup = await service.submit_signup(uow, edition_id, **body.model_dump(), correlation_id=correlation_id)
        token = links.make(SIGNUP_LINK, signup.id, signup.edition_id)
        return SignupOut(
            signup_id=signup.id, edition=signup.edition_id, status=signup.status, signed_up_at=signup.signed_up_at,
            choices=signup.choices, manage_url=f"{settings.public_url.rstrip('/')}/links/signup/{token}",
        )

    @api.delete("/editions/{edition_id}/signups/{signup_id}", status_code=204, responses=errors(401, 403, 404))
    async def withdraw_signup(edition_id: PathId, signup_id: PathId, principal: Organiser, correlation_id: CorrelationId) -> None:
        await service.withdraw_signup(uow, edition_id, signup_id, principal=principal, correlation_id=correlation_id)

    @api.delete("/signups/{signup_id}/personal-data", status_code=204, responses=errors(401, 403, 404))
    async def erase_personal_data(signup_id: PathId, principal: Organiser) -> None:
        """Erase the participant's name and e-mail address (an admin, or the organiser of the sign-up's
        region): blanked here, and a tombstone on the region's participants topic makes every service
        forget them. Again: 204, nothing changes. The sign-up itself stays (withdraw it separately)."""
        await service.erase_personal_data(uow, signup_id, principal=principal)

    # --- the participant's link (a capability for one sign-up; a GET never changes anything) ----------
    async def link_page(token: str, use_case: Callable[[LinkClaims], Awaitable[Page]]) -> HTMLResponse:
        """Read the link, run the use case as its participant, answer with a page (410 expired, 404 not valid)."""
        try:
            return page_response(await use_case(links.read(token, SIGNUP_LINK, settings.link_max_age_seconds)))
        except LinkExpired:
            return page_response(pages.expired(), 410)
        except (LinkInvalid, NotFound):
            return page_response(pages.invalid(), 404)

    @api.get("/links/signup/{token}", response_class=HTMLResponse, dependencies=[link_policy()], responses=_PAGE_STATUSES)
    async def signup_page(token: LinkToken) -> HTMLResponse:
        """The participant's sign-up (edition, choices, status) with one button: withdraw."""

        async def show(link: LinkClaims) -> Page:
            details = await service.signup_details(uow, link.edition_id, link.signup_id, principal=Links.principal(link))
            return pages.signup(details, action=f"{token}/withdraw")

        return await link_page(token, show)

    @api.post("/links/signup/{token}/withdraw", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_PAGE_STATUSES)
    async def withdraw_by_link(token: LinkToken, correlation_id: CorrelationId) -> HTMLResponse:
        """Withdraw the link's sign-up and say so; again: the same page, and nothing changes."""

        async def withdraw(link: LinkClaims) -> Page:
            details = await service.withdraw_signup(
                uow, link.edition_id, link.signup_id, principal=Links.principal(link), correlation_id=correlation_id
            )
            return pages.signup(details)

        return await link_page(token, withdraw)

    return api
