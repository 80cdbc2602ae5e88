"""Small-count suppression (services/reporting/disclosure.py, public.py): no count below the threshold is
shown, and an attacker who subtracts published parts from published totals (or solves every sum at once,
by brute force) cannot pin a suppressed count to one value."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime

from services.reporting.disclosure import Group, protect, recoverable
from services.reporting.public import DayCell, public_figures
from tests.unit.reporting import builders

T = 5


def brute_force_attack(values, groups, shown, threshold, cap=40):
    """Every assignment of the suppressed cells consistent with what is shown (exact values, "< t" = 1..t-1,
    withheld >= t, every sum); returns the cells that take a single value in all of them."""
    hidden = [k for k, how in shown.items() if how != "exact"]
    ranges = [range(1, threshold) if shown[k] == "small" else range(threshold, cap) for k in hidden]
    possible = {k: set() for k in hidden}
    for guess in itertools.product(*ranges):
        world = {k: values[k] for k, how in shown.items() if how == "exact"} | dict(zip(hidden, guess, strict=True))
        if all(world[g.total] == sum(world[p] for p in g.parts) for g in groups):
            for k, v in zip(hidden, guess, strict=True):
                possible[k].add(v)
    return [k for k, vs in possible.items() if len(vs) <= 1]


def random_tree(rng: random.Random, regions: int, editions: int, days: int, counts: tuple[int, ...]):
    """nation = regions; region = editions; edition = days (1 to each maximum of them): random counts."""
    values, groups, region_keys = {}, [], []
    for r in range(rng.randint(1, regions)):
        edition_keys = []
        for e in range(rng.randint(1, editions)):
            day_keys = [f"d{r}{e}{d}" for d in range(rng.randint(1, days))]
            for d in day_keys:
                values[d] = rng.choice(counts)
            values[f"e{r}{e}"] = sum(values[d] for d in day_keys)
            groups.append(Group(f"e{r}{e}", tuple(day_keys)))
            edition_keys.append(f"e{r}{e}")
        values[f"r{r}"] = sum(values[k] for k in edition_keys)
        groups.append(Group(f"r{r}", tuple(edition_keys)))
        region_keys.append(f"r{r}")
    values["n"] = sum(values[k] for k in region_keys)
    groups.append(Group("n", tuple(region_keys)))
    return values, groups


def test_a_small_day_is_shown_as_small_and_its_neighbour_withheld_so_subtraction_fails():
    values = {"total": 12, "d1": 10, "d2": 2}
    groups = [Group("total", ("d1", "d2"))]
    shown = protect(values, groups, T)
    assert shown["d2"] == "small"
    # the naive attack: total minus the published days
    published = [values[p] for p in ("d1", "d2") if shown[p] == "exact"]
    assert shown["total"] != "exact" or shown["d1"] != "exact"
    assert len(published) < 1 or shown["total"] != "exact"
    assert brute_force_attack(values, groups, shown, T) == []
    assert recoverable(values, groups, shown, T) == []


def test_when_the_only_neighbour_cannot_hide_it_the_total_is_withheld():
    values = {"total": 6, "d1": 5, "d2": 1}
    groups = [Group("total", ("d1", "d2"))]
    shown = protect(values, groups, T)
    assert shown["d2"] == "small"
    assert shown["total"] == "withheld"
    assert brute_force_attack(values, groups, shown, T) == []


def test_zeros_are_shown_and_big_counts_stay_exact():
    values = {"total": 30, "d1": 10, "d2": 20, "d3": 0}
    shown = protect(values, [Group("total", ("d1", "d2", "d3"))], T)
    assert set(shown.values()) == {"exact"}


def test_a_count_known_from_assumed_known_cells_costs_no_other_cell():
    # e1's 3 sign-ups all needed no approval: a reader is assumed to know that part (fixed), so e1 is
    # known whatever is withheld; withholding e2, e3 and the region one round at a time (what an earlier
    # version did, a round per cell of the region) would hide 30 people for nothing
    values = {"r": 33, "e1": 3, "e2": 10, "e3": 20, "e1.not_required": 3, "e1.approved": 0}
    groups = [Group("r", ("e1", "e2", "e3")), Group("e1", ("e1.not_required", "e1.approved"))]
    shown = protect(values, groups, T, fixed={"e1.not_required"})
    assert shown == {"r": "exact", "e1": "small", "e2": "exact", "e3": "exact",
                     "e1.not_required": "exact", "e1.approved": "exact"}
    # with a part that can be withheld instead, e1 is protected as before
    values["e1.not_required"], values["e1.approved"] = 0, 3
    shown = protect(values, groups, T, fixed={"e1.not_required"})
    assert shown["e1"] == "small" and shown["e2"] == "withheld"
    assert recoverable(values, groups, shown, T) == []


def test_random_trees_never_leak_a_suppressed_count():
    rng = random.Random(7)
    attacked = 0
    for _ in range(60):
        values, groups = random_tree(rng, regions=2, editions=2, days=3, counts=(0, 1, 2, 3, 4, 5, 6, 8, 12))
        shown = protect(values, groups, T)
        assert all(shown[k] != "exact" for k, v in values.items() if 0 < v < T), (values, shown)
        if sum(1 for how in shown.values() if how != "exact") <= 3:  # keep the brute force small
            assert brute_force_attack(values, groups, shown, T, cap=30) == [], (values, shown)
            attacked += any(how != "exact" for how in shown.values())
        assert recoverable(values, groups, shown, T) == []
    assert attacked >= 10


def test_public_figures_suppress_days_editions_and_totals_together():
    ed = builders.figures("wvdu-2027-twente", "twente", signups=12, not_required=12, assigned=0)
    cells = [DayCell("twente", ed.edition_id, date(2027, 11, 2), signups=10),
             DayCell("twente", ed.edition_id, date(2027, 11, 3), signups=2)]
    pub = public_figures([ed], cells, {}, T)
    assert pub.day("signups", ed.edition_id, date(2027, 11, 3)).shown == "small"
    # the attack: the edition's (or region's, or nation's) total minus the other day
    total = pub.edition("signups", ed.edition_id).value
    other = pub.day("signups", ed.edition_id, date(2027, 11, 2)).value
    assert total is None or other is None
    for level in (pub.region("signups", "twente").value, pub.national("signups").value):
        assert level is None or other is None
    records = pub.records(datetime(2027, 1, 1, tzinfo=UTC))
    for r in records:
        for name in ("signups", "assigned", "feedback"):
            assert r[name] is None or r[name] == 0 or r[name] >= T


def test_no_average_of_fewer_ratings_than_the_threshold():
    ed = builders.figures("e1", "twente", feedback_count=4, rating_total=17)
    pub = public_figures([ed], [], {}, T)
    assert pub.average("edition", "e1") is None
    assert pub.edition("feedback", "e1").shown == "small"
    ed = builders.figures("e1", "twente", feedback_count=6, rating_total=24)
    assert public_figures([ed], [], {}, T).average("edition", "e1") == 4.0


def test_the_coarse_rounds_that_bound_the_work_leak_nothing_either(monkeypatch):
    from services.reporting import disclosure

    monkeypatch.setattr(disclosure, "CAREFUL_ROUNDS", 0)  # every round the coarse way
    rng = random.Random(11)
    for _ in range(40):
        values, groups = random_tree(rng, regions=1, editions=4, days=4, counts=(0, 1, 2, 3, 4, 5, 7, 9, 14))
        shown = protect(values, groups, T)
        assert all(shown[k] != "exact" for k, v in values.items() if 0 < v < T), (values, shown)
        assert recoverable(values, groups, shown, T) == [], (values, shown)


def test_figures_read_while_they_catch_up_still_make_groups_that_add_up(monkeypatch):
    """Counts read while one consumer is ahead of another disagree (a match counted before its sign-up,
    approvals beyond the sign-ups, days beyond the edition, e-mails not in any template): every group
    public_figures hands to `protect` still adds up. (Contradictory sums made the bounds creep: one
    dashboard refresh took 2-4 minutes of a full core.)"""
    from services.reporting import public

    seen: list[Group] = []

    def checked(values, groups, threshold, primary=None, fixed=frozenset()):
        for g in groups:
            assert values[g.total] == sum(values[p] for p in g.parts), g
        seen.extend(groups)
        return protect(values, groups, threshold, primary=primary, fixed=fixed)

    monkeypatch.setattr(public, "protect", checked)
    rng = random.Random(5)
    day = date(2027, 11, 2)
    editions, cells, templates = [], [], {}
    for i in range(12):
        e = f"e{i}"
        editions.append(builders.figures(e, rng.choice(["twente", "drenthe"]), **{
            name: rng.randint(0, 30) for name in ("signups", "pending_approval", "approved", "not_required", "assigned",
                                                  "first_choice", "emails_sent", "emails_failed", "feedback_count")}))
        cells.append(DayCell(editions[-1].region, e, day, signups=rng.randint(0, 40), assigned=rng.randint(0, 40)))
        templates[e] = [builders.template("confirmation", rng.randint(0, 20), rng.randint(0, 3)),
                        builders.template("assignment", rng.randint(0, 20), rng.randint(0, 3))]
    public_figures(editions, cells, templates, T)
    assert len(seen) > 100


def test_a_group_whose_figures_do_not_add_up_is_left_out():
    """Contradictory sums tell a reader nothing reliable, and propagating them does not converge."""
    values = {"t": 20, "a": 3, "b": 12, "u": 40, "c": 20, "d": 25}  # 3 + 12 != 20 and 20 + 25 != 40
    assert protect(values, [Group("t", ("a", "b")), Group("u", ("c", "d"))], T) == protect(values, [], T)
    values["d"] = 20  # "u" adds up now and is used; "t" still does not
    assert protect(values, [Group("t", ("a", "b")), Group("u", ("c", "d"))], T) == protect(values, [Group("u", ("c", "d"))], T)
