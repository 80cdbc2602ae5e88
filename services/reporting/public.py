"""The public figures (pure: no I/O): every figure of the public dashboard, the relay page, the dashboard
feed (`DashboardRecord`s) and `GET /feeds/dashboard`, with small counts suppressed in ONE decision over
all of them (`disclosure.protect`), so that no two outputs can be combined to recover a suppressed count.

Cells (`Key`: field, level, ids) and their sums:

- per day (region, edition, day): `signups` made that day, `assigned` visits on that day, `feedback`
  given that day and its `rating_total`; each edition's figure is the sum of its days plus the part
  without a day (sign-ups known only from an approval, feedback stored before days were kept), which a
  reader is assumed to know (`fixed`);
- per edition, region and nation: the above and the other counts of people (`withdrawn`, `waitlisted`,
  `unmatched`, `awaiting_rematch`, `seat_offers_open`, `pending_approval`, `approved`, `refused`,
  `emails_sent`, `emails_failed`, `feedback_shareable`, `first_choice`); a region's is the sum of its
  editions', the nation's the sum of the regions';
- within an edition: `signups` = not_required + pending_approval + approved (not_required assumed
  known), `assigned` = first_choice + other_choice, `emails_sent` / `emails_failed` = the sum over the
  e-mail templates (plus an assumed-known `untemplated` remainder, 0 unless the counts disagree).

Every group adds up by construction: a total that is not a sum of other figures gets a remainder that a
reader is assumed to know (`undated`, `not_required`, `other_choice`, `untemplated`), computed from the
same figures, so counts read while they catch up with each other (a sign-up's match counted before the
sign-up) never make the groups contradict each other (`protect` leaves such a group out; see there).

A rating total over fewer than `threshold` ratings is suppressed whatever its value (bounds 1 to
5 x (threshold - 1)); an average is shown only where its count and its rating total are exact (so never of
fewer than `threshold` ratings). Organisations are distinct counts (they do not add up): shown or "< t".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from services.reporting.disclosure import Group, Shown, protect
from services.reporting.domain import EditionFigures, TemplateFigures

Key = tuple[object, ...]
#: Fields with days (DashboardRecord's), and the other counts of people summed per region and nationally.
DAY_FIELDS = ("signups", "assigned", "feedback", "rating_total")
TREE_FIELDS = (
    "withdrawn", "waitlisted", "unmatched", "awaiting_rematch", "seat_offers_open", "pending_approval", "approved",
    "refused", "emails_sent", "emails_failed", "feedback_shareable", "first_choice", "other_choice",
)
RATING_MAX = 5


@dataclass(frozen=True)
class DayCell:
    """One (region, edition, day): sign-ups made that day, visits assigned on that day, feedback given."""

    region: str
    edition_id: str
    day: date
    signups: int = 0
    assigned: int = 0
    feedback: int = 0
    rating_total: int = 0


@dataclass(frozen=True)
class Figure:
    """A figure as published: `value` None unless `shown` is exact."""

    shown: Shown
    exact_value: int = field(repr=False, default=0)

    @property
    def value(self) -> int | None:
        return self.exact_value if self.shown == "exact" else None


@dataclass
class PublicFigures:
    threshold: int
    editions: list[EditionFigures]
    cells: list[DayCell]
    values: dict[Key, int]
    shown: dict[Key, Shown]

    def get(self, field_name: str, *node: object) -> Figure:
        key = (field_name, *node)
        if key not in self.values:
            return Figure("exact", 0)
        return Figure(self.shown[key], self.values[key])

    def edition(self, field_name: str, edition_id: str) -> Figure:
        return self.get(field_name, "edition", edition_id)

    def region(self, field_name: str, region: str) -> Figure:
        return self.get(field_name, "region", region)

    def national(self, field_name: str) -> Figure:
        return self.get(field_name, "national")

    def day(self, field_name: str, edition_id: str, day: date) -> Figure:
        return self.get(field_name, "day", edition_id, day)

    def average(self, *node: object) -> float | None:
        """The average rating at `node` (e.g. "edition", id), only over an exact count of at least the threshold."""
        count, total = self.get("feedback", *node), self.get("rating_total", *node)
        if count.value and total.value is not None:
            return round(total.value / count.value, 2)
        return None

    def share(self, edition_id: str) -> float | None:
        """The first-choice share of an edition, only where both its parts are exact."""
        first, other = self.edition("first_choice", edition_id), self.edition("other_choice", edition_id)
        if first.value is None or other.value is None or not (first.value + other.value):
            return None
        return round(first.value / (first.value + other.value), 3)

    def fingerprint(self) -> str:
        """A digest of every figure as shown (a change of any public figure changes it)."""
        shown = sorted((repr(k), self.shown[k], self.values[k] if self.shown[k] == "exact" else None)
                       for k in self.values)
        return hashlib.sha256(repr(shown).encode()).hexdigest()

    def regions(self) -> list[str]:
        return sorted({e.region for e in self.editions})

    def records(self, updated_at: datetime) -> list[dict[str, object]]:
        """The dashboard feed's records (DashboardRecord fields), one per (region, edition, day)."""
        out = []
        for c in self.cells:
            record: dict[str, object] = {"region": c.region, "edition": c.edition_id, "day": c.day}
            suppressed = []
            for name in ("signups", "assigned", "feedback"):
                figure = self.day(name, c.edition_id, c.day)
                record[name] = figure.value
                if figure.value is None:
                    suppressed.append(name)
            record["average_rating"] = self.average("day", c.edition_id, c.day)
            if record["average_rating"] is None and c.feedback:
                suppressed.append("average_rating")
            record |= {"suppressed": suppressed, "threshold": self.threshold, "updated_at": updated_at}
            out.append(record)
        return out


def _edition_value(e: EditionFigures, name: str) -> int:
    if name == "feedback":
        return e.feedback_count
    if name == "other_choice":
        return e.assigned - e.first_choice
    return int(getattr(e, name))


def public_figures(
    editions: Sequence[EditionFigures], cells: Iterable[DayCell], templates: dict[str, list[TemplateFigures]],
    threshold: int,
) -> PublicFigures:
    """Every public figure, suppressed together (see the module's docstring)."""
    cells = sorted(cells, key=lambda c: (c.region, c.edition_id, c.day))
    known_editions = {e.edition_id for e in editions}
    cells = [c for c in cells if c.edition_id in known_editions]
    values: dict[Key, int] = {}
    groups: list[Group[Key]] = []
    fixed: set[Key] = set()
    primary: dict[Key, tuple[int, int]] = {}
    rating_bounds = (1, RATING_MAX * (threshold - 1))
    regions = sorted({e.region for e in editions})
    by_region: dict[str, list[EditionFigures]] = {r: [] for r in regions}
    for e in editions:
        by_region[e.region].append(e)

    for name in DAY_FIELDS + TREE_FIELDS:
        for e in editions:
            values[(name, "edition", e.edition_id)] = _edition_value(e, name)
        for r in regions:
            values[(name, "region", r)] = sum(values[(name, "edition", e.edition_id)] for e in by_region[r])
            groups.append(Group((name, "region", r), tuple((name, "edition", e.edition_id) for e in by_region[r])))
        values[(name, "national")] = sum(values[(name, "region", r)] for r in regions)
        groups.append(Group((name, "national"), tuple((name, "region", r) for r in regions)))

    cells_of: dict[str, list[DayCell]] = {}
    for c in cells:
        cells_of.setdefault(c.edition_id, []).append(c)
    for e in editions:
        days = cells_of.get(e.edition_id, [])
        for name in DAY_FIELDS:
            parts: list[Key] = []
            for c in days:
                key = (name, "day", e.edition_id, c.day)
                values[key] = int(getattr(c, name))
                parts.append(key)
            rest = (name, "undated", e.edition_id)
            values[rest] = values[(name, "edition", e.edition_id)] - sum(values[p] for p in parts)
            fixed.add(rest)
            groups.append(Group((name, "edition", e.edition_id), (*parts, rest)))
        # The assumed-known remainder (like `undated`): the sign-ups by approval add up to `signups` by
        # construction, also in a snapshot taken while the counts are catching up with each other.
        not_required = ("not_required", "edition", e.edition_id)
        values[not_required] = e.signups - e.pending_approval - e.approved
        fixed.add(not_required)
        groups.append(Group(("signups", "edition", e.edition_id),
                            (not_required, ("pending_approval", "edition", e.edition_id), ("approved", "edition", e.edition_id))))
        groups.append(Group(("assigned", "edition", e.edition_id),
                            (("first_choice", "edition", e.edition_id), ("other_choice", "edition", e.edition_id))))
        rows = templates.get(e.edition_id, [])
        for status in ("sent", "failed"):
            parts = []
            for t in rows:
                key = ("emails_" + status, "template", e.edition_id, t.template)
                values[key] = getattr(t, status)
                parts.append(key)
            if parts:
                rest = ("emails_" + status, "untemplated", e.edition_id)  # 0 unless the counts disagree
                values[rest] = values[("emails_" + status, "edition", e.edition_id)] - sum(values[p] for p in parts)
                fixed.add(rest)
                groups.append(Group(("emails_" + status, "edition", e.edition_id), (*parts, rest)))
        values[("organisations", "edition", e.edition_id)] = e.organisations

    for key, value in values.items():
        if key[0] == "rating_total" and key not in fixed:
            count = values.get(("feedback", *key[1:]), 0)
            if 0 < count < threshold:
                primary[key] = rating_bounds
    shown = protect(values, groups, threshold, primary=primary, fixed=fixed)
    return PublicFigures(threshold, list(editions), cells, values, shown)
