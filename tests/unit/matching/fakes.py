"""`FakeRepository`: matching's repository in memory, with the same methods as
`services.matching.repository.Repository` (tests/unit/matching/test_service.py checks that). It
executes what it is told, like the SQL; the rules stay in domain.py. `clock` is the database's now()
(bookkeeping stamps and the re-match debounce); the platform clock's time comes in as `now` arguments.
`steps`: the scheduled steps, (kind, key) -> due time.
`FakeRunLocks`: the run locks (`RunLocks`), with the locks other live instances hold.
`given()` / `with_seat_offer()`: a fake unit of work over a seeded edition.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from services.matching import domain, engine
from services.matching.domain import (
    Assignment,
    Edition,
    EditionOverview,
    MatchOutcome,
    MatchRun,
    Offer,
    Pair,
    Participant,
    RunFigures,
    SeatOffer,
    StillValid,
)

from tests.unit.fakes import FakeUnitOfWork

from .builders import EDITION, RUN, T0, offer, participant, told


@dataclass
class Row:
    """A row of `assignments`."""

    edition_id: str
    rank: int
    run_id: uuid.UUID
    status: str = "active"
    assigned_at: datetime = T0
    offered_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None


class FakeOverrides:
    """Issue 11: overrides and run explanations, in memory (mixed into FakeRepository)."""

    participants: dict[str, tuple[str, Participant]]
    offers: dict[str, tuple[str, Offer]]

    async def participant_of(self, edition_id: str, signup_id: str) -> Participant | None:
        e, p = self.participants.get(signup_id, ("", None))
        return p if p is not None and e == edition_id and p.status == "active" and domain.may_be_matched(p) else None

    async def offer_of(self, edition_id: str, offer_id: str) -> Offer | None:
        e, o = self.offers.get(offer_id, ("", None))
        return o if o is not None and e == edition_id and o.status == "published" else None

    async def add_override(self, o: domain.Override) -> None:
        self.overrides[o.id] = o

    async def overrides_of(self, edition_id: str, live_only: bool = True) -> list[domain.Override]:
        found = [o for o in self.overrides.values() if o.edition_id == edition_id and (not live_only or o.removed_at is None)]
        return sorted(found, key=lambda o: (o.created_at, o.id))

    async def override(self, edition_id: str, override_id: uuid.UUID) -> domain.Override | None:
        o = self.overrides.get(override_id)
        return o if o is not None and o.edition_id == edition_id else None

    async def remove_override(self, override_id: uuid.UUID, removed_by: str, removed_at: datetime) -> None:
        o = self.overrides[override_id]
        if o.removed_at is None:
            self.overrides[override_id] = replace(o, removed_by=removed_by, removed_at=removed_at)

    async def insert_explanations(self, run_id: uuid.UUID, found: Sequence[domain.PersonExplanation]) -> None:
        for e in found:
            self.explanations[run_id, e.signup_id] = e

    async def explanations_of(self, run_id: uuid.UUID, signup_id: str | None = None) -> list[domain.PersonExplanation]:
        return [e for (r, sid), e in sorted(self.explanations.items(), key=lambda kv: kv[0][1])
                if r == run_id and signup_id in (None, sid)]


class FakeRepository(FakeOverrides):
    def __init__(self) -> None:
        self.overrides: dict[uuid.UUID, domain.Override] = {}
        self.explanations: dict[tuple[uuid.UUID, str], domain.PersonExplanation] = {}
        self.clock = T0
        self.editions: dict[str, Edition] = {}
        self.rematch_since: dict[str, datetime] = {}
        self.offers: dict[str, tuple[str, Offer]] = {}  # offer_id -> (edition_id, offer)
        self.participants: dict[str, tuple[str, Participant]] = {}
        self.rows: dict[Pair, Row] = {}
        self.outcomes: dict[str, tuple[str, MatchOutcome]] = {}
        self.runs: dict[uuid.UUID, MatchRun] = {}
        self.steps: dict[tuple[str, str], datetime] = {}

    # --- editions ----------------------------------------------------------------------------
    async def upsert_edition(self, edition: Edition) -> None:
        old = self.editions.get(edition.id)
        self.editions[edition.id] = replace(edition, status=old.status) if old else edition

    async def set_edition_status(self, edition_id: str, status: str) -> None:
        if edition_id in self.editions:
            self.editions[edition_id] = replace(self.editions[edition_id], status=status)
            self.rematch_since.pop(edition_id, None)

    async def edition(self, edition_id: str, lock: bool | str = False) -> Edition | None:
        found = self.editions.get(edition_id)
        return replace(found, rematch_pending=edition_id in self.rematch_since) if found else None

    async def has_published_run(self, edition_id: str) -> bool:
        return any(r.edition_id == edition_id and r.status == "done" for r in self.runs.values())

    async def mark_for_rematch(self, edition_id: str) -> None:
        if edition_id in self.editions:
            self.rematch_since.setdefault(edition_id, self.clock)

    async def clear_rematch(self, edition_id: str) -> None:
        self.rematch_since.pop(edition_id, None)

    def _in(self, edition_id: str, regions: Collection[str] | None) -> bool:
        return regions is None or self.editions[edition_id].region in regions

    async def editions_to_rematch(self, older_than_seconds: float, regions: Collection[str] | None = None) -> list[str]:
        due = [
            (since, e) for e, since in self.rematch_since.items()
            if since < self.clock - timedelta(seconds=older_than_seconds) and self._in(e, regions)
            and self.editions[e].status == "open"
        ]
        return [e for _, e in sorted(due)]

    async def edition_overview(self, edition_id: str) -> EditionOverview | None:
        found = await self.edition(edition_id)
        if found is None:
            return None
        offers = [o for e, o in self.offers.values() if e == edition_id and o.status == "published"]
        rows = [r for r in self.rows.values() if r.edition_id == edition_id]
        waiting = [p for e, p in self.participants.values() if e == edition_id and p.status == "active" and p.approval == "pending"]
        return EditionOverview(
            found.id, found.region, found.status, found.rematch_pending, len(offers), sum(o.capacity for o in offers),
            len(await self.participants_of(edition_id)), sum(r.status == "active" for r in rows),
            sum(r.status == "offered" for r in rows), len(waiting), found.match_at_deadline,
        )

    # --- scheduled steps ---------------------------------------------------------------------
    async def schedule(self, kind: str, key: str, due_at: datetime) -> None:
        self.steps[kind, key] = due_at

    async def cancel_step(self, kind: str, key: str) -> None:
        self.steps.pop((kind, key), None)

    # --- offers and participants -------------------------------------------------------------
    async def add_offer(self, edition_id: str, offer: Offer) -> bool:
        if offer.id in self.offers:
            return False
        self.offers[offer.id] = (edition_id, offer)
        return True

    async def offer(self, offer_id: str) -> Offer | None:
        return self.offers[offer_id][1] if offer_id in self.offers else None

    async def offers_of(self, edition_id: str) -> list[Offer]:
        return [o for e, o in self.offers.values() if e == edition_id]

    async def update_offer(self, offer: Offer) -> None:
        edition_id, old = self.offers[offer.id]
        self.offers[offer.id] = (edition_id, replace(offer, status=old.status))

    async def set_offer_status(self, offer_id: str, status: str) -> None:
        edition_id, offer = self.offers[offer_id]
        self.offers[offer_id] = (edition_id, replace(offer, status=status))

    async def add_participants(self, signups: Sequence[tuple[str, Participant]]) -> set[str]:
        added: set[str] = set()
        for edition_id, participant in signups:
            if participant.signup_id not in self.participants:
                self.participants[participant.signup_id] = (edition_id, participant)
                added.add(participant.signup_id)
        return added

    async def participant(self, signup_id: str) -> Participant | None:
        return self.participants[signup_id][1] if signup_id in self.participants else None

    async def participants_of(self, edition_id: str) -> list[Participant]:
        return [p for e, p in self.participants.values() if e == edition_id and domain.may_be_matched(p)]

    async def set_participant_status(self, signup_id: str, status: str) -> None:
        edition_id, p = self.participants[signup_id]
        self.participants[signup_id] = (edition_id, replace(p, status=status))

    async def set_approval(self, signup_id: str, approval: str) -> None:
        edition_id, p = self.participants[signup_id]
        self.participants[signup_id] = (edition_id, replace(p, approval=approval))

    async def change_participant(
        self, signup_id: str, choices: Sequence[str], available: Sequence[date] | None, max_visits: int
    ) -> None:
        edition_id, p = self.participants[signup_id]
        changed = replace(p, choices=list(choices), available=None if available is None else list(available), max_visits=max_visits)
        self.participants[signup_id] = (edition_id, changed)

    # --- assignments -------------------------------------------------------------------------
    def _assignment(self, pair: Pair) -> Assignment:
        row = self.rows[pair]
        return Assignment(pair[0], pair[1], row.rank, row.status, row.run_id, row.assigned_at)

    async def held_assignments(
        self, edition_id: str | None = None, offer_id: str | None = None, signup_id: str | None = None
    ) -> list[Assignment]:
        return [
            self._assignment(pair) for pair, row in self.rows.items()
            if row.status in ("active", "offered") and edition_id in (None, row.edition_id)
            and offer_id in (None, pair[1]) and signup_id in (None, pair[0])
        ]

    async def set_assignment_status(self, pairs: Sequence[Pair], status: str) -> None:
        for pair in pairs:
            self.rows[pair].status = status

    async def assignments_of(self, edition_id: str) -> list[Assignment]:
        return [self._assignment(p) for p in sorted(self.rows, key=lambda p: (p[1], p[0]))
                if self.rows[p].edition_id == edition_id and self.rows[p].status == "active"]

    async def declined_pairs(self, edition_id: str) -> set[Pair]:
        return {p for p, r in self.rows.items() if r.edition_id == edition_id and r.status in ("declined", "expired")}

    async def displaced_participants(self, edition_id: str) -> set[str]:
        holding = {p[0] for p, r in self.rows.items() if r.status in ("active", "offered")}
        active = {p.signup_id for p in await self.participants_of(edition_id)}
        return {p[0] for p, r in self.rows.items() if r.edition_id == edition_id and r.status == "displaced"} & active - holding

    async def insert_assignments(self, edition_id: str, run_id: uuid.UUID, assignments: Sequence[engine.Assignment]) -> None:
        for a in assignments:
            old = self.rows.get((a.participant, a.offer))
            self.rows[a.participant, a.offer] = replace(old, status="active", rank=a.rank, run_id=run_id, assigned_at=self.clock) \
                if old else Row(edition_id, a.rank, run_id, assigned_at=self.clock)

    async def insert_seat_offers(
        self, edition_id: str, run_id: uuid.UUID, seat_offers: Sequence[tuple[engine.Assignment, datetime]], now: datetime
    ) -> None:
        for a, expires in seat_offers:
            self.rows[a.participant, a.offer] = Row(edition_id, a.rank, run_id, "offered", now, now, expires)

    async def still_valid(self, edition_id: str) -> StillValid:
        return StillValid(
            {o.id for e, o in self.offers.values() if e == edition_id and o.status == "published"},
            {p.signup_id for p in await self.participants_of(edition_id)},
            {p for p, r in self.rows.items() if r.edition_id == edition_id and r.status == "offered"},
        )

    # --- outcomes ----------------------------------------------------------------------------
    async def outcomes_of(self, edition_id: str) -> dict[str, MatchOutcome]:
        return {sid: o for sid, (e, o) in self.outcomes.items() if e == edition_id}

    async def upsert_outcomes(self, edition_id: str, run_id: uuid.UUID, outcomes: Sequence[MatchOutcome]) -> None:
        for o in outcomes:  # the table keeps no explanation text
            self.outcomes[o.signup_id] = (edition_id, replace(o, reason=""))

    async def set_outcome(self, signup_id: str, state: str) -> None:
        if signup_id in self.outcomes:
            edition_id, _ = self.outcomes[signup_id]
            self.outcomes[signup_id] = (edition_id, MatchOutcome(signup_id, state))

    async def forget_outcome(self, signup_id: str) -> None:
        self.outcomes.pop(signup_id, None)

    async def waiting_list(self, edition_id: str) -> list[MatchOutcome]:
        others = [o for o in (await self.outcomes_of(edition_id)).values() if o.state != "assigned"]
        return sorted(others, key=lambda o: (o.position is None, o.position or 0, o.signup_id))

    # --- runs --------------------------------------------------------------------------------
    async def start_run(
        self, run_id: uuid.UUID, edition_id: str, kind: str, status: str = "running", correlation_id: uuid.UUID | None = None
    ) -> bool:
        if any(r.edition_id == edition_id and r.status in ("queued", "running") for r in self.runs.values()):
            return False
        queued = status == "queued"
        self.runs[run_id] = MatchRun(
            run_id, edition_id, kind, status, "queued" if queued else "loading", 0.0, self.clock,
            attempt=0 if queued else 1, correlation_id=correlation_id,
        )
        return True

    async def run(self, run_id: uuid.UUID, lock: bool = False) -> MatchRun | None:
        return self.runs.get(run_id)

    async def runs_of(self, edition_id: str) -> list[MatchRun]:
        return sorted((r for r in self.runs.values() if r.edition_id == edition_id), key=lambda r: r.started_at, reverse=True)

    async def runs_to_take_over(self, regions: Collection[str] | None = None) -> list[MatchRun]:
        found = [r for r in self.runs.values() if r.status in ("queued", "running") and self._in(r.edition_id, regions)]
        return sorted(found, key=lambda r: r.started_at)

    async def begin_run(self, run_id: uuid.UUID) -> None:
        run = self.runs[run_id]
        started = self.clock if run.status == "queued" else run.started_at
        self.runs[run_id] = replace(run, status="running", stage="loading", progress=0.0, attempt=run.attempt + 1, started_at=started)

    async def set_progress(self, run_id: uuid.UUID, attempt: int, stage: str, progress: float) -> None:
        run = self.runs[run_id]
        if run.status == "running" and run.attempt == attempt:
            self.runs[run_id] = replace(run, stage=stage, progress=progress)

    async def finish_run(self, run_id: uuid.UUID, figures: RunFigures) -> None:
        self.runs[run_id] = replace(self.runs[run_id], status="done", stage="done", progress=1.0, finished_at=self.clock, figures=figures)

    async def fail_queued_runs(self, edition_id: str, error: str) -> None:
        for run in list(self.runs.values()):
            if run.edition_id == edition_id and run.status == "queued":
                await self.fail_run(run.id, error)

    async def fail_run(self, run_id: uuid.UUID, error: str, attempt: int | None = None) -> None:
        run = self.runs[run_id]
        if run.status in ("queued", "running") and attempt in (None, run.attempt):
            self.runs[run_id] = replace(run, status="failed", stage="failed", error=error[:2000], finished_at=self.clock)

    # --- seat offers -------------------------------------------------------------------------
    def _seat_offer(self, pair: Pair, now: datetime) -> SeatOffer:
        row = self.rows[pair]
        assert row.offered_at is not None and row.expires_at is not None
        return SeatOffer(pair[0], pair[1], row.rank, row.run_id, row.status, row.offered_at, row.expires_at, row.ended_at, now)

    async def seat_offer_of(self, edition_id: str, signup_id: str, now: datetime) -> SeatOffer | None:
        mine = [p for p, r in self.rows.items() if p[0] == signup_id and r.edition_id == edition_id and r.offered_at]
        mine.sort(key=lambda p: (self.rows[p].status == "offered", self.rows[p].offered_at), reverse=True)
        return self._seat_offer(mine[0], now) if mine else None

    async def seat_offers_of(self, edition_id: str, now: datetime, open_only: bool = False) -> list[SeatOffer]:
        found = [
            p for p, r in self.rows.items()
            if r.edition_id == edition_id and r.offered_at and (not open_only or r.status == "offered")
        ]
        return [self._seat_offer(p, now) for p in sorted(found, key=lambda p: (self.rows[p].offered_at, p[0]))]

    async def end_seat_offer(self, signup_id: str, offer_id: str, status: str, now: datetime) -> None:
        row = self.rows.get((signup_id, offer_id))
        if row and row.status == "offered":
            row.status, row.ended_at = status, now

    async def editions_with_expired_seat_offers(self, now: datetime, regions: Collection[str] | None = None) -> list[str]:
        return sorted({
            r.edition_id for r in self.rows.values()
            if r.status == "offered" and r.expires_at and r.expires_at <= now and self._in(r.edition_id, regions)
        })


class FakeClock:
    """The platform clock (`rt.clock`) at a moment of the test's choosing; `now` is read on every call."""

    def __init__(self, now: datetime = T0) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


class FakeRunLocks:
    """`RunLocks` in memory: `held` by this instance, `others` held by other live instances (a run
    executed elsewhere); `lose(run_id)` makes `check` report a lock lost to another instance."""

    def __init__(self, others: Collection[uuid.UUID] = ()) -> None:
        self.held: set[uuid.UUID] = set()
        self.others: set[uuid.UUID] = set(others)
        self.taken: list[uuid.UUID] = []  # every lock this instance took, in order
        self._lost: set[uuid.UUID] = set()
        self.closed = False

    async def take(self, run_id: uuid.UUID) -> bool:
        if run_id in self.held or run_id in self.others:
            return False
        self.held.add(run_id)
        self.taken.append(run_id)
        return True

    async def release(self, run_id: uuid.UUID) -> None:
        self.held.discard(run_id)

    async def check(self) -> set[uuid.UUID]:
        lost, self._lost = self._lost, set()
        return lost

    async def close(self) -> None:
        self.held.clear()
        self.closed = True

    def lose(self, run_id: uuid.UUID) -> None:
        """Another instance took the run's lock (this instance's session was lost meanwhile)."""
        self.held.discard(run_id)
        self.others.add(run_id)
        self._lost.add(run_id)


# --- a seeded fake unit of work -------------------------------------------------------------------

def cid(signup_id: str) -> uuid.UUID:
    """The correlation id of a participant's sign-up request."""
    return uuid.uuid5(uuid.NAMESPACE_URL, signup_id)


def given(
    offers: tuple[domain.Offer, ...] = (offer("a"),),
    people: tuple[domain.Participant, ...] = (),
    published: bool = True,
) -> FakeUnitOfWork[FakeRepository]:
    """An edition with offers and participants; `published`: a run of it has finished."""
    repo = FakeRepository()
    repo.editions[EDITION] = domain.Edition(EDITION, "twente")
    for o in offers:
        repo.offers[o.id] = (EDITION, o)
    for p in people:
        repo.participants[p.signup_id] = (EDITION, p)
    if published:
        repo.runs[RUN] = domain.MatchRun(RUN, EDITION, "full", "done", "done", 1.0, T0)
    return FakeUnitOfWork(repo)


def with_seat_offer(
    signup_id: str = "p1", offer_id: str = "a", status: str = "offered", expires_in: timedelta = timedelta(hours=1),
    correlation_id: uuid.UUID | None = None,
) -> FakeUnitOfWork[FakeRepository]:
    """A published edition where `signup_id` was offered a seat on `offer_id` (and told so)."""
    uow = given(people=(participant(signup_id, [offer_id], correlation_id=correlation_id or cid(signup_id)),))
    uow.repo.rows[signup_id, offer_id] = Row(EDITION, 1, RUN, status, T0, T0 - timedelta(hours=1), T0 + expires_in)
    uow.repo.outcomes[signup_id] = (EDITION, told(signup_id, "offered"))
    return uow
