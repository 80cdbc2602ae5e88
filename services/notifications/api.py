"""The notifications HTTP API (OpenAPI at /docs): the status of every message, without its body.

Policy `Organiser` on every route: an admin sees every message, an organiser only those of their own
region (another region's message is a 404 like an unknown one); the national role is refused (403):
who was e-mailed is personal data.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict

from estafette.runtime.auth import Organiser
from estafette.runtime.clock import Now
from estafette.runtime.http import create_http_api, errors
from estafette.runtime.inputs import QueryId
from estafette.runtime.uow import Uow
from services.notifications import service, webhook_api
from services.notifications.domain import NotificationView, Status
from services.notifications.repository import Repository


class NotificationPage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[NotificationView]
    #: Pass as `after` for the next page; null on the last page.
    next_after: uuid.UUID | None


def build_api(uow: Uow[Repository], clock: Now | None = None) -> FastAPI:
    """`clock`: the platform clock (`rt.clock`); the webhooks' routes (issue 11) come with it."""
    api = create_http_api(
        "Estafette notifications", "Status of the e-mails sent to participants, and webhooks for portals."
    )
    if clock is not None:
        webhook_api.add_routes(api, uow, clock)

    @api.get("/notifications", response_model=NotificationPage, responses=errors(401, 403))
    async def list_notifications(
        principal: Organiser,
        edition: QueryId = None,
        signup_id: QueryId = None,
        status: Status | None = None,
        after: uuid.UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> NotificationPage:
        """Oldest first, of the regions the caller sees (an organiser: their own; an `edition` of another
        region gives an empty page); pass `next_after` as `after` for the next page."""
        found = await service.notifications(
            uow, principal, edition=edition, signup_id=signup_id, status=status, after=after, limit=limit
        )
        return NotificationPage.model_validate(found)

    @api.get("/notifications/{notification_id}", response_model=NotificationView, responses=errors(401, 403, 404))
    async def get_notification(principal: Organiser, notification_id: uuid.UUID) -> NotificationView:
        """One message; 404 `unknown_notification` when unknown or of a region the caller does not see."""
        return await service.notification(uow, principal, notification_id)

    return api
