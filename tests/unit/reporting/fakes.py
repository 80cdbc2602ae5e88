"""Reporting's FakeRepository: the same methods as services.reporting.repository.Repository, in memory.

It stores what the service decides and nothing more: no rule lives here. The figures a report reads
(SQL aggregates in the real repository) are whatever a test put in `figures` / `days`; a known
edition without them reads as all zeros.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from estafette.runtime.consumer import dispatch
from schemas import Event, topic_for
from services.reporting.domain import (
    DayFigures,
    Edition,
    EditionFigures,
    Feedback,
    KnowledgeItem,
    MatchOutcome,
    NotificationOutcome,
    Offer,
    RelayLeg,
    Signup,
    TemplateFigures,
    Version,
)
from services.reporting.handlers import SUBSCRIPTIONS
from services.reporting.public import DayCell
from tests.unit.reporting import builders


class FakeRegions:
    """The runtime's RegionBook as reporting reads it: the registry's regions by id (records not needed)."""

    def __init__(self, *region_ids: str) -> None:
        self.regions: dict[str, Any] = dict.fromkeys(region_ids)


async def handle(uow: Any, *events: Event) -> None:
    """Each event in its own transaction, through the handlers' dispatch tables, as the consumer does."""
    for event in events:
        _, table = SUBSCRIPTIONS[topic_for(event)]
        async with uow.transaction() as tx:
            await dispatch(table)(tx, event)


class FakeRepository:
    def __init__(self) -> None:
        self.editions: dict[str, Edition] = {}
        self.offers: dict[str, Offer] = {}
        self.signups: dict[str, Signup] = {}
        self.matches: dict[str, MatchOutcome] = {}
        self.notifications: dict[uuid.UUID, NotificationOutcome] = {}
        self.feedback: dict[str, Feedback] = {}
        self.legs: dict[str, RelayLeg] = {}
        self.figures: dict[str, EditionFigures] = {}
        self.days: dict[str, list[DayFigures]] = {}
        self.templates: dict[str, list[TemplateFigures]] = {}
        self.snapshots = 0
        self.knowledge: dict[str, KnowledgeItem] = {}
        self.feedback_at: dict[str, Any] = {}
        #: Day cells per (region, edition, day) as a test puts them (the real repository aggregates them).
        self.cells: list[DayCell] = []
        self.dashboard: dict[str, dict[str, object]] = {}
        self.generation = 0

    # --- editions, offers, sign-ups, relay legs, feedback
    async def edition(self, edition_id: str) -> Edition | None:
        return self.editions.get(edition_id)

    async def add_edition(self, e: Edition) -> None:
        self.editions.setdefault(e.edition_id, e)

    async def save_edition(self, e: Edition) -> None:
        self.editions[e.edition_id] = e

    async def offer(self, offer_id: str) -> Offer | None:
        return self.offers.get(offer_id)

    async def save_offer(self, o: Offer) -> None:
        self.offers[o.offer_id] = o

    async def signup(self, signup_id: str) -> Signup | None:
        return self.signups.get(signup_id)

    async def save_signup(self, s: Signup) -> None:
        self.signups[s.signup_id] = s

    async def signups_by_id(self, ids: list[str]) -> dict[str, Signup]:
        return {i: self.signups[i] for i in ids if i in self.signups}

    async def save_signups(self, signups: list[Signup]) -> None:
        assert len({s.signup_id for s in signups}) == len(signups), "one row per id (ON CONFLICT DO UPDATE)"
        for s in signups:
            self.signups[s.signup_id] = s

    async def relay_leg(self, leg_id: str) -> RelayLeg | None:
        return self.legs.get(leg_id)

    async def save_relay_leg(self, leg: RelayLeg) -> None:
        self.legs[leg.leg_id] = leg

    async def add_feedback(self, f: Feedback, submitted_at: Any = None) -> None:
        self.feedback.setdefault(f.feedback_id, f)
        self.feedback_at.setdefault(f.feedback_id, submitted_at)

    async def knowledge_item(self, feedback_id: str) -> KnowledgeItem | None:
        return self.knowledge.get(feedback_id)

    async def save_knowledge_item(self, k: KnowledgeItem) -> None:
        self.knowledge[k.feedback_id] = k

    async def knowledge_items(self) -> list[KnowledgeItem]:
        return sorted(self.knowledge.values(), key=lambda k: k.feedback_id)

    async def day_cells(self, timezone: str) -> list[DayCell]:
        return list(self.cells)

    async def all_template_figures(self) -> dict[str, list[TemplateFigures]]:
        return {k: list(v) for k, v in self.templates.items()}

    async def lock_dashboard(self) -> None:
        pass

    async def dashboard_records(self) -> dict[str, dict[str, object]]:
        return dict(self.dashboard)

    async def save_dashboard_records(self, records: Any, at: Any) -> None:
        for key, figures in records:
            self.dashboard[key] = figures

    async def bump_dashboard_generation(self) -> int:
        self.generation += 1
        return self.generation

    async def dashboard_generation(self) -> int:
        return self.generation

    # --- outcomes
    async def match_version(self, signup_id: str) -> Version | None:
        stored = self.matches.get(signup_id)
        return stored.version if stored else None

    async def save_match(self, m: MatchOutcome) -> None:
        self.matches[m.signup_id] = m

    async def notification_version(self, notification_id: uuid.UUID) -> Version | None:
        stored = self.notifications.get(notification_id)
        return stored.version if stored else None

    async def save_notification(self, n: NotificationOutcome) -> None:
        self.notifications[n.notification_id] = n

    async def notification_versions(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Version]:
        return {i: self.notifications[i].version for i in ids if i in self.notifications}

    async def save_notifications(self, outcomes: list[NotificationOutcome]) -> None:
        assert len({o.notification_id for o in outcomes}) == len(outcomes), "one row per id (ON CONFLICT DO UPDATE)"
        for o in outcomes:
            self.notifications[o.notification_id] = o

    # --- reads
    async def read_snapshot(self) -> None:
        self.snapshots += 1

    async def edition_figures(self, edition_id: str) -> EditionFigures | None:
        e = self.editions.get(edition_id)
        if e is None:
            return None
        return self.figures.get(edition_id) or builders.figures(
            edition_id, e.region, name=e.name, status=e.status, starts_on=e.starts_on, ends_on=e.ends_on,
            cancellation_reason=e.cancellation_reason, cancelled_at=e.cancelled_at,
        )

    async def all_edition_figures(self) -> list[EditionFigures]:
        ordered = sorted(self.editions.values(), key=lambda e: (e.region, e.starts_on is None, e.starts_on, e.edition_id))
        return [f for e in ordered if (f := await self.edition_figures(e.edition_id))]

    async def day_figures(self, edition_id: str, timezone: str) -> list[DayFigures]:
        return self.days.get(edition_id, [])

    async def template_figures(self, edition_id: str) -> list[TemplateFigures]:
        return self.templates.get(edition_id, [])

    async def relay_legs(self) -> list[RelayLeg]:
        return sorted(self.legs.values(), key=lambda leg: (leg.starts_on is None, leg.starts_on, leg.leg_id))

    async def editions_by_status(self) -> dict[str, int]:
        return dict(Counter(e.status for e in self.editions.values()))
