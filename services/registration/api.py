"""The registration HTTP API (OpenAPI at /docs): editions (cancel too), offers (edit too), participating
organisations, sign-ups, the region registry, erasure of a participant's personal data, and the pages
behind participants' and employers' links (my sign-up, approval, feedback). Each route declares its
policy (`Public`, `Organiser`, `link_policy()`) and translates a request into one call of `service`;
refusals are domain errors, answered by the shared error shape (link pages answer with a small HTML
page instead)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

from estafette.runtime.auth import LinkClaims, LinkExpired, LinkInvalid, Links, Organiser, Public, link_policy
from estafette.runtime.clock import Clock, Now
from estafette.runtime.errors import Conflict, DomainError, NotFound, RuleViolation
from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.inputs import ID_PATTERN, Line, Paragraphs, PathId
from estafette.runtime.pages import Page, page_response
from estafette.runtime.regions import RegionBook
from estafette.runtime.uow import Uow
from schemas.events import Attendance, Id, Language, OfferFormat, PartOfDay
from services.registration import domain, relay_api, service
from services.registration.config import RegistrationSettings
from services.registration.people_api import add_people_routes
from services.registration.pages import MAX_CHOICES, MAX_LEARNED, MAX_REASON, LinkPages
from services.registration.repository import Repository

#: Upper bound of capacities and per-organisation caps (an exchange visit, not a stadium).
MAX_PLACES = 10_000
#: The purposes of the links this service makes and reads (runtime/auth.py `Links`): the participant's
#: own sign-up, an organisation contact's approval (ref: the org id), feedback on a visit (ref: offer id).
SIGNUP_LINK, APPROVAL_LINK, FEEDBACK_LINK = "signup", "approval", "feedback"
#: A link's token in a path: any text up to this length; the signature decides (never a 500).
LinkToken = Annotated[str, Path(max_length=1000, description="The token of the participant's link.")]
_PAGE_STATUSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "A page for the participant."},
    404: {"content": {"text/html": {}}, "description": "A page saying the link is not valid (tampered, another purpose, unknown sign-up)."},
    410: {"content": {"text/html": {}}, "description": "A page saying the link has expired."},
}
#: Pages that act (a form's POST): also 409 (not possible any more: the page says why) and 422 (the
#: form was incomplete or wrong: the page says what, with the form again).
_ACTION_STATUSES: dict[int | str, dict[str, Any]] = {
    **_PAGE_STATUSES,
    409: {"content": {"text/html": {}}, "description": "A page saying why this is no longer possible."},
    422: {"content": {"text/html": {}, "application/json": {}},
          "description": "A page saying what was wrong with the form, with the form again; a malformed request "
                         "(e.g. its X-Correlation-ID header) gets the JSON error shape."},
}
_ID = re.compile(ID_PATTERN)


def _form_body(**properties: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI of a link page's form POST (application/x-www-form-urlencoded)."""
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}}


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
    themes: list[Id] = Field(default=[], max_length=domain.MAX_THEMES, description="The themes its offers may have.")
    requires_approval: bool = Field(default=False, description="Sign-ups wait for their employer's approval.")
    match_at_deadline: bool = Field(default=False, description="Matching runs by itself at the sign-up deadline.")


class ContactIn(Strict):
    """A person to write to (a host contact, an organisation's contact), in their language."""

    name: Line(200)
    email: EmailStr
    language: Language = "nl"


#: A join link: http(s) only, one line.
JoinUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s/]+\S*$")]


class OfferIn(Strict):
    id: Id | None = None
    host_org: Id
    title: Line(200)
    date: date
    capacity: int = Field(ge=1, le=MAX_PLACES)
    max_per_org: int | None = Field(default=None, ge=1, le=MAX_PLACES)
    format: OfferFormat = "visit"
    location: Line(300, min_length=0) = Field(default="", description="The address (on site); online offers need none.")
    themes: list[Id] = Field(default=[], max_length=domain.MAX_THEMES, description="Themes of the edition's list.")
    attendance: Attendance = "on_site"
    part_of_day: PartOfDay = "whole_day"
    starts_at: time | None = Field(default=None, description="Local time in the region's time zone.")
    ends_at: time | None = None
    join_url: JoinUrl | None = None
    what_to_bring: Paragraphs(1000) = ""
    host_contact: ContactIn | None = None


#: Fields of an offer edit that may not be null (the others may be cleared with null).
_NOT_NULL = {"title", "date", "part_of_day", "location", "capacity", "what_to_bring", "themes", "attendance"}


class OfferPatch(Strict):
    """An organiser's edit of an offer: only the fields sent change (starts_at, ends_at, join_url and
    host_contact may be cleared with null)."""

    title: Line(200) | None = None
    date: dt.date | None = None
    part_of_day: PartOfDay | None = None
    starts_at: time | None = None
    ends_at: time | None = None
    location: Line(300, min_length=0) | None = None
    join_url: JoinUrl | None = None
    capacity: int | None = Field(default=None, ge=1, le=MAX_PLACES)
    what_to_bring: Paragraphs(1000) | None = None
    host_contact: ContactIn | None = None
    themes: list[Id] | None = Field(default=None, max_length=domain.MAX_THEMES)
    attendance: Attendance | None = None

    @field_validator(*sorted(_NOT_NULL), mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null: leave the field out to keep it")
        return value

    def changes(self) -> dict[str, Any]:
        """The new values of the fields sent, as the domain holds them."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if "host_contact" in out and out["host_contact"] is not None:
            out["host_contact"] = domain.Contact(**out["host_contact"].model_dump())
        return out


class SignupIn(Strict):
    org: Id
    name: Line(200)
    email: EmailStr
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1, max_length=10)
    available: list[date] | None = Field(default=None, min_length=1, max_length=366)
    max_visits: int = Field(default=1, ge=1, le=5)
    learning_goal: Paragraphs(1000) = Field(default="", description="What the participant wants to learn.")
    consent: bool = Field(default=False, description="Agreement to the processing of the participant's data: must be true.")


class OrganisationIn(Strict):
    id: Id = Field(description="The organisation's id, as sign-ups name it in `org`.")
    name: Line(200)
    contact: ContactIn = Field(description="Who approves its employees' sign-ups (in editions that require it).")


class Reason(Strict):
    reason: Paragraphs(500) = ""


class CancelIn(Strict):
    reason: Paragraphs(500, min_length=1) = Field(description="Why the edition is cancelled: every participant and host reads it.")


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
    themes: list[str]
    requires_approval: bool
    match_at_deadline: bool
    offers: int = Field(description="Published offers.")
    signups: int = Field(description="Submitted sign-ups.")


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    email: str
    language: str


class OfferOut(BaseModel):
    """An offer as everyone sees it (without its host contact)."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    edition_id: str
    host_org: str
    title: str
    date: date
    capacity: int
    max_per_org: int | None
    format: str
    location: str
    status: domain.OfferStatus
    themes: list[str]
    attendance: str
    part_of_day: str
    starts_at: time | None
    ends_at: time | None
    join_url: str | None
    what_to_bring: str
    sequence: int


class OfferDetailsOut(OfferOut):
    """An offer as its organisers see it: with the host contact."""

    host_contact: ContactOut | None


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    edition_id: str
    id: str
    name: str
    contact: ContactOut


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
    approval: domain.ApprovalState = Field(description="`pending`: waits for the employer's approval.")
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
    uow: Uow[Repository], metrics: RegistrationMetrics, links: Links, settings: RegistrationSettings, registry: RegionBook,
    *, clock: Now | None = None,
) -> FastAPI:
    """The HTTP API. `clock`: the platform clock (`rt.clock`), "now" of every sign-up, deadline check,
    erasure and feedback."""
    # registration_accepted{action=<route name>} for every change that succeeded (runtime/http.py).
    api = create_http_api(
        "Estafette registration", "Editions, host offers and sign-ups.", on_refusal=metrics.refusal,
        on_accepted=lambda route: metrics.accepted.labels(route).inc(),
    )
    pages = LinkPages()
    clock = clock or Clock()
    public_url, matching_url = settings.public_url.rstrip("/"), settings.matching_public_url.rstrip("/")

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
    # Possible dates (issue 10) and the relay's routes (relay_api.py).
    limits = domain.DateLimits(settings.max_years_past, settings.max_years_ahead, settings.max_edition_days)
    relay_api.add_relay_routes(api, uow, registry_loaded, clock, limits)

    def approval_url(signup_id: str, edition_id: str, org_id: str) -> str:
        token = links.make(APPROVAL_LINK, signup_id, edition_id, ref=org_id)
        return f"{public_url}/links/approval/{quote(token, safe='')}"

    # Concurrent public sign-ups are committed together (service.SignupIntake: group commit).
    intake = service.SignupIntake(uow, approval_url)

    def seat_offer_url(answer: str, signup_id: str, edition_id: str, offer_id: str) -> str:
        """Matching's page for one answer to a seat offer (the same link notifications mails)."""
        token = links.make(f"seat_offer_{answer}", signup_id, edition_id, ref=offer_id)
        return f"{matching_url}/links/seat-offers/{quote(token, safe='')}/{answer}"

    def timezone_of(edition: domain.Edition) -> str:
        record = registry.get(edition.region)
        return record.timezone if record is not None else "Europe/Amsterdam"

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
        offers (422 `language_not_offered`), with its themes, whether sign-ups need their employer's
        approval, and whether matching runs by itself at the deadline. Impossible dates: 422
        `date_too_early` / `date_too_late` (on the platform clock), `edition_too_long`."""
        edition = domain.Edition(**body.model_dump())
        return await service.open_edition(
            uow, edition, registry=regions, principal=principal, correlation_id=correlation_id, now=clock.now(), limits=limits
        )

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

    @api.post("/editions/{edition_id}/cancel", status_code=204, responses=errors(401, 403, 404))
    async def cancel_edition(edition_id: PathId, body: CancelIn, principal: Organiser, correlation_id: CorrelationId) -> None:
        """Call off the whole edition with a reason (`EditionCancelled`, once; again: 204, nothing). Its
        sign-ups, offers and edits are refused from then on (409 `edition_cancelled`)."""
        await service.cancel_edition(uow, edition_id, principal=principal, reason=body.reason, correlation_id=correlation_id)

    @api.post("/editions/{edition_id}/organisations", status_code=201, responses=errors(401, 403, 404, 409))
    async def register_organisation(edition_id: PathId, body: OrganisationIn, principal: Organiser) -> OrganisationOut:
        """Register a participating organisation with its contact (who approves its employees' sign-ups
        where the edition requires approval). 409 `organisation_exists`."""
        organisation = domain.Organisation(edition_id, body.id, body.name, domain.Contact(**body.contact.model_dump()))
        return OrganisationOut.model_validate(await service.register_organisation(uow, organisation, principal=principal))

    @api.get("/editions/{edition_id}/organisations", responses=errors(401, 403, 404))
    async def list_organisations(edition_id: PathId, principal: Organiser) -> list[OrganisationOut]:
        return [OrganisationOut.model_validate(o) for o in await service.organisations(uow, edition_id, principal=principal)]

    @api.post("/editions/{edition_id}/offers", status_code=201, responses=errors(401, 403, 404, 409))
    async def publish_offer(edition_id: PathId, body: OfferIn, principal: Organiser, correlation_id: CorrelationId) -> OfferDetailsOut:
        fields = body.model_dump(exclude={"id", "host_contact"})
        contact = domain.Contact(**body.host_contact.model_dump()) if body.host_contact else None
        offer = await service.publish_offer(
            uow, edition_id, principal=principal, offer_id=body.id, **fields, host_contact=contact,
            correlation_id=correlation_id, now=clock.now(), limits=limits,
        )
        return OfferDetailsOut.model_validate(offer)

    @api.get("/editions/{edition_id}/offers", responses=errors(401, 404))
    async def list_offers(edition_id: PathId, _: Public) -> list[OfferOut]:
        """The edition's offers by date and id, cancelled ones included with their `status` (without
        their host contacts)."""
        return [OfferOut.model_validate(o) for o in await service.offers(uow, edition_id)]

    @api.patch("/editions/{edition_id}/offers/{offer_id}", responses=errors(401, 403, 404, 409))
    async def change_offer(
        edition_id: PathId, offer_id: PathId, body: OfferPatch, principal: Organiser, correlation_id: CorrelationId
    ) -> OfferDetailsOut:
        """Edit an offer (only the fields sent): `OfferChanged` with the whole offer, its `sequence` one
        higher and `changed` naming the fields whose value differs; no difference: no event. 409
        `offer_cancelled`, `edition_cancelled`."""
        offer = await service.change_offer(
            uow, edition_id, offer_id, principal=principal, changes=body.changes(), correlation_id=correlation_id
        )
        return OfferDetailsOut.model_validate(offer)

    @api.delete("/editions/{edition_id}/offers/{offer_id}", status_code=204, responses=errors(401, 403, 404, 409))
    async def cancel_offer(
        edition_id: PathId, offer_id: PathId, principal: Organiser, correlation_id: CorrelationId, body: Reason | None = None
    ) -> None:
        """Cancel an offer (matching re-places the people it had), with an optional reason."""
        await service.cancel_offer(
            uow, edition_id, offer_id, principal=principal, reason=body.reason if body else "", correlation_id=correlation_id
        )

    @api.post("/editions/{edition_id}/signups", status_code=201, responses=errors(401, 404, 409))
    async def submit_signup(edition_id: PathId, body: SignupIn, _: Public, correlation_id: CorrelationId) -> SignupOut:
        signup = await intake.submit(service.SignupRequest(
            edition_id=edition_id, **body.model_dump(), correlation_id=correlation_id, now=clock.now()
        ))
        token = links.make(SIGNUP_LINK, signup.id, signup.edition_id)
        return SignupOut(
            signup_id=signup.id, edition=signup.edition_id, status=signup.status, approval=signup.approval,
            signed_up_at=signup.signed_up_at, choices=signup.choices,
            manage_url=f"{public_url}/links/signup/{quote(token, safe='')}",
        )

    @api.delete("/editions/{edition_id}/signups/{signup_id}", status_code=204, responses=errors(401, 403, 404))
    async def withdraw_signup(
        edition_id: PathId, signup_id: PathId, principal: Organiser, correlation_id: CorrelationId, body: Reason | None = None
    ) -> None:
        """Withdraw a sign-up on the participant's behalf, with an optional reason (`SignupWithdrawn.reason`)."""
        await service.withdraw_signup(
            uow, edition_id, signup_id, principal=principal, reason=body.reason if body else "",
            correlation_id=correlation_id,
        )

    @api.delete("/signups/{signup_id}/personal-data", status_code=204, responses=errors(401, 403, 404))
    async def erase_personal_data(signup_id: PathId, principal: Organiser) -> None:
        """Erase the participant's name, e-mail address and learning goal (an admin, or the organiser of
        the sign-up's region): blanked here, and a tombstone on the region's participants topic makes
        every service forget them. Again: 204, nothing changes. The sign-up itself stays (withdraw it
        separately)."""
        await service.erase_personal_data(uow, signup_id, principal=principal, now=clock.now())

    # --- links (a capability for one sign-up; a GET never changes anything) -------------------------
    async def link_page(
        token: str, purpose: str, use_case: Callable[[LinkClaims], Awaitable[Page | tuple[Page, int]]]
    ) -> HTMLResponse:
        """Read the link, run the use case for it, answer with its page (410 expired, 404 not valid)."""
        try:
            answer = await use_case(links.read(token, purpose, settings.link_max_age_seconds))
        except LinkExpired:
            return page_response(pages.expired(), 410)
        except (LinkInvalid, NotFound):
            return page_response(pages.invalid(), 404)
        page, status = answer if isinstance(answer, tuple) else (answer, 200)
        return page_response(page, status)

    async def my_signup(link: LinkClaims, base: str | None, **shown: Any) -> Page:
        now = clock.now()
        details = await service.signup_details(
            uow, link.edition_id, link.signup_id, principal=Links.principal(link), now=now
        )
        return pages.signup(details, base, timezone=timezone_of(details.edition), seat_offer_url=seat_offer_url,
                            now=now, **shown)

    @api.get("/links/signup/{token}", response_class=HTMLResponse, dependencies=[link_policy()], responses=_PAGE_STATUSES)
    async def signup_page(token: LinkToken) -> HTMLResponse:
        """My sign-up: status, approval, choices; where and when once placed, the waiting list position,
        an open seat offer (links to matching's answer pages); the form to change the choices (until
        the deadline, while not placed) and the withdraw button."""
        return await link_page(token, SIGNUP_LINK, lambda link: my_signup(link, f"{quote(token, safe='')}/"))

    @api.post("/links/signup/{token}/withdraw", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_PAGE_STATUSES)
    async def withdraw_by_link(token: LinkToken, correlation_id: CorrelationId) -> HTMLResponse:
        """Withdraw the link's sign-up and say so; again: the same page, and nothing changes."""

        async def withdraw(link: LinkClaims) -> Page:
            details = await service.withdraw_signup(
                uow, link.edition_id, link.signup_id, principal=Links.principal(link), correlation_id=correlation_id,
                now=clock.now(),
            )
            return pages.signup(details)

        return await link_page(token, SIGNUP_LINK, withdraw)

    @api.post("/links/signup/{token}/choices", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_ACTION_STATUSES,
              openapi_extra=_form_body(**{f"choice_{n}": {"type": "string"} for n in range(1, MAX_CHOICES + 1)}))
    async def change_choices_by_link(token: LinkToken, request: Request, correlation_id: CorrelationId) -> HTMLResponse:
        """Change the choices (form fields `choice_1` … in order; empty ones are skipped): `SignupChanged`
        when they differ. After the deadline, once placed, or in a closed or cancelled edition: 409,
        the page says why; invalid choices: 422, the page with the form again."""
        form = await request.form()
        chosen = [str(form.get(f"choice_{n}") or "").strip() for n in range(1, MAX_CHOICES + 1)]
        choices = [c for c in chosen if c]

        async def change(link: LinkClaims) -> tuple[Page, int]:
            if not choices or not all(len(c) <= 64 and _ID.match(c) for c in choices):
                return await my_signup(link, "", refused="invalid_choices"), 422
            try:
                await service.change_choices(
                    uow, link.edition_id, link.signup_id, principal=Links.principal(link), choices=choices,
                    now=clock.now(), correlation_id=correlation_id,
                )
            except Conflict as refusal:
                return await my_signup(link, "", refused=refusal.code), 409
            except RuleViolation as refusal:
                return await my_signup(link, "", refused=refusal.code), 422
            return await my_signup(link, "", saved=True), 200

        return await link_page(token, SIGNUP_LINK, change)

    # --- the employer's approval (the link names the sign-up and the organisation) -------------------
    @api.get("/links/approval/{token}", response_class=HTMLResponse, dependencies=[link_policy()], responses=_PAGE_STATUSES)
    async def approval_page(token: LinkToken) -> HTMLResponse:
        """The sign-up to approve (participant, edition, choices, learning goal) with two answers:
        approve, refuse (with an optional reason); once answered it says how."""

        async def show(link: LinkClaims) -> Page:
            details = await service.approval_details(uow, link.edition_id, link.signup_id, link.ref or "")
            return pages.approval(details, f"{quote(token, safe='')}/")

        return await link_page(token, APPROVAL_LINK, show)

    async def answer(token: str, request: Request, correlation_id: Any, given: domain.Answer) -> HTMLResponse:
        form = await request.form() if given == "refuse" else {}
        reason = str(form.get("reason") or "").strip()

        async def act(link: LinkClaims) -> tuple[Page, int]:
            if len(reason) > MAX_REASON or re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", reason):
                details = await service.approval_details(uow, link.edition_id, link.signup_id, link.ref or "")
                return pages.approval(details, ""), 422
            try:
                outcome = await service.answer_approval(
                    uow, link.edition_id, link.signup_id, link.ref or "", answer=given, reason=reason,
                    correlation_id=correlation_id,
                )
            except Conflict:  # the edition is cancelled
                details = await service.approval_details(uow, link.edition_id, link.signup_id, link.ref or "")
                return pages.approval_answered(details, "cancelled"), 409
            details = outcome.details
            if outcome.result in ("answer", "again"):
                return pages.approval_answered(details, "approved" if given == "approve" else "refused"), 200
            if outcome.result == "ended":
                return pages.approval_answered(details, "ended"), 409
            return pages.approval_answered(details, f"already_{details.signup.approval}"), 409

        return await link_page(token, APPROVAL_LINK, act)

    @api.post("/links/approval/{token}/approve", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_ACTION_STATUSES)
    async def approve_by_link(token: LinkToken, request: Request, correlation_id: CorrelationId) -> HTMLResponse:
        """Approve the sign-up (`SignupApproved`); again: the same page, nothing changes; after a refusal:
        409, a page saying it was already answered."""
        return await answer(token, request, correlation_id, "approve")

    @api.post("/links/approval/{token}/refuse", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_ACTION_STATUSES, openapi_extra=_form_body(reason={"type": "string", "maxLength": MAX_REASON}))
    async def refuse_by_link(token: LinkToken, request: Request, correlation_id: CorrelationId) -> HTMLResponse:
        """Refuse the sign-up with an optional reason (`SignupRefused`: it ends); again: the same page;
        after an approval: 409, a page saying it was already answered."""
        return await answer(token, request, correlation_id, "refuse")

    # --- feedback on a visit (the link names the sign-up and the offer) -------------------------------
    @api.get("/links/feedback/{token}", response_class=HTMLResponse, dependencies=[link_policy()], responses=_PAGE_STATUSES)
    async def feedback_page(token: LinkToken) -> HTMLResponse:
        """The feedback form: a rating 1–5, what I learned, whether it may be shared publicly; once
        given, a page saying it was received."""

        async def show(link: LinkClaims) -> Page:
            details = await service.feedback_details(
                uow, link.edition_id, link.signup_id, link.ref or "", principal=Links.principal(link)
            )
            return pages.feedback(details, quote(token, safe=""))

        return await link_page(token, FEEDBACK_LINK, show)

    @api.post("/links/feedback/{token}", response_class=HTMLResponse, dependencies=[link_policy()],
              responses=_ACTION_STATUSES, openapi_extra=_form_body(
                  rating={"type": "string", "enum": ["1", "2", "3", "4", "5"]},
                  learned={"type": "string", "maxLength": MAX_LEARNED},
                  share_publicly={"type": "string"}))
    async def submit_feedback_by_link(token: LinkToken, request: Request, correlation_id: CorrelationId) -> HTMLResponse:
        """Give feedback (`FeedbackSubmitted`, once; the text is kept for the relay); again: a page saying
        it was already received. An incomplete form: 422, the form again."""
        form = await request.form()
        rating_text = str(form.get("rating") or "")
        learned = str(form.get("learned") or "").strip().replace("\r\n", "\n")
        share = bool(form.get("share_publicly"))

        async def give(link: LinkClaims) -> tuple[Page, int]:
            principal = Links.principal(link)
            offer_id = link.ref or ""
            valid_text = len(learned) <= MAX_LEARNED and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", learned)
            if rating_text not in ("1", "2", "3", "4", "5") or not valid_text:
                details = await service.feedback_details(uow, link.edition_id, link.signup_id, offer_id, principal=principal)
                return pages.feedback(details, "", problem=details.feedback is None), 422 if details.feedback is None else 200
            try:
                details, fresh = await service.submit_feedback(
                    uow, link.edition_id, link.signup_id, offer_id, principal=principal, rating=int(rating_text),
                    learned=learned, share_publicly=share, now=clock.now(), correlation_id=correlation_id,
                )
            except Conflict:  # the edition is cancelled
                details = await service.feedback_details(uow, link.edition_id, link.signup_id, offer_id, principal=principal)
                return pages.feedback(details), 409
            return pages.feedback(details, fresh=fresh), 200

        return await link_page(token, FEEDBACK_LINK, give)

    add_people_routes(api, uow, clock, approval_url)  # people, import, export, recommendations (issue 11)
    return api
