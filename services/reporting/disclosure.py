"""Small-count suppression for public and national outputs (pure: no I/O).

Every published figure is a *cell*; a *group* says that one cell (a total) is the sum of others (its
parts): an edition's sign-ups are the sum of its days', a region's the sum of its editions', and so on.
`protect` decides what is shown of each cell:

- `exact`: the number;
- `small` (primary suppression): a count from 1 to threshold - 1, shown as "< threshold";
- `withheld` (complementary suppression): a count of at least the threshold, withheld so that a small
  count cannot be worked out from a total by subtraction.

What a reader knows is modelled exactly as shown: an exact cell is its value, a small cell lies in its
`small` bounds (1..threshold-1 for a count), a withheld cell is at least the threshold, and every group
holds. `protect` propagates these bounds through all groups (to a fixed point) and, while some suppressed
cell is pinned to one value, withholds one more cell of a group that pins it: the smallest published
non-zero part, else the group's total. It ends because every step withholds one more cell (in the worst
case everything is withheld). A zero is never suppressed (it tells about nobody).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
#: Rounds of careful complementary suppression (one more withheld cell per pinned cell per round);
#: after them, everything around a cell still pinned is withheld (`_withhold_around`), so the work
#: stays bounded whatever the figures.
CAREFUL_ROUNDS = 12
Shown = Literal["exact", "small", "withheld"]
INFINITY = 10**12


@dataclass(frozen=True)
class Group(Generic[K]):
    """`total` is the sum of `parts`."""

    total: K
    parts: tuple[K, ...]


def bounds(
    values: Mapping[K, int], groups: Sequence[Group[K]], shown: Mapping[K, Shown], small: Mapping[K, tuple[int, int]],
    threshold: int,
) -> dict[K, tuple[int, int]]:
    """What a reader can know of each cell from what is shown: [low, high] per cell, after propagating
    the groups' sums to a fixed point (interval propagation). A work list: a group is evaluated again
    only when one of its cells' bounds changed (at most 200 evaluations per group, as many as 200 full
    passes would make)."""
    known: dict[K, tuple[int, int]] = {}
    for key, value in values.items():
        how = shown.get(key, "exact")
        if how == "exact":
            known[key] = (value, value)
        elif how == "small":
            known[key] = small.get(key, (1, threshold - 1))
        else:
            known[key] = (threshold, INFINITY)
    usable = [g for g in groups if g.total in known and all(p in known for p in g.parts)]
    of_cell: dict[K, list[int]] = {}
    for i, g in enumerate(usable):
        for member in (g.total, *g.parts):
            of_cell.setdefault(member, []).append(i)
    queue = deque(range(len(usable)))
    queued = [True] * len(usable)
    budget = 200 * len(usable)
    while queue and budget > 0:
        budget -= 1
        i = queue.popleft()
        queued[i] = False
        g = usable[i]
        changed: list[K] = []
        lo_sum = sum(known[p][0] for p in g.parts)
        hi_sum = min(INFINITY, sum(known[p][1] for p in g.parts))
        t_lo, t_hi = known[g.total]
        new_t = (max(t_lo, lo_sum), min(t_hi, hi_sum))
        if new_t != (t_lo, t_hi):
            known[g.total] = new_t
            changed.append(g.total)
        t_lo, t_hi = known[g.total]
        # The other parts' bounds are the group's sums minus the part's own (exact integers: a part
        # at INFINITY keeps every other part's upper sum at or above INFINITY).
        all_lo = sum(known[q][0] for q in g.parts)
        all_hi = sum(known[q][1] for q in g.parts)
        for p in g.parts:
            p_lo, p_hi = known[p]
            others_lo = all_lo - p_lo
            others_hi = min(INFINITY, all_hi - p_hi)
            low = max(p_lo, t_lo - others_hi) if others_hi < INFINITY else p_lo
            high = min(p_hi, t_hi - others_lo) if t_hi < INFINITY else p_hi
            if (low, high) != (p_lo, p_hi):
                known[p] = (low, high)
                changed.append(p)
                all_lo, all_hi = all_lo - p_lo + low, all_hi - p_hi + high
        for cell in changed:
            for j in of_cell[cell]:
                if not queued[j]:
                    queued[j] = True
                    queue.append(j)
    return known


def protect(
    values: Mapping[K, int], groups: Sequence[Group[K]], threshold: int,
    primary: Mapping[K, tuple[int, int]] | None = None, fixed: frozenset[K] | set[K] = frozenset(),
) -> dict[K, Shown]:
    """What to show of each cell of `values` (see the module's docstring). `primary`: cells to suppress
    whatever their value, with the bounds a reader knows for them (e.g. a rating total of fewer than
    `threshold` ratings); by default every count from 1 to threshold - 1 is primary. `fixed`: cells that
    are not shown but that a reader is assumed to know (a remainder, e.g. sign-ups without a day): they
    count as exact and are never withheld (the careful assumption)."""
    small: dict[K, tuple[int, int]] = dict(primary or {})
    shown: dict[K, Shown] = {}
    for key, value in values.items():
        if key in fixed:
            shown[key] = "exact"
        elif key in small:
            shown[key] = "small" if value else "exact"
        elif 0 < value < threshold:
            shown[key] = "small"
            small[key] = (1, threshold - 1)
        else:
            shown[key] = "exact"
    # A group whose figures do not add up is left out: propagating contradictory sums does not converge
    # (bounds creep by the difference on every pass; a full core for minutes), and a reader cannot use
    # it to pin a true value either. public.py builds its groups so that they always add up.
    usable = [g for g in groups if g.total in values and all(p in values for p in g.parts)
              and values[g.total] == sum(values[p] for p in g.parts)]
    by_cell: dict[K, list[Group[K]]] = {}
    for g in usable:
        for member in (g.total, *g.parts):
            by_cell.setdefault(member, []).append(g)
    hopeless: set[K] = set()
    for round_ in range(len(values) + 1):
        known = bounds(values, usable, shown, small, threshold)
        pinned = [k for k, how in shown.items()
                  if how != "exact" and known[k][0] >= known[k][1] and k not in hopeless]
        if not pinned:
            return shown
        prior = {k: small.get(k, (threshold, INFINITY)) for k in pinned}
        if round_ >= CAREFUL_ROUNDS:
            _withhold_around(pinned, by_cell, values, shown, fixed, hopeless)
        elif not _withhold_one_more(pinned, prior, by_cell, values, shown, fixed, known, hopeless):
            return shown  # nothing left to withhold (cannot happen with consistent values)
    return shown


def _withhold_around(
    pinned: Sequence[K], by_cell: Mapping[K, Sequence[Group[K]]], values: Mapping[K, int], shown: dict[K, Shown],
    fixed: frozenset[K] | set[K], hopeless: set[K],
) -> None:
    """After CAREFUL_ROUNDS rounds, the coarse way that ends in a few more: withhold every published
    non-zero cell of every group of each cell still pinned (more hidden than needed, never less); a
    cell with none left around it is `hopeless`."""
    for cell in pinned:
        candidates = {p for g in by_cell.get(cell, ()) for p in (*g.parts, g.total)
                      if p != cell and p not in fixed and shown[p] == "exact" and values[p] > 0}
        if not candidates:
            hopeless.add(cell)
        for p in candidates:
            shown[p] = "withheld"


def _pins(g: Group[K], cell: K, prior: tuple[int, int], known: Mapping[K, tuple[int, int]]) -> bool:
    """Whether group `g` alone, with what is known of its other cells, leaves `cell` one value."""
    if cell == g.total:
        low, high = sum(known[p][0] for p in g.parts), sum(known[p][1] for p in g.parts)
    else:
        others = [p for p in g.parts if p != cell]
        t_lo, t_hi = known[g.total]
        low = t_lo - min(INFINITY, sum(known[p][1] for p in others))
        high = t_hi - sum(known[p][0] for p in others) if t_hi < INFINITY else INFINITY
    return max(low, prior[0]) >= min(high, prior[1])


def _withhold_one_more(
    pinned: Sequence[K], prior: Mapping[K, tuple[int, int]], by_cell: Mapping[K, Sequence[Group[K]]],
    values: Mapping[K, int], shown: dict[K, Shown], fixed: frozenset[K] | set[K],
    known: Mapping[K, tuple[int, int]], hopeless: set[K],
) -> bool:
    """Withhold one more cell for each pinned cell, in a group that pins it (the first with a
    candidate; the smallest published non-zero part, else the total): one round per wave of pinned
    cells, not one per cell. Cells another pinned cell's choice already covered in this round are
    skipped. A cell pinned by a group whose other cells are all zeros or assumed known (`fixed`) cannot
    be protected by withholding anything: it is left as it is (`hopeless`), instead of withholding every
    cell of its other groups one round at a time (with a session's data that cost a full core)."""
    withheld = False
    covered: set[K] = set()
    for cell in pinned:
        if cell in covered:
            continue
        groups = by_cell.get(cell, ())
        pinning = [g for g in groups if _pins(g, cell, prior[cell], known)]
        if any(all(p in fixed or values[p] == 0 for p in (*g.parts, g.total) if p != cell) for g in pinning):
            hopeless.add(cell)  # pinned by zeros and fixed cells alone: withholding cannot change that
            withheld = True
            continue
        for g in [*pinning, *(g for g in groups if g not in pinning)]:
            candidates = [p for p in (*g.parts, g.total)
                          if p != cell and p not in fixed and shown[p] == "exact" and values[p] > 0]
            if candidates:
                parts = [p for p in candidates if p != g.total]
                choice = min(parts, key=lambda p: values[p]) if parts else g.total
                shown[choice] = "withheld"
                covered.update((g.total, *g.parts))
                withheld = True
                break
    return withheld


def recoverable(
    values: Mapping[K, int], groups: Sequence[Group[K]], shown: Mapping[K, Shown], threshold: int,
    primary: Mapping[K, tuple[int, int]] | None = None,
) -> list[K]:
    """The suppressed cells a reader could pin to one value from what is shown (empty when safe)."""
    small = {k: (primary or {}).get(k, (1, threshold - 1)) for k, how in shown.items() if how == "small"}
    known = bounds(values, groups, shown, small, threshold)
    return [k for k, how in shown.items() if how != "exact" and known[k][0] >= known[k][1]]
