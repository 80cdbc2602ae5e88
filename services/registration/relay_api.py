"""The relay's HTTP routes (issue 10, the write side; reporting serves the public relay page and feeds):
the relay plan (`GET /relay/legs` public; `PUT /relay/legs/{leg_id}` the national coordinator or an
admin), the early hand-over of the baton by the holding region's organiser, and the moderation of
knowledge items (the region's organiser). `api.build_api` calls `add_relay_routes`; each route is one
call of `service`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from estafette.runtime.auth import Figures, Organiser, Public
from estafette.runtime.clock import Now
from estafette.runtime.http import CorrelationId, errors
from estafette.runtime.inputs import Paragraphs, PathId
from estafette.runtime.regions import RegionBook
from estafette.runtime.uow import Uow
from schemas.events import Id
from services.registration import domain, service
from services.registration.pages import MAX_LEARNED
from services.registration.repository import Repository

#: At most this many legs in a relay (a position is 1 .. MAX_LEGS).
MAX_LEGS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RelayLegIn(_Strict):
    region: Id = Field(description="The region that holds the baton during the leg (of the region registry).")
    edition: Id = Field(description="The edition or activity id the leg belongs to.")
    first_day: date
    last_day: date
    activity: Paragraphs(1000) = Field(default="", description="What happens during the leg.")
    position: int = Field(ge=1, le=MAX_LEGS, description="The leg's place in the relay (unique).")
    allow_gap: bool = Field(default=False, description="Days without the baton next to this leg are intended.")


class RelayLegOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    region: str
    edition: str
    first_day: date
    last_day: date
    position: int
    activity: str
    allow_gap: bool
    timezone: str
    status: domain.LegStatus = Field(description="`planned`, `holding` (holds the baton) or `handed_over`.")
    started_at: datetime | None
    handed_over_at: datetime | None
    early: bool
    to_leg_id: str | None


class ApproveIn(_Strict):
    text: Paragraphs(MAX_LEARNED, min_length=1) | None = Field(
        default=None, description="The text as approved (e.g. with names removed); default: the participant's words."
    )


class RejectIn(_Strict):
    reason: Paragraphs(500, min_length=1) = Field(description="Why the feedback is not published.")


class KnowledgeItemOut(BaseModel):
    """A shareable feedback as its organiser moderates it (no participant's name or e-mail address)."""

    feedback_id: str
    edition_id: str
    offer_id: str
    offer_title: str
    host_org: str
    language: str
    rating: int
    learned: str = Field(description="What the participant wrote.")
    submitted_at: datetime
    status: domain.KnowledgeStatus
    text: str = Field(description="The text as approved (approved items).")
    reason: str = Field(description="Why it was rejected (rejected items).")
    decided_at: datetime | None
    leg_id: str | None = Field(description="The relay leg it travelled with, once handed over.")

    @classmethod
    def of(cls, item: domain.KnowledgeItem) -> KnowledgeItemOut:
        f = item.feedback
        return cls(
            feedback_id=f.id, edition_id=item.edition_id, offer_id=f.offer_id, offer_title=item.offer_title,
            host_org=item.host_org, language=f.language, rating=f.rating, learned=f.learned, submitted_at=f.submitted_at,
            status=item.status, text=item.text, reason=item.reason, decided_at=item.decided_at, leg_id=item.leg_id,
        )


def add_relay_routes(api: FastAPI, uow: Uow[Repository], registry_loaded: Any, clock: Now, limits: domain.DateLimits) -> None:
    """Add the relay's routes to the service's API (on the app itself, so that the runtime documents
    their policies). `registry_loaded`: the dependency that waits for the region registry."""

    @api.get("/relay/legs", responses=errors(401))
    async def relay_plan(_: Public) -> list[RelayLegOut]:
        """The relay plan in order of position, with each leg's state (who holds the baton)."""
        return [RelayLegOut.model_validate(leg) for leg in await service.relay_plan(uow)]

    @api.put("/relay/legs/{leg_id}", responses=errors(401, 403, 409))
    async def plan_relay_leg(
        leg_id: PathId, body: RelayLegIn, principal: Figures, correlation_id: CorrelationId,
        regions: RegionBook = registry_loaded,
    ) -> RelayLegOut:
        """Plan or re-plan a leg (the national coordinator, an admin; organisers: 403): `RelayLegPlanned`.
        422 `relay_overlap`, `relay_gap` (unless `allow_gap`), `relay_position_taken`, `unknown_region`,
        `date_too_early`, `date_too_late`; 409 `relay_leg_started`. The same plan again: nothing changes."""
        fields = body.model_dump()
        leg = domain.RelayLeg(id=leg_id, **fields)
        planned = await service.plan_relay_leg(
            uow, leg, registry=regions, principal=principal, now=clock.now(), limits=limits,
            correlation_id=correlation_id,
        )
        return RelayLegOut.model_validate(planned)

    @api.post("/relay/legs/{leg_id}/handover", responses=errors(401, 403, 404, 409))
    async def hand_over_early(leg_id: PathId, principal: Organiser, correlation_id: CorrelationId) -> RelayLegOut:
        """The holding region's organiser (or an admin) hands the baton over now: `RelayLegHandedOver`
        with `early: true`, and the next leg starts. 409 `relay_leg_not_holding`; another region's
        organiser: 403 `forbidden_region`."""
        leg = await service.hand_over_early(
            uow, leg_id, principal=principal, now=clock.now(), correlation_id=correlation_id
        )
        return RelayLegOut.model_validate(leg)

    @api.get("/editions/{edition_id}/knowledge-items", responses=errors(401, 403, 404))
    async def knowledge_items(
        edition_id: PathId, principal: Organiser,
        status: Literal["pending", "approved", "rejected"] = Query(default="pending"),  # noqa: B008
    ) -> list[KnowledgeItemOut]:
        """The edition's shareable feedback (candidates for knowledge items) in one moderation state."""
        items = await service.knowledge_items(uow, edition_id, principal=principal, status=status)
        return [KnowledgeItemOut.of(item) for item in items]

    @api.post("/editions/{edition_id}/knowledge-items/{feedback_id}/approve", responses=errors(401, 403, 404, 409))
    async def approve_knowledge_item(
        edition_id: PathId, feedback_id: PathId, principal: Organiser, correlation_id: CorrelationId,
        body: ApproveIn | None = None,
    ) -> KnowledgeItemOut:
        """Approve shareable feedback as a knowledge item, optionally with an edited text:
        `KnowledgeItemApproved`; again: nothing changes. 409 `not_shareable`, `already_moderated`."""
        item = await service.approve_knowledge_item(
            uow, edition_id, feedback_id, principal=principal, text=body.text if body else None, now=clock.now(),
            correlation_id=correlation_id,
        )
        return KnowledgeItemOut.of(item)

    @api.post("/editions/{edition_id}/knowledge-items/{feedback_id}/reject", responses=errors(401, 403, 404, 409))
    async def reject_knowledge_item(
        edition_id: PathId, feedback_id: PathId, body: RejectIn, principal: Organiser, correlation_id: CorrelationId,
    ) -> KnowledgeItemOut:
        """Reject shareable feedback as a knowledge item, with a reason: `KnowledgeItemRejected`; again:
        nothing changes. 409 `not_shareable`, `already_moderated`."""
        item = await service.reject_knowledge_item(
            uow, edition_id, feedback_id, principal=principal, reason=body.reason, now=clock.now(),
            correlation_id=correlation_id,
        )
        return KnowledgeItemOut.of(item)
