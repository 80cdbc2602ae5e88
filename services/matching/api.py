"""The matching HTTP API (OpenAPI at /docs): start a run, follow its progress, see the results, and
answer seat offers. Each route is one typed call of the service; the models below are the answers.

Access: every organisers' route has the `Organiser` policy (an organiser of the edition's region or an
admin; the national role gets 403; another region's edition is a 404, as if unknown). A participant
answers their seat offer through the links in their e-mail: `/links/seat-offers/{token}/accept|decline`
(policy `link`): the GET shows a page with one button, only the POST acts. The token is never logged
(the request log names the route template, not the path)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from estafette.runtime.access import Principal
from estafette.runtime.auth import LinkExpired, LinkInvalid, Links, Organiser, link_policy
from estafette.runtime.clock import Now
from estafette.runtime.errors import NotFound
from estafette.runtime.http import CorrelationId, create_http_api, errors
from estafette.runtime.inputs import Id, Line, PathId, QueryId
from estafette.runtime.pages import page_response
from estafette.runtime.uow import Uow
from services.matching import link_pages, service
from services.matching.domain import Answer, MatchRun
from services.matching.link_pages import LinkPages

if TYPE_CHECKING:
    from services.matching.repository import Repository


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EditionOut(Out):
    id: str
    region: str
    status: Literal["open", "closed", "cancelled"] = Field(
        description="closed or cancelled: never matched again (a run is refused with 409).")
    rematch_pending: bool = Field(description="Changed after publication; the re-matcher will run it shortly.")
    offers: int = Field(description="Published offers received.")
    seats: int = Field(description="Seats on the published offers (sum of their capacities).")
    participants: int = Field(description="Active participants received that a run takes in (approved or not needing approval).")
    assignments: int
    seat_offers_open: int
    awaiting_approval: int = Field(description="Active sign-ups waiting for their employer's approval: not matched yet.")
    match_at_deadline: bool = Field(description="A run starts by itself at the sign-up deadline.")


class MatchRunOut(Out):
    id: uuid.UUID
    edition_id: str
    kind: Literal["full", "incremental"]
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued: requested on an instance that does not serve the edition's region; an instance"
                    " that serves it starts it (then running, done or failed).")
    stage: str = Field(description="queued, loading, prepare, build, solve, explain, done or failed.")
    progress: float = Field(ge=0, le=1)
    started_at: datetime = Field(description="When it was requested; when a queued run starts, that moment.")
    finished_at: datetime | None
    error: str | None = Field(description="Why a failed run failed.")
    attempt: int = Field(0, description="Executions started: 0 while queued; more than 1 when an instance resumed"
                                        " the run after the one executing it stopped.")
    # The figures of a finished run (null until then):
    input_hash: str | None = Field(None, description="Fingerprint of the run's input.")
    participants: int | None = None
    offers: int | None = None
    assigned: int | None = Field(None, description="Placements in the result, frozen ones included.")
    newly_assigned: int | None = None
    newly_offered: int | None = Field(None, description="Seats offered to people on the waiting list.")
    waitlisted: int | None = None
    unmatched: int | None = None
    rank_cost: int | None = Field(None, description="Sum of rank² over all placements.")
    duration_ms: int | None = None

    @classmethod
    def of(cls, run: MatchRun) -> MatchRunOut:
        fields = {name: getattr(run, name) for name in ("id", "edition_id", "kind", "status", "stage", "progress",
                                                       "started_at", "finished_at", "error", "attempt")}
        return cls(**fields, **(vars(run.figures) if run.figures else {}))


class AssignmentOut(Out):
    signup_id: str
    offer_id: str
    rank: int
    run_id: uuid.UUID
    assigned_at: datetime


class WaitingOut(Out):
    signup_id: str
    state: Literal["offered", "waitlisted", "unmatched"]
    reason_code: str | None = Field(description="One of schemas/reasons.py, e.g. all_full.")
    position: int | None = Field(description="Place on the waiting list, from 1.")


class AssignmentsOut(Out):
    assignments: list[AssignmentOut]
    waiting_list: list[WaitingOut] = Field(description="Everyone not assigned: the waiting list in order, then the others.")


SeatOfferState = Literal["open", "accepted", "declined", "expired", "withdrawn", "cancelled"]


class SeatOfferOut(Out):
    signup_id: str
    offer_id: str
    rank: int
    run_id: uuid.UUID
    offered_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    state: SeatOfferState


class SeatOfferCounts(Out):
    open: int
    accepted: int
    declined: int
    expired: int
    withdrawn: int
    cancelled: int


class SeatOffersOut(Out):
    counts: SeatOfferCounts
    seat_offers: list[SeatOfferOut]


# --- overrides, preview and explanations (issue 11) -----------------------------------------------
class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signup_id: Id = Field(description="A sign-up of the edition that runs take in (active; approved or not needing approval).")
    offer_id: Id = Field(description="A published offer of the edition; for `pin`, one the participant chose.")
    kind: Literal["pin", "forbid"] = Field(description="pin: always place the pair; forbid: never place it.")
    reason: Line(500) = Field(description="Why (kept with the override, for the audit).")


class OverrideOut(Out):
    id: uuid.UUID
    edition_id: str
    signup_id: str
    offer_id: str
    kind: Literal["pin", "forbid"]
    reason: str
    created_by: str = Field(description="Who made it: the caller's key id or token subject.")
    created_at: datetime = Field(description="When, on the platform clock.")
    removed_by: str | None = None
    removed_at: datetime | None = Field(None, description="Set once removed: it no longer applies.")


class PlacementOut(Out):
    signup_id: str
    offer_id: str
    rank: int
    state: Literal["assigned", "offered"] = Field(description="offered: a seat offer, for someone told they wait.")


class OutcomeOut(Out):
    signup_id: str
    state: Literal["waitlisted", "unmatched"]
    reason_code: str | None = Field(description="One of schemas/reasons.py.")
    position: int | None = Field(description="Place on the waiting list, from 1.")


class MovedOut(Out):
    signup_id: str
    offers_before: list[str]
    offers_after: list[str]


class PreviewDiffOut(Out):
    newly_placed: list[PlacementOut] = Field(description="Held no seat; would be assigned or offered one.")
    moved: list[MovedOut] = Field(description="Hold seats now; would hold a different set (another visit, a pin).")
    newly_waitlisted: list[OutcomeOut] = Field(description="Would be told they wait (were not waiting before).")
    newly_unmatched: list[OutcomeOut] = Field(description="Would be told they cannot be placed (or for another reason).")
    unchanged: int = Field(description="Participants whose outcome would stay as published.")


class PreviewOut(Out):
    edition_id: str
    participants: int
    assigned: int = Field(description="Placements in the result, published ones included.")
    rank_cost: int
    overrides: int = Field(description="Live overrides taken in.")
    assignments: list[PlacementOut]
    waiting_list: list[OutcomeOut]
    diff: PreviewDiffOut


class ChoiceReasonOut(Out):
    offer_id: str
    rank: int
    reason: Literal["forbidden", "own_org", "unavailable", "full", "org_cap"]


class ExplanationOut(Out):
    signup_id: str
    code: str = Field(description="placed, or the unmatched reason code (schemas/reasons.py).")
    text: str = Field(description="The engine's short English sentence; translate from `code`.")
    ranks: list[int] = Field(description="Ranks of the placements (placed).")
    choices: list[ChoiceReasonOut] = Field(description="Why each unused choice was not used (not placed).")


#: A participant link's token, as the e-mail carries it (any other text is a "not valid" page).
LinkToken = Annotated[str, Path(min_length=1, max_length=512, description="The signed token from the e-mail's link.")]


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


LINK_PAGES: dict[int | str, dict[str, Any]] = {
    200: _html("The page, in the participant's language (nl, de, en)."),
    404: _html("A page saying the link is not valid (altered, incomplete, or for another answer), or that no "
               "place was offered to this sign-up."),
    409: _html("A page saying what became of the seat offer: it is not open any more (expired, declined, "
               "accepted, withdrawn or cancelled). Nothing changed."),
    410: _html("A page saying the link has expired. Nothing changed."),
}


def build_api(
    uow: Uow[Repository], runner: service.Runner, links: Links, pages: LinkPages, link_max_age_seconds: float,
    *, clock: Now,
) -> FastAPI:
    """`clock`: the platform clock (`rt.clock`): seat offers are answered and shown as of its now."""
    api = create_http_api(
        "Estafette matching",
        "Optimal matching of participants to offers: runs, their progress and figures, assignments, the waiting"
        " list, and seat offers to people on the waiting list. Organisers' routes need an API key or token"
        " (`Authorization: Bearer ...`) of an organiser of the edition's region or an admin; participants"
        " answer a seat offer through the signed links in their e-mail.",
    )

    @api.get("/editions/{edition_id}", responses=errors(401, 403, 404))
    async def edition(principal: Organiser, edition_id: PathId) -> EditionOut:
        """Offers, seats and participants received so far, and whether a re-match is pending."""
        return EditionOut.model_validate(await service.edition(uow, principal, edition_id))

    @api.post("/editions/{edition_id}/match-runs", status_code=202, responses=errors(401, 403, 404, 409))
    async def start_run(principal: Organiser, edition_id: PathId, correlation_id: CorrelationId) -> MatchRunOut:
        """Start a match run. Published assignments are kept; only free seats are distributed.
        The answer is the run as recorded: `running` when this instance serves the edition's region,
        else `queued`: an instance that serves the region starts it (follow it at /match-runs/{id}).
        409 `run_in_progress` when a run of the edition is already queued or running; 409
        `edition_closed` / `edition_cancelled`: a closed or cancelled edition is never matched again."""
        return MatchRunOut.of(await runner.start(principal, edition_id, correlation_id))

    @api.get("/editions/{edition_id}/match-runs", responses=errors(401, 403, 404))
    async def list_runs(principal: Organiser, edition_id: PathId) -> list[MatchRunOut]:
        """The edition's runs, newest first."""
        return [MatchRunOut.of(r) for r in await service.runs(uow, principal, edition_id)]

    @api.get("/match-runs/{run_id}", responses=errors(401, 403, 404))
    async def get_run(principal: Organiser, run_id: uuid.UUID) -> MatchRunOut:
        """A run's stage and progress while it runs, then its figures (or its error). 404 also for a
        run of another region's edition."""
        return MatchRunOut.of(await service.run(uow, principal, run_id))

    @api.get("/editions/{edition_id}/assignments", responses=errors(401, 403, 404))
    async def assignments(principal: Organiser, edition_id: PathId) -> AssignmentsOut:
        """The active assignments and the waiting list."""
        return AssignmentsOut.model_validate(await service.assignments(uow, principal, edition_id))

    @api.get("/editions/{edition_id}/seat-offers", responses=errors(401, 403, 404))
    async def seat_offers(principal: Organiser, edition_id: PathId) -> SeatOffersOut:
        """Seats offered to people on the waiting list and what became of each: open, accepted,
        declined, expired, withdrawn (the participant withdrew) or cancelled (the host cancelled the offer,
        or the organisers the whole edition)."""
        return SeatOffersOut.model_validate(await service.seat_offers(uow, principal, edition_id, clock.now()))

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/accept", responses=errors(401, 403, 404, 409))
    async def accept_seat_offer(
        principal: Organiser, edition_id: PathId, signup_id: PathId, correlation_id: CorrelationId
    ) -> SeatOfferOut:
        """Take the seat on the participant's behalf: it becomes an assignment (MatchAssigned). 409
        when the seat offer is not open (seat_offer_expired, _declined, _accepted, _withdrawn,
        _cancelled); 404 when the sign-up never had one."""
        answered = await service.accept_seat_offer(uow, principal, edition_id, signup_id, correlation_id, clock.now())
        return SeatOfferOut.model_validate(answered)

    @api.post("/editions/{edition_id}/seat-offers/{signup_id}/decline", responses=errors(401, 403, 404, 409))
    async def decline_seat_offer(
        principal: Organiser, edition_id: PathId, signup_id: PathId, correlation_id: CorrelationId
    ) -> SeatOfferOut:
        """Let the seat go to the next person on the waiting list, on the participant's behalf; they keep
        waiting for their other choices. 409 when the seat offer is not open; 404 when there was none."""
        answered = await service.decline_seat_offer(uow, principal, edition_id, signup_id, correlation_id, clock.now())
        return SeatOfferOut.model_validate(answered)

    # --- overrides, preview and explanations (issue 11) ---------------------------------------
    @api.post("/editions/{edition_id}/overrides", status_code=201, responses=errors(401, 403, 404, 409, 422))
    async def add_override(principal: Organiser, edition_id: PathId, body: OverrideIn) -> OverrideOut:
        """Pin (always place) or forbid (never place) a participant–offer pair in every later run,
        audited: who (`created_by`), when (`created_at`, platform clock) and why (`reason`). Published
        assignments are never moved by it; once published, the edition is re-matched with it. 422
        `unknown_signup` / `unknown_offer` (not the edition's), `not_chosen` (a pin needs a chosen offer);
        409 `override_exists` (the pair has a live override: remove it first)."""
        made = await service.add_override(
            uow, principal, edition_id, body.signup_id, body.offer_id, body.kind, body.reason, clock.now()
        )
        return OverrideOut.model_validate(made)

    @api.get("/editions/{edition_id}/overrides", responses=errors(401, 403, 404))
    async def list_overrides(principal: Organiser, edition_id: PathId, include_removed: bool = False) -> list[OverrideOut]:
        """The edition's live overrides, oldest first (with `include_removed`: the removed ones too)."""
        found = await service.overrides(uow, principal, edition_id, include_removed)
        return [OverrideOut.model_validate(o) for o in found]

    @api.delete("/editions/{edition_id}/overrides/{override_id}", responses=errors(401, 403, 404))
    async def remove_override(principal: Organiser, edition_id: PathId, override_id: uuid.UUID) -> OverrideOut:
        """Stop applying an override; it stays listed (`include_removed`) with who removed it and when.
        Again: the same answer. 404 `unknown_override`."""
        return OverrideOut.model_validate(await service.remove_override(uow, principal, edition_id, override_id, clock.now()))

    @api.post("/editions/{edition_id}/match-preview", responses=errors(401, 403, 404, 409))
    async def match_preview(principal: Organiser, edition_id: PathId) -> PreviewOut:
        """A dry run: the result a run would give now (live overrides included) and the difference from
        what is published: who would be newly placed, moved, waitlisted or unmatched. Writes, publishes
        and sends nothing. 409 `edition_closed` / `edition_cancelled`; 409 `override_infeasible` when a
        pin cannot be placed (the message says why)."""
        return PreviewOut.model_validate(await runner.preview(principal, edition_id))

    @api.get("/match-runs/{run_id}/explanations", responses=errors(401, 403, 404))
    async def run_explanations(principal: Organiser, run_id: uuid.UUID, signup_id: QueryId = None) -> list[ExplanationOut]:
        """The engine's explanation of each participant the finished run took in (`signup_id`: of one):
        `placed` with the ranks, or the unmatched reason code with each unused choice's reason. Empty
        while the run is not done. 404 `unknown_run` (also another region's)."""
        return [ExplanationOut.model_validate(e) for e in await service.explanations(uow, principal, run_id, signup_id)]

    async def link_page(
        request: Request, token: str, answer: Answer, use_case: Callable[[Principal], Awaitable[service.SeatOfferLink]]
    ) -> HTMLResponse:
        """Read the link (expired: 410, not valid: 404), then one call of the service as its participant."""
        language = pages.language(request.headers.get("accept-language"))
        try:
            claims = links.read(token, f"seat_offer_{answer}", max_age_seconds=link_max_age_seconds)
        except LinkExpired:
            return page_response(pages.message(language, link_pages.LINK_EXPIRED), 410)
        except LinkInvalid:
            return page_response(pages.message(language, link_pages.LINK_INVALID), 404)
        try:
            found = await use_case(Links.principal(claims))
        except NotFound:
            return page_response(pages.message(language, link_pages.NO_SEAT_OFFER), 404)
        return page_response(*pages.seat_offer(found, answer))

    def link_routes(answer: Answer) -> None:
        path = f"/links/seat-offers/{{token}}/{answer}"
        common: dict[str, Any] = {"response_class": HTMLResponse, "dependencies": [link_policy()], "responses": LINK_PAGES}

        @api.get(path, **common, operation_id=f"show_seat_offer_{answer}_link", summary=f"Show the page to {answer} a seat offer",
                 description=f"The participant's page to {answer} their seat offer: the offer, its date, until when"
                             " it is held, and one button. Changes nothing (a mail scanner may open it).")
        async def show(request: Request, token: LinkToken) -> HTMLResponse:
            return await link_page(request, token, answer, lambda p: service.seat_offer_link(uow, p, answer, clock.now()))

        @api.post(path, **common, operation_id=f"{answer}_seat_offer_by_link", summary=f"{answer.capitalize()} a seat offer (the page's button)",
                  description=f"The page's button: {answer} the seat offer. Pressed again: the same answer, nothing"
                              " changes; a seat offer that is not open any more: 409, a page saying what happened.")
        async def act(request: Request, token: LinkToken, correlation_id: CorrelationId) -> HTMLResponse:
            return await link_page(
                request, token, answer, lambda p: service.answer_by_link(uow, p, answer, correlation_id, clock.now())
            )

    link_routes("accept")
    link_routes("decline")
    return api
