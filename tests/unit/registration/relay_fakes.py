"""The relay's part of the fake repository (issue 10): `RelayFakeRepository` is `FakeRepository` with the
relay plan, the moderated knowledge items and the scheduled steps in memory (what `Repository`'s relay
methods and the database's keys do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.registration.domain import KnowledgeItem, RelayLeg
from tests.unit.registration.fakes import FakeRegistrationUow, FakeRepository


class RelayFakeRepository(FakeRepository):
    def __init__(self, *args: Any, legs: tuple[RelayLeg, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leg_rows = {leg.id: leg for leg in legs}
        self.decisions: dict[str, KnowledgeItem] = {}
        #: (kind, key) -> (due_at, payload) of the scheduled steps.
        self.steps: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}

    async def lock_relay(self) -> None:
        return None

    async def relay_legs(self) -> list[RelayLeg]:
        return sorted(self.leg_rows.values(), key=lambda leg: leg.position)

    async def store_relay_leg(self, leg: RelayLeg) -> None:
        if leg.status == "holding" and any(x.status == "holding" and x.id != leg.id for x in self.leg_rows.values()):
            raise AssertionError("unique index relay_legs_one_holder: two legs hold the baton")
        if any(x.position == leg.position and x.id != leg.id for x in self.leg_rows.values()):
            raise AssertionError("unique position")
        self.leg_rows[leg.id] = leg

    async def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any] | None = None) -> None:
        self.steps[(kind, key)] = (due_at, dict(payload or {}))

    def _item(self, feedback_id: str) -> KnowledgeItem | None:
        feedback = next((f for f in self.feedback_rows.values() if f.id == feedback_id), None)
        if feedback is None:
            return None
        if feedback_id in self.decisions:
            return self.decisions[feedback_id]
        signup = self.signup_rows[feedback.signup_id]
        edition = self.edition_rows[signup.edition_id]
        offer = self.offer_rows.get(feedback.offer_id)
        return KnowledgeItem(feedback, edition.id, edition.region, offer.title if offer else "", offer.host_org if offer else "")

    async def knowledge_items(self, edition_id: str, status: str) -> list[KnowledgeItem]:
        items = [self._item(f.id) for f in self.feedback_rows.values() if f.share_publicly]
        found = [i for i in items if i is not None and i.edition_id == edition_id and i.status == status]
        return sorted(found, key=lambda i: (i.feedback.submitted_at, i.feedback.id))

    async def knowledge_item(self, edition_id: str, feedback_id: str, *, for_update: bool = False) -> KnowledgeItem | None:
        item = self._item(feedback_id)
        return item if item is not None and item.edition_id == edition_id else None

    async def store_knowledge_decision(self, item: KnowledgeItem) -> None:
        if item.feedback.id in self.decisions:
            raise AssertionError("primary key knowledge_items.feedback_id")
        self.decisions[item.feedback.id] = item

    async def carry_knowledge_items(self, region: str, leg_id: str, until: datetime) -> list[str]:
        carried = sorted(
            (i for i in self.decisions.values() if i.region == region and i.status == "approved" and i.leg_id is None
             and i.decided_at is not None and i.decided_at <= until),
            key=lambda i: (i.decided_at, i.feedback.id),
        )
        for item in carried:
            self.decisions[item.feedback.id] = replace(item, leg_id=leg_id)
        return [i.feedback.id for i in carried]


def relay_uow(*args: Any, **kwargs: Any) -> FakeRegistrationUow:
    return FakeRegistrationUow(RelayFakeRepository(*args, **kwargs))  # type: ignore[arg-type]
