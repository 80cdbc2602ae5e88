"""The reporting HTTP API (OpenAPI at /docs): figures as JSON, and the dashboard page (HTML).

Each route is one call of the service; the response models below are the JSON shapes (field names as
published in the README: `edition`, `leg`, ...).

Policies: the JSON reports are `Figures` (admins and the national role see every region, an organiser
their own: another region's edition is a 404 like an unknown one); the dashboard is `Public` and shows
aggregate figures only."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette.sse import EventSourceResponse

from estafette.runtime.clock import Clock
from estafette.runtime.errors import NotFound
from pydantic import BaseModel, Field

from estafette.runtime.auth import Figures, Public
from estafette.runtime.http import create_http_api, errors
from estafette.runtime.inputs import PathId, QueryId
from estafette.runtime.i18n import negotiate
from estafette.runtime.regions import RegionBook
from estafette.runtime.uow import Uow
from services.reporting import feeds, service
from services.reporting.dashboard import Dashboard, format_date
from services.reporting.live import LiveDashboard
from services.reporting.domain import (
    DayFigures, EditionFigures, EditionReport, EditionStatus, Overview, RegionTotals, Totals,
)
from services.reporting.repository import Repository


class FeedbackOut(BaseModel):
    count: int
    average_rating: float | None = Field(description="2 decimals; null without feedback")
    shareable: int = Field(description="feedback whose participant agreed that what they learned may be shared publicly")

    @classmethod
    def of(cls, f: EditionFigures | Totals) -> FeedbackOut:
        return cls(count=f.feedback_count, average_rating=f.average_rating, shareable=f.feedback_shareable)


class ApprovalOut(BaseModel):
    """Active sign-ups by approval (`not_required` + `pending` + `approved` = `signups`), and the refused ones."""

    not_required: int = Field(description="active sign-ups in an edition that needs no approval")
    pending: int = Field(description="active sign-ups waiting for their employer's answer (not matched yet)")
    approved: int = Field(description="active sign-ups their employer approved")
    refused: int = Field(description="sign-ups their employer refused (ended; not in `signups`)")

    @classmethod
    def of(cls, f: EditionFigures | Totals) -> ApprovalOut:
        return cls(not_required=f.not_required, pending=f.pending_approval, approved=f.approved, refused=f.refused)


class TemplateEmailsOut(BaseModel):
    sent: int = Field(description="notifications of this template whose latest outcome is sent")
    failed: int = Field(description="notifications of this template whose latest outcome is failed")


class EditionReportOut(BaseModel):
    """One edition's figures: see the service README for each field."""

    edition: str = Field(description="the edition's id")
    region: str
    name: str | None
    status: EditionStatus = Field(description="unknown, open, closed or cancelled")
    cancellation_reason: str | None = Field(description="the organiser's reason, when cancelled")
    cancelled_at: dt.datetime | None = Field(description="when it was cancelled")
    starts_on: dt.date | None
    ends_on: dt.date | None
    offers: int = Field(description="offers not cancelled")
    seats: int = Field(description="the total capacity of those offers")
    offers_cancelled: int = Field(description="offers cancelled")
    signups: int = Field(description="sign-ups still active (neither withdrawn nor refused)")
    withdrawn: int = Field(description="sign-ups withdrawn")
    approval: ApprovalOut
    organisations: int = Field(description="distinct organisations with an active sign-up")
    assigned: int = Field(description="active sign-ups whose latest match outcome is an assignment")
    waitlisted: int = Field(description="active sign-ups on the waiting list (an ended seat offer counts here again)")
    unmatched: int = Field(description="active sign-ups that could not be placed")
    awaiting_rematch: int = Field(description="active sign-ups assigned (or offered a seat) on an offer cancelled since")
    seat_offers_open: int = Field(description="waiting-list participants holding an open seat offer")
    first_choice_share: float | None = Field(description="of `assigned`, the share with rank 1 (0..1, 3 decimals)")
    emails_sent: int = Field(description="notifications whose latest outcome is sent")
    emails_failed: int = Field(description="notifications whose latest outcome is failed")
    emails_by_template: dict[str, TemplateEmailsOut] = Field(
        description="per template (the kind of e-mail, e.g. `reminder`): sent and failed")
    feedback: FeedbackOut
    by_day: list[DayFigures] = Field(description="per date: sign-ups made that day (in REPORTING_TIMEZONE); "
                                                 "offers, seats and assigned for visits on that day")

    @classmethod
    def of(cls, report: EditionReport) -> EditionReportOut:
        f = report.figures
        return cls.model_validate({
            **asdict(f),
            "edition": f.edition_id,
            "first_choice_share": f.first_choice_share,
            "approval": ApprovalOut.of(f),
            "emails_by_template": {t.template: {"sent": t.sent, "failed": t.failed} for t in report.emails},
            "feedback": FeedbackOut.of(f),
            "by_day": report.days,
        })


class RelayLegOut(BaseModel):
    leg: str = Field(description="the relay leg's id")
    region: str
    edition: str
    starts_on: dt.date | None
    handed_over_to: str | None
    handed_over_at: dt.datetime | None


class _TotalsOut(BaseModel):
    editions: int
    offers: int
    signups: int
    withdrawn: int
    assigned: int
    emails_sent: int
    approval: ApprovalOut
    feedback: FeedbackOut

    @staticmethod
    def fields(t: Totals) -> dict[str, object]:
        """The JSON fields of a region's or the nation's totals (without `region` / `regions`)."""
        counts = ("editions", "offers", "signups", "withdrawn", "assigned", "emails_sent")
        return {name: getattr(t, name) for name in counts} | {"approval": ApprovalOut.of(t), "feedback": FeedbackOut.of(t)}


class _RegionOut(BaseModel):
    region: str


class RegionTotalsOut(_TotalsOut, _RegionOut):  # `region` first
    @classmethod
    def of(cls, t: RegionTotals) -> RegionTotalsOut:
        return cls.model_validate({"region": t.region, **cls.fields(t)})


class _RegionsCountOut(BaseModel):
    regions: int = Field(description="the number of region rows summed")


class NationalTotalsOut(_TotalsOut, _RegionsCountOut):  # `regions` first
    pass


class RegionsReportOut(BaseModel):
    regions: list[RegionTotalsOut] = Field(description="per region (by name): editions and the sums of their figures")
    national: NationalTotalsOut = Field(description="the regions summed, plus the number of regions")
    relay: list[RelayLegOut]

    @classmethod
    def of(cls, overview: Overview) -> RegionsReportOut:
        national = overview.national
        return cls.model_validate({
            "regions": [RegionTotalsOut.of(r) for r in overview.regions],
            "national": {"regions": national.regions, **_TotalsOut.fields(national)},
            "relay": [{**asdict(leg), "leg": leg.leg_id, "edition": leg.edition_id} for leg in overview.relay_legs],
        })


_DASHBOARD_DESCRIPTION = """A public HTML page (no JavaScript, no external assets) in Dutch, German or English,
with aggregate figures only (counts and shares; no sign-up, no name): the national totals and a table
of editions per region, or one edition with its days (`edition`: its id; 404 if unknown).
The language is `lang`, else the best match of `Accept-Language`, else Dutch (the `Content-Language`
header says which); numbers and dates are formatted for it."""


def build_api(
    uow: Uow[Repository], timezone: str, registry: RegionBook | None = None, *, threshold: int = 5,
    clock: Clock | None = None, live: LiveDashboard | None = None,
) -> FastAPI:
    """`registry`: the region registry (the runtime's RegionBook), whose regions without editions yet
    get a row of zeros in /reports/regions (as far as it has been read). `threshold`: counts below it are
    never public; `clock`: the platform clock (the relay's "today"); `live`: the dashboard's live updates."""
    api = create_http_api("Estafette reporting", "Figures per region and edition, as JSON and as a dashboard page.")
    pages = Dashboard()
    clock = clock or Clock.from_settings(None)

    @api.get("/reports/editions/{edition_id}", responses=errors(401, 404))
    async def edition_report(principal: Figures, edition_id: PathId) -> EditionReportOut:
        """One edition's figures and its figures per day; 404 `unknown_edition` when no event named it or
        it is of a region the caller does not see (an organiser sees their own region's editions)."""
        return EditionReportOut.of(await service.edition_report(uow, principal, edition_id, timezone))

    @api.get("/reports/regions", responses=errors(401))
    async def regions_report(principal: Figures) -> RegionsReportOut:
        """Per region: editions, offers, sign-ups, assigned, e-mails sent (a region of the registry without
        editions yet: zeros); the national sums; the relay legs. An organiser gets their own region's row
        and relay legs only, and national sums of that row."""
        registered = list(registry.regions) if registry is not None else []
        return RegionsReportOut.of(await service.overview(uow, principal, registered))

    @api.get(
        "/dashboard",
        response_class=HTMLResponse,
        summary="Dashboard page",
        description=_DASHBOARD_DESCRIPTION,
        responses={200: {"description": "The page, in the negotiated language.", "content": {"text/html": {}}},
                   **errors(401, 404)},
    )
    async def dashboard_page(
        _: Public,
        lang: Annotated[str | None, Query(description="nl, de or en; else Accept-Language, else nl")] = None,
        edition: QueryId = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:
        language = negotiate(lang, accept_language)
        public, overview, report = await service.public_dashboard(uow, timezone, threshold, edition)
        if report is None:
            page = pages.overview(language, overview, public)
        else:
            page = pages.edition(language, report, public)
        return HTMLResponse(page, headers={"Content-Language": language, "Vary": "Accept-Language"})

    # --- the relay and the dashboard feed (issue 10) ---
    @api.get("/dashboard/live.js", response_class=Response, include_in_schema=False)
    async def live_script(_: Public) -> Response:
        return Response(LIVE_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})

    @api.get("/dashboard/events", response_class=Response, summary="Dashboard changes (server-sent events)",
             responses={200: {"description": "text/event-stream: an event `changed` (data: the feed's generation) "
                                             "when any public figure changed", "content": {"text/event-stream": {}}}})
    async def dashboard_events(_: Public) -> EventSourceResponse:
        if live is None:
            raise NotFound("no_live_updates", "live updates are not running", None)

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for generation in live.changes():
                yield {"event": "changed", "data": str(generation)}

        return EventSourceResponse(stream(), ping=15)

    @api.get("/feeds/dashboard", summary="Dashboard feed (JSON, ETag)",
             responses={200: {"description": "The privacy-safe aggregates; `ETag`, and 304 for a matching "
                                             "`If-None-Match`."}, 304: {"description": "Not modified."}})
    async def dashboard_feed(_: Public, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        """Public (like the dashboard): the published totals per nation, region and edition and the records
        per (region, edition, day) of the DASHBOARD topic; counts below the threshold are null and named in
        `suppressed`, and no suppressed count can be worked out from the totals."""
        public, _overview, _report = await service.public_dashboard(uow, timezone, threshold)
        body = feeds.encode(feeds.dashboard_body(public))
        tag = feeds.etag(body)
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        if if_none_match and tag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def _relay_context(lang: str | None, accept_language: str | None) -> tuple[str, Callable[[str], str], Callable[[dt.date], str]]:
        language = negotiate(lang, accept_language)
        return language, lambda text: pages.catalogs.gettext(language, text), lambda d: format_date(d, language)

    @api.get("/relay", response_class=HTMLResponse, summary="The relay (public page)",
             responses={200: {"description": "The page, in the negotiated language.", "content": {"text/html": {}}}})
    async def relay_page(
        _: Public, lang: Annotated[str | None, Query(description="nl, de or en; else Accept-Language, else nl")] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:
        """Who holds the baton today (the platform clock), the route, each day's activity and figures
        (suppressed below the threshold) and the approved knowledge items per leg."""
        language = negotiate(lang, accept_language)
        view = await service.relay(uow, clock.now(), timezone, threshold)
        return HTMLResponse(pages.relay(language, view), headers={"Content-Language": language, "Vary": "Accept-Language"})

    @api.get("/relay/feed.json", response_class=Response, summary="The relay's days (JSON Feed 1.1)",
             responses={200: {"content": {"application/feed+json": {}}, "description": "JSON Feed 1.1"}})
    async def relay_json_feed(
        request: Request, _: Public, lang: Annotated[str | None, Query()] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        language, gettext, format_day = _relay_context(lang, accept_language)
        view = await service.relay(uow, clock.now(), timezone, threshold)
        body = feeds.json_feed(view, str(request.base_url), language, gettext, format_day)
        return Response(feeds.encode(body), media_type="application/feed+json",
                        headers={"Content-Language": language, "Vary": "Accept-Language"})

    @api.get("/relay/feed.atom", response_class=Response, summary="The relay's days (Atom)",
             responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"}})
    async def relay_atom_feed(
        request: Request, _: Public, lang: Annotated[str | None, Query()] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        language, gettext, format_day = _relay_context(lang, accept_language)
        view = await service.relay(uow, clock.now(), timezone, threshold)
        body = feeds.atom_feed(view, str(request.base_url), language, gettext, format_day)
        return Response(body, media_type="application/atom+xml",
                        headers={"Content-Language": language, "Vary": "Accept-Language"})

    return api


#: The dashboard's live updates: on each `changed` server-sent event, the page's <main> is fetched again
#: and replaced (no reload; the page works without it). Served from this service, no CDN.
LIVE_SCRIPT = """(function () {
  if (!window.EventSource || !window.fetch) return;
  var first = true;
  var source = new EventSource("dashboard/events");
  source.addEventListener("changed", function () {
    if (first) { first = false; return; }
    fetch(window.location.href, {headers: {"Accept": "text/html"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (next && main) { main.innerHTML = next.innerHTML; document.documentElement.dataset.updated = String(Date.now()); }
      });
  });
})();
"""

