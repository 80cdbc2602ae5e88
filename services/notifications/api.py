"""The notifications HTTP API (OpenAPI at /docs): the status of every message, without its body."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel

from estafette.runtime.http import create_http_api
from estafette.runtime.uow import UnitOfWork
from services.notifications import service
from services.notifications.domain import Status


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str
    template: str
    region: str
    edition: str
    signup_id: str | None
    language: str
    status: Status
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    source_event_id: uuid.UUID
    correlation_id: uuid.UUID


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    #: Pass as `after` for the next page; null on the last page.
    next_after: uuid.UUID | None


def build_api(uow: UnitOfWork) -> FastAPI:
    api = create_http_api("Estafette notifications", "Status of the e-mails sent to participants.")

    @api.get("/notifications")
    async def list_notifications(
        edition: str | None = None,
        signup_id: str | None = None,
        status: Status | None = None,
        after: uuid.UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> NotificationPage:
        rows = await service.notifications(
            uow, edition=edition, signup_id=signup_id, status=status, after=after, limit=limit
        )
        items = [NotificationOut(**row) for row in rows]
        return NotificationPage(items=items, next_after=items[-1].id if len(items) == limit else None)

    @api.get("/notifications/{notification_id}")
    async def get_notification(notification_id: uuid.UUID) -> NotificationOut:
        return NotificationOut(**await service.notification(uow, notification_id))

    return api
