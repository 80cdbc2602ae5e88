"""The webhooks' HTTP routes (issue 11), added to the notifications API by `api.build_api`.

Policy `Organiser` on every route: an organiser manages their own region's endpoints, an admin any
region's (naming the region when registering one); another region's endpoint is a 404 like an
unknown one; the national role is refused (403).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from estafette.runtime.auth import Organiser
from estafette.runtime.clock import Now
from estafette.runtime.http import errors
from estafette.runtime.inputs import Line
from estafette.runtime.uow import Uow
from schemas.topics import REGION_ID_PATTERN
from services.notifications import domain, service
from services.notifications.repository import Repository
from services.notifications.webhooks import new_secret

#: Every event type a webhook can subscribe to (domain.WEBHOOK_EVENT_TYPES).
EventType = Literal[domain.WEBHOOK_EVENT_TYPES]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=2000, description="An http:// or https:// URL; receives a POST per event.")]
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=len(domain.WEBHOOK_EVENT_TYPES))] = Field(
        description="Event types of the region's editions, offers, sign-ups and matches topics (never contact details)."
    )
    description: Line(500, min_length=0) = ""
    region: Annotated[str | None, Field(pattern=REGION_ID_PATTERN, description="Admins only: the endpoint's region (an organiser's is their own).")] = None


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    region: str
    url: str
    event_types: list[str]
    description: str
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (`whsec_...`), shown only in this answer: keep it to verify signatures.")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    attempted_at: datetime
    status: Literal["succeeded", "failed"]
    response_code: int | None = Field(description="The endpoint's HTTP status; null when no answer came.")
    duration_ms: int
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="The `webhook-id` header (the same for every attempt and redelivery).")
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: list[AttemptOut] = Field(default_factory=list, description="Every attempt, oldest first.")


def add_routes(api: FastAPI, uow: Uow[Repository], clock: Now) -> None:
    @api.post("/webhooks", status_code=201, response_model=WebhookCreated, responses=errors(401, 403, 422))
    async def add_webhook(principal: Organiser, body: WebhookIn) -> WebhookCreated:
        """Register an endpoint of the region for the event types named. Every such event from now on
        is POSTed to it, signed (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
        `webhook-signature`) with the secret in this answer, shown only here. 422 `invalid_url`,
        `unknown_event_type`, `region_required` (admin); 403 another region (organiser)."""
        made = await service.add_webhook(
            uow, principal, body.url, list(body.event_types), body.description, body.region, new_secret(), clock.now()
        )
        return WebhookCreated.model_validate({**WebhookOut.model_validate(made).model_dump(), "secret": made.secret})

    @api.get("/webhooks", response_model=list[WebhookOut], responses=errors(401, 403))
    async def list_webhooks(principal: Organiser) -> list[WebhookOut]:
        """The live endpoints of the caller's region (an admin: of every region), without secrets."""
        return [WebhookOut.model_validate(w) for w in await service.webhooks(uow, principal)]

    @api.delete("/webhooks/{endpoint_id}", status_code=204, response_class=Response, responses=errors(401, 403, 404))
    async def delete_webhook(principal: Organiser, endpoint_id: uuid.UUID) -> Response:
        """Nothing more is delivered to it; its pending deliveries end as failed. 404 `unknown_webhook`."""
        await service.delete_webhook(uow, principal, endpoint_id, clock.now())
        return Response(status_code=204)

    @api.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryOut], responses=errors(401, 403, 404))
    async def deliveries(
        principal: Organiser, endpoint_id: uuid.UUID, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DeliveryOut]:
        """The endpoint's deliveries, newest first, each with its attempts (status, response code,
        duration, error). 404 `unknown_webhook`."""
        return [DeliveryOut.model_validate(d) for d in await service.webhook_deliveries(uow, principal, endpoint_id, limit)]

    @api.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=DeliveryOut,
              responses=errors(401, 403, 404))
    async def redeliver(principal: Organiser, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryOut:
        """Send a delivery again now (delivered or failed ones too), with a fresh round of attempts and
        the same `webhook-id`. 404 `unknown_webhook` / `unknown_delivery`."""
        found = await service.redeliver_webhook(uow, principal, endpoint_id, delivery_id, clock.now())
        return DeliveryOut.model_validate(found)
