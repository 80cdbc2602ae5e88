"""The relay as the public follows it (pure: no I/O): the route (legs in plan order), who holds the baton
today, the days so far and ahead, each day's figures (public, suppressed: `public.PublicFigures`) and the
approved knowledge items per leg (never a rejected one).

Who holds the baton comes from the relay's events: the leg that started (RelayLegStarted, or named as
the next leg by a hand-over) and has not been handed over; before any such event, the leg whose planned
days contain today. A leg's days are from its start (else its first planned day) to its hand-over (else
its last planned day); on a hand-over day the day belongs to the leg that receives the baton.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.reporting.domain import KnowledgeItem, RelayLeg
from services.reporting.public import Figure, PublicFigures

LegState = Literal["done", "holding", "ahead"]


@dataclass(frozen=True)
class LegView:
    leg: RelayLeg
    state: LegState
    first: date | None
    last: date | None
    items: list[KnowledgeItem] = field(default_factory=list)


@dataclass(frozen=True)
class RelayDay:
    day: date
    leg: LegView
    past: bool
    signups: Figure
    assigned: Figure
    feedback: Figure
    average_rating: float | None
    updated: datetime


@dataclass(frozen=True)
class RelayView:
    today: date
    legs: list[LegView]
    holder: LegView | None
    days: list[RelayDay]
    threshold: int

    @property
    def days_so_far(self) -> list[RelayDay]:
        """The days up to today, the newest first (the feeds' entries)."""
        return sorted((d for d in self.days if d.past), key=lambda d: d.day, reverse=True)

    @property
    def updated(self) -> datetime:
        so_far = self.days_so_far
        return max((d.updated for d in so_far), default=datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))


def _order(leg: RelayLeg) -> tuple[object, ...]:
    first = leg.first_day or leg.starts_on
    return (leg.position is None, leg.position or 0, first is None, first or date.min, leg.leg_id)


def relay_view(
    legs: list[RelayLeg], items: list[KnowledgeItem], figures: PublicFigures, now: datetime, timezone: str,
) -> RelayView:
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    ordered = sorted(legs, key=_order)
    next_legs = {leg.to_leg_id for leg in ordered if leg.handed_over_at and leg.to_leg_id}
    holding = [leg for leg in ordered if not leg.handed_over_at and (leg.starts_on or leg.leg_id in next_legs)]
    any_event = any(leg.starts_on or leg.handed_over_at for leg in ordered)
    if not holding and not any_event:
        holding = [leg for leg in ordered if leg.first_day and leg.last_day and leg.first_day <= today <= leg.last_day]
    holder_id = holding[-1].leg_id if holding else None

    approved = [i for i in items if i.status == "approved"]
    carried = {item_id for leg in ordered for item_id in leg.knowledge_items}
    views: list[LegView] = []
    seen_holder = False
    for leg in ordered:
        mine = [i for i in approved if i.feedback_id in leg.knowledge_items or (
            i.feedback_id not in carried and i.region == leg.region and i.edition_id == leg.edition_id)]
        mine.sort(key=lambda i: (i.approved_at or now, i.feedback_id))
        if leg.leg_id == holder_id:
            state: LegState = "holding"
            seen_holder = True
        elif leg.handed_over_at or (holder_id and not seen_holder):
            state = "done"
        elif not holder_id and leg.last_day and leg.last_day < today and not any_event:
            state = "done"
        else:
            state = "ahead"
        first = leg.starts_on or leg.first_day
        # An early hand-over ends the leg that day; one on time runs just after its last day's end (the
        # scheduled step), so the planned last day stands.
        if leg.handed_over_at and (leg.early or not leg.last_day):
            last = leg.handed_over_at.astimezone(tz).date()
        else:
            last = leg.last_day
        views.append(LegView(leg, state, first, last, mine))

    by_day: dict[date, LegView] = {}
    for view in views:  # later legs win a shared day (the hand-over day belongs to the receiver)
        if view.first and view.last:
            d = view.first
            while d <= view.last:
                by_day[d] = view
                d += timedelta(days=1)
    days = []
    for d in sorted(by_day):
        view = by_day[d]
        edition = view.leg.edition_id
        start = datetime(d.year, d.month, d.day, tzinfo=tz)
        moments = [start] + [i.approved_at for i in view.items if i.approved_at and i.approved_at.astimezone(tz).date() <= d]
        if view.leg.handed_over_at and view.leg.handed_over_at.astimezone(tz).date() == d:
            moments.append(view.leg.handed_over_at)
        days.append(RelayDay(
            d, view, d <= today, figures.day("signups", edition, d), figures.day("assigned", edition, d),
            figures.day("feedback", edition, d), figures.average("day", edition, d), max(moments),
        ))
    holder = next((v for v in views if v.leg.leg_id == holder_id), None)
    return RelayView(today, views, holder, days, figures.threshold)
