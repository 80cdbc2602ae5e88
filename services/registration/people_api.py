"""The organisers' tools over HTTP (issue 11): people (list and search, one sign-up with its history,
edits on someone's behalf, signing someone up — late only with an audited override), visitor lists,
bulk imports of offers and sign-ups (CSV or XLSX), streamed exports, and public recommendations from a
learning goal. `api.py` adds these routes (`add_people_routes`); each route makes ONE call of `service`."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from estafette.runtime.auth import Organiser, Public
from estafette.runtime.clock import Now
from estafette.runtime.errors import RuleViolation
from estafette.runtime.http import CorrelationId, ErrorOut, errors
from estafette.runtime.i18n import LANGUAGES, load_translations, negotiate
from estafette.runtime.inputs import Line, Paragraphs, PathId, QueryId
from estafette.runtime.uow import Uow
from schemas.events import Id, Language
from services.registration import domain, exports, imports, people, service
from services.registration.pages import LOCALE
from services.registration.repository import Repository

ApprovalUrl = service.ApprovalUrl


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlacementOut(BaseModel):
    """What matching last told the participant."""

    model_config = ConfigDict(from_attributes=True)
    outcome: domain.Outcome
    offer_id: str | None
    rank: int | None
    position: int | None
    reason_code: str | None
    seat_offer_id: str | None
    seat_offer_expires_at: dt.datetime | None
    updated_at: dt.datetime


class PersonOut(BaseModel):
    """A sign-up as organisers see it (with the participant's personal data: their region only)."""

    signup_id: str
    edition: str
    org: str
    name: str
    email: str
    language: str
    status: domain.SignupStatus
    approval: domain.ApprovalState
    choices: list[str]
    available: list[dt.date] | None
    max_visits: int
    learning_goal: str
    signed_up_at: dt.datetime
    consented_at: dt.datetime | None
    erased_at: dt.datetime | None
    placement: PlacementOut | None = None

    @classmethod
    def of(cls, signup: domain.Signup, placement: domain.Placement | None = None) -> PersonOut:
        s = signup
        return cls(
            signup_id=s.id, edition=s.edition_id, org=s.org, name=s.name, email=s.email, language=s.language,
            status=s.status, approval=s.approval, choices=s.choices, available=s.available, max_visits=s.max_visits,
            learning_goal=s.learning_goal, signed_up_at=s.signed_up_at, consented_at=s.consented_at,
            erased_at=s.erased_at, placement=PlacementOut.model_validate(placement) if placement else None,
        )


class PeoplePageOut(BaseModel):
    people: list[PersonOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: the last page.")


class HistoryOut(BaseModel):
    kind: str = Field(description="The event (SignupSubmitted, SignupChanged, SignupApproved, SignupRefused, "
                                  "SignupWithdrawn) or an organiser's audited act (LateAdmission, ChangedOnBehalf).")
    at: dt.datetime
    actor: str | None = Field(description="Who (an organiser's key or token subject), for audited acts.")
    reason: str
    details: dict[str, Any]


class PersonDetailsOut(PersonOut):
    history: list[HistoryOut] = Field(description="Oldest first.")
    changeable: bool = Field(description="Whether the choices can still change (organisers: also after the deadline).")


class PersonPatch(_Strict):
    """An edit on the participant's behalf: only the fields sent change."""

    choices: list[Id] | None = Field(default=None, min_length=1, max_length=10)
    available: list[dt.date] | None = Field(default=None, min_length=1, max_length=366)
    max_visits: int | None = Field(default=None, ge=1, le=5)
    learning_goal: Paragraphs(1000) | None = None


class AdmitIn(_Strict):
    org: Id
    name: Line(200)
    email: EmailStr
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1, max_length=10)
    available: list[dt.date] | None = Field(default=None, min_length=1, max_length=366)
    max_visits: int = Field(default=1, ge=1, le=5)
    learning_goal: Paragraphs(1000) = ""
    consent: bool = Field(default=False, description="The participant's agreement to the processing of their data: must be true.")
    override_deadline: bool = Field(default=False, description="Admit after the sign-up deadline (needs `reason`; audited).")
    reason: Paragraphs(500) = Field(default="", description="Why the sign-up is admitted late (kept in its history).")


class VisitorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    signup_id: str
    name: str
    org: str
    learning_goal: str
    language: str


class VisitorListOut(BaseModel):
    offer_id: str
    title: str
    date: dt.date
    visitors: list[VisitorOut]


class RowOutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    row: int = Field(description="The spreadsheet row (the header is row 1).")
    id: str
    action: Literal["created", "unchanged"]


class RowErrorOut(BaseModel):
    row: int = Field(description="The spreadsheet row (the header is row 1).")
    column: str | None
    code: str
    message: str = Field(description="In the organiser's language (`lang`, else Accept-Language).")


class ImportOut(BaseModel):
    kind: Literal["offers", "signups"]
    dry_run: bool
    committed: bool = Field(description="True: stored and announced (all rows, in one transaction).")
    created: int
    unchanged: int
    rows: list[RowOutcomeOut]
    errors: list[RowErrorOut] = Field(description="Every row error; any refuses the whole file (422).")


class RecommendationOut(BaseModel):
    offer_id: str
    title: str
    host_org: str
    date: dt.date
    part_of_day: str
    themes: list[str]
    room: int = Field(description="Places left.")
    score: float
    reason: str = Field(description='Why, e.g. "theme: digitalisation; words: planning, rooster".')
    matched_themes: list[str]
    matched_words: list[str] = Field(description="The learning goal's words (as written) found in the offer.")


def _encode_cursor(cursor: people.Cursor | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(json.dumps([cursor[0].isoformat(), cursor[1]]).encode()).decode().rstrip("=")


def _decode_cursor(text: str | None) -> people.Cursor | None:
    if not text:
        return None
    try:
        at, signup_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(signup_id, str):
            raise ValueError
        return moment, signup_id
    except (ValueError, TypeError):
        raise RuleViolation("invalid_cursor", "the cursor is not one this list gave", "cursor") from None


Format = Literal["csv", "json"]


def add_people_routes(router: FastAPI, uow: Uow[Repository], clock: Now, approval_url: ApprovalUrl) -> None:
    """Add the organisers' tools' routes to the service's API (`router`: the app itself, so that its route
    class and the OpenAPI's policies apply)."""
    translations = load_translations(LOCALE)

    @router.get("/editions/{edition_id}/people", responses=errors(401, 403, 404))
    async def list_people(
        edition_id: PathId, principal: Organiser,
        status: Annotated[domain.SignupStatus | None, Query(description="submitted, withdrawn or refused")] = None,
        org: QueryId = None,
        offer: Annotated[QueryId, Query(description="Chose this offer, or is placed there.")] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=200, description="Text in the name or e-mail address.")] = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
        limit: Annotated[int, Query(ge=1, le=people.MAX_PAGE)] = 50,
    ) -> PeoplePageOut:
        """The edition's sign-ups by sign-up time (organiser of its region, admin), filtered, a page at a
        time: pass `next_cursor` as `cursor`. 422 `invalid_cursor`."""
        page = await service.people_list(
            uow, edition_id, principal=principal, where=people.PeopleFilter(status, org, offer, q),
            after=_decode_cursor(cursor), limit=limit,
        )
        return PeoplePageOut(people=[PersonOut.of(p.signup, p.placement) for p in page.people],
                             next_cursor=_encode_cursor(page.next))

    def details_out(found: people.PersonDetails) -> PersonDetailsOut:
        d = found.details
        base = PersonOut.of(d.signup, d.placement).model_dump()
        history = [HistoryOut(kind=h.kind, at=h.at, actor=h.actor, reason=h.reason, details=dict(h.details))
                   for h in found.history]
        return PersonDetailsOut(**base, history=history, changeable=d.change_refused is None)

    @router.get("/editions/{edition_id}/people/{signup_id}", responses=errors(401, 403, 404))
    async def get_person(edition_id: PathId, signup_id: PathId, principal: Organiser) -> PersonDetailsOut:
        """One sign-up with its placement and history (its events with their times, and organisers'
        audited acts: late admission, edits on the participant's behalf)."""
        return details_out(await service.person(uow, edition_id, signup_id, principal=principal, now=clock.now()))

    @router.patch("/editions/{edition_id}/people/{signup_id}", responses=errors(401, 403, 404, 409))
    async def edit_person(
        edition_id: PathId, signup_id: PathId, body: PersonPatch, principal: Organiser, correlation_id: CorrelationId
    ) -> PersonDetailsOut:
        """Edit a sign-up on the participant's behalf: `choices`, `available`, `max_visits` (the
        participant's rules, but also after the deadline: `SignupChanged`) and `learning_goal`
        (`ParticipantRegistered` again). Audited in the history. 409 `edition_closed`,
        `edition_cancelled`, `signup_ended`, `already_placed`, `personal_data_erased`; 422 as a sign-up's
        choices."""
        fields = {name: getattr(body, name) for name in body.model_fields_set}
        await service.edit_signup(
            uow, edition_id, signup_id, principal=principal, now=clock.now(), correlation_id=correlation_id, **fields,
        )
        # read again: the history's event rows are written when the edit's transaction writes its outbox
        return details_out(await service.person(uow, edition_id, signup_id, principal=principal, now=clock.now()))

    @router.post("/editions/{edition_id}/people", status_code=201, responses=errors(401, 403, 404, 409))
    async def admit_person(edition_id: PathId, body: AdmitIn, principal: Organiser, correlation_id: CorrelationId) -> PersonOut:
        """Sign someone up on their behalf (events as a sign-up). After the deadline only with
        `override_deadline: true` and a `reason`: a late admission, audited in the sign-up's history
        (who, when, why). 409 `deadline_passed` without the override; 422 `reason_required`."""
        signup = await service.admit_signup(
            uow, edition_id, principal=principal, **body.model_dump(), correlation_id=correlation_id,
            now=clock.now(), approval_url=approval_url,
        )
        return PersonOut.of(signup)

    @router.get("/editions/{edition_id}/offers/{offer_id}/visitors", responses={
        **errors(401, 403, 404), 200: {"content": {"text/csv": {}}, "description": "The visitors (JSON or CSV)."}})
    async def offer_visitors(
        edition_id: PathId, offer_id: PathId, principal: Organiser, format: Format = "json"  # noqa: A002
    ) -> VisitorListOut:
        """The offer's visitors (the participants matching assigned to it): name, organisation, learning
        goal; `format=csv` for a spreadsheet."""
        offer, found = await service.visitors(uow, edition_id, offer_id, principal=principal)
        if format == "csv":
            rows = [(v.signup_id, v.name, v.org, v.learning_goal, v.language) for v in found]
            return StreamingResponse(  # type: ignore[return-value]
                exports.chunks("csv", ("signup_id", "name", "org", "learning_goal", "language"), _aiter(rows)),
                media_type=exports.MEDIA_TYPES["csv"],
                headers={"Content-Disposition": f'attachment; filename="visitors-{offer_id}.csv"'},
            )
        return VisitorListOut(offer_id=offer.id, title=offer.title, date=offer.date,
                              visitors=[VisitorOut.model_validate(v) for v in found])

    async def upload(request: Request) -> bytes:
        """The file: multipart (`file` field) or the raw body; `Content-Encoding: gzip` for big files."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            part = form.get("file")
            if part is None or isinstance(part, str):
                raise RuleViolation("file_required", "send the file in the multipart field `file`", "file")
            content = await part.read()
        else:
            content = await request.body()
        return imports.decompress(content, request.headers.get("content-encoding"))

    _IMPORT_BODY = {"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}},
    }}}
    _IMPORT_RESPONSES = {
        **errors(401, 403, 404, 409),
        422: {"model": ImportOut | ErrorOut,
              "description": "Row errors: nothing was stored (an invalid query parameter or header: the error shape)."},
    }

    async def run_import(
        kind: people.ImportKind, edition_id: str, request: Request, principal: Any, correlation_id: Any,
        dry_run: bool, lang: str | None,
    ) -> Any:
        language = negotiate(lang, request.headers.get("accept-language"), LANGUAGES)
        try:
            table = imports.read_table(await upload(request))
            rows, row_errors = imports.validate(kind, table)
        except imports.UnreadableFile as bad:
            rows, row_errors = [], [bad.error]
        if row_errors and not rows:  # nothing to check further (an unreadable file, wrong columns)
            result = people.ImportResult(kind, dry_run, False, [], row_errors)
        else:
            result = await service.import_rows(
                uow, kind, edition_id, rows, principal=principal, dry_run=dry_run, now=clock.now(),
                correlation_id=correlation_id, approval_url=approval_url, shape_errors=row_errors,
            )
        out = ImportOut(
            kind=kind, dry_run=dry_run, committed=result.committed, created=result.created, unchanged=result.unchanged,
            rows=[RowOutcomeOut.model_validate(r) for r in result.rows],
            errors=[RowErrorOut(row=e.row, column=e.column, code=e.code,
                                message=imports.message(translations.get(language), e.code, e.message))
                    for e in result.errors],
        )
        if out.errors:
            return JSONResponse(out.model_dump(mode="json"), status_code=422, headers={"Content-Language": language})
        return out

    @router.post("/editions/{edition_id}/imports/offers", responses=_IMPORT_RESPONSES, openapi_extra=_IMPORT_BODY)
    async def import_offers(
        edition_id: PathId, request: Request, principal: Organiser, correlation_id: CorrelationId,
        dry_run: bool = False, lang: Annotated[Language | None, Query(description="The language of the messages.")] = None,
    ) -> ImportOut:
        """Import offers from a CSV or XLSX file (columns: services/registration/README.md): the whole
        file is checked first; any row error refuses it (422, every error with row, column and message in
        the organiser's language; nothing stored). Else every new offer is published (`OfferPublished`)
        in one transaction; offers that exist identically (same id, or host_org + title + date) are
        `unchanged`: the same file again creates nothing. `dry_run=true`: what would happen."""
        return await run_import("offers", edition_id, request, principal, correlation_id, dry_run, lang)

    @router.post("/editions/{edition_id}/imports/signups", responses=_IMPORT_RESPONSES, openapi_extra=_IMPORT_BODY)
    async def import_signups(
        edition_id: PathId, request: Request, principal: Organiser, correlation_id: CorrelationId,
        dry_run: bool = False, lang: Annotated[Language | None, Query(description="The language of the messages.")] = None,
    ) -> ImportOut:
        """Import sign-ups (key: the e-mail address in the edition; `consent` must be true) as the offers
        import does: `SignupSubmitted` + `ParticipantRegistered` per new sign-up (and the approval request
        where the edition requires it), all in one transaction. 409 `deadline_passed`, `edition_closed`,
        `edition_cancelled` (the whole file)."""
        return await run_import("signups", edition_id, request, principal, correlation_id, dry_run, lang)

    @router.get("/editions/{edition_id}/exports/{kind}", responses={
        **errors(401, 403, 404),
        200: {"content": {"text/csv": {}, "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
              "description": "The rows, streamed (CSV with a header row, or a JSON array of objects)."},
    }, response_class=StreamingResponse)
    async def export(
        edition_id: PathId, kind: people.ExportKind, principal: Organiser, format: Format = "csv"  # noqa: A002
    ) -> StreamingResponse:
        """Export the edition's `signups`, `assignments` (what matching last told each participant),
        `visitors` (per offer) or `feedback`, as CSV or JSON, streamed from a server-side cursor (an
        edition is never held in memory). The organiser's own region only (another region's: 404)."""
        rows = service.export(uow, kind, edition_id, principal=principal)
        columns = await anext(rows)  # the access check happens here: a refusal is an error answer
        return StreamingResponse(
            exports.chunks(format, columns, rows), media_type=exports.MEDIA_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{edition_id}-{kind}.{format}"'},
        )

    @router.get("/editions/{edition_id}/recommendations", responses=errors(401, 404))
    async def recommend(
        edition_id: PathId, _: Public,
        goal: Annotated[str, Query(max_length=1000, description="The learning goal, in the participant's words.")] = "",
        themes: Annotated[list[Id], Query(max_length=30, description="Themes of interest (repeat the parameter).")] = [],  # noqa: B006
        days: Annotated[list[dt.date], Query(max_length=366, description="Available days (repeat); none: any.")] = [],  # noqa: B006
        lang: Language = "nl",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[RecommendationOut]:
        """The edition's offers that still have room (on the given days), best first for the learning
        goal: PostgreSQL full-text search in the `lang` configuration (dutch, german, english) plus a
        bonus per theme asked for; each with the reason."""
        found = await service.recommendations(
            uow, edition_id, goal=goal, themes=list(themes), days=list(days) or None, language=lang, limit=limit
        )
        return [RecommendationOut(
            offer_id=r.offer.id, title=r.offer.title, host_org=r.offer.host_org, date=r.offer.date,
            part_of_day=r.offer.part_of_day, themes=r.offer.themes, room=r.room, score=r.score, reason=r.reason,
            matched_themes=r.themes, matched_words=r.words,
        ) for r in found]


async def _aiter(rows: Sequence[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
    for row in rows:
        yield row


__all__ = ["add_people_routes"]
