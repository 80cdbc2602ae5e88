"""SQL for the matching schema: `Repository(conn)` on a transaction's connection, and `RunLocks`, the
session advisory locks an instance holds on the runs it executes.

It reads facts and executes the decisions of `domain.py`; it decides nothing. Every method returns
domain types (dataclasses), never asyncpg Records or dicts. `regions` arguments are the regions an
instance serves (None: every region). `now` arguments are the platform clock's time (`rt.clock`),
passed in by the use cases: seat offers are made, checked and expired against it. Only the re-match
debounce (a real-time wait for more changes) and bookkeeping stamps use the database's `now()`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Literal

import asyncpg
import structlog

from estafette.runtime import scheduler
from services.matching import engine
from services.matching.domain import (
    Assignment,
    ChoiceReason,
    Edition,
    EditionOverview,
    MatchOutcome,
    MatchRun,
    Offer,
    Override,
    Pair,
    PersonExplanation,
    Participant,
    RunFigures,
    SeatOffer,
    StillValid,
)

_OFFER_COLUMNS = "id, host_org, title, date, capacity, max_per_org, format, location, status, sequence"
_PARTICIPANT_COLUMNS = (
    "signup_id, org, language, choices, available, max_visits, signed_up_at, status, correlation_id, approval"
)
#: `$1` is the clock's now (the moment a seat offer's state is read at).
_SEAT_OFFER_COLUMNS = (
    "signup_id, offer_id, rank, run_id, status, offered_at, offer_expires_at AS expires_at,"
    " offer_ended_at AS ended_at, $1::timestamptz AS checked_at"
)
_EDITION_COLUMNS = (
    "id, region, status, dirty_since IS NOT NULL AS rematch_pending, requires_approval, match_at_deadline, signup_deadline"
)
#: Participants a run takes in: active, and not waiting for their employer's approval (domain.may_be_matched).
_MATCHED = "status = 'active' AND approval <> 'pending'"
_RUN_COLUMNS = (
    "id, edition_id, kind, status, stage, progress, started_at, finished_at, error, attempt, correlation_id,"
    " input_hash, participants, offers, assigned, newly_assigned, coalesce(newly_offered, 0) AS newly_offered,"
    " waitlisted, unmatched, rank_cost, duration_ms"
)
_FIGURES = tuple(RunFigures.__dataclass_fields__)
log = structlog.get_logger(__name__)


def _pairs(rows: Iterable[asyncpg.Record]) -> set[Pair]:
    return {(r["signup_id"], r["offer_id"]) for r in rows}


def _regions(regions: Collection[str] | None) -> list[str] | None:
    """A `$n::text[]` argument: the served regions, or NULL for every region."""
    return None if regions is None else sorted(regions)


# --- overrides and explanations (issue 11) ---------------------------------------------------
_OVERRIDE_COLUMNS = "id, edition_id, signup_id, offer_id, kind, reason, created_by, created_at, removed_by, removed_at"


class OverridesRepository:
    """Mixed into `Repository`: the organisers' overrides and the runs' explanations."""

    conn: asyncpg.Connection

    async def participant_of(self, edition_id: str, signup_id: str) -> Participant | None:
        """A sign-up of the edition that a run takes in (active, not waiting for approval)."""
        row = await self.conn.fetchrow(
            f"SELECT {_PARTICIPANT_COLUMNS} FROM participants WHERE signup_id = $1 AND edition_id = $2 AND {_MATCHED}",
            signup_id, edition_id,
        )
        return Participant(**dict(row)) if row else None

    async def offer_of(self, edition_id: str, offer_id: str) -> Offer | None:
        """A published offer of the edition."""
        row = await self.conn.fetchrow(
            f"SELECT {_OFFER_COLUMNS} FROM offers WHERE id = $1 AND edition_id = $2 AND status = 'published'",
            offer_id, edition_id,
        )
        return Offer(**dict(row)) if row else None

    async def add_override(self, o: Override) -> None:
        await self.conn.execute(
            f"INSERT INTO match_overrides ({_OVERRIDE_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            o.id, o.edition_id, o.signup_id, o.offer_id, o.kind, o.reason, o.created_by, o.created_at,
            o.removed_by, o.removed_at,
        )

    async def overrides_of(self, edition_id: str, live_only: bool = True) -> list[Override]:
        """Oldest first; with `live_only` False the removed ones too."""
        rows = await self.conn.fetch(
            f"SELECT {_OVERRIDE_COLUMNS} FROM match_overrides WHERE edition_id = $1 AND ($2 OR removed_at IS NULL)"
            " ORDER BY created_at, id",
            edition_id, not live_only,
        )
        return [Override(**dict(r)) for r in rows]

    async def override(self, edition_id: str, override_id: uuid.UUID) -> Override | None:
        row = await self.conn.fetchrow(
            f"SELECT {_OVERRIDE_COLUMNS} FROM match_overrides WHERE id = $1 AND edition_id = $2", override_id, edition_id
        )
        return Override(**dict(row)) if row else None

    async def remove_override(self, override_id: uuid.UUID, removed_by: str, removed_at: datetime) -> None:
        await self.conn.execute(
            "UPDATE match_overrides SET removed_by = $2, removed_at = $3 WHERE id = $1 AND removed_at IS NULL",
            override_id, removed_by, removed_at,
        )

    async def insert_explanations(self, run_id: uuid.UUID, found: Sequence[PersonExplanation]) -> None:
        await self.conn.copy_records_to_table(
            "run_explanations", columns=["run_id", "signup_id", "code", "text", "ranks", "choices"],
            records=[
                (run_id, e.signup_id, e.code, e.text, e.ranks,
                 json.dumps([{"offer_id": c.offer_id, "rank": c.rank, "reason": c.reason} for c in e.choices]))
                for e in found
            ],
        )

    async def explanations_of(self, run_id: uuid.UUID, signup_id: str | None = None) -> list[PersonExplanation]:
        rows = await self.conn.fetch(
            "SELECT signup_id, code, text, ranks, choices FROM run_explanations WHERE run_id = $1"
            " AND ($2::text IS NULL OR signup_id = $2) ORDER BY signup_id",
            run_id, signup_id,
        )
        return [
            PersonExplanation(r["signup_id"], r["code"], r["text"], list(r["ranks"]),
                              [ChoiceReason(**c) for c in json.loads(r["choices"])])
            for r in rows
        ]


class Repository(OverridesRepository):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- editions ----------------------------------------------------------------------------
    async def upsert_edition(self, edition: Edition) -> None:
        """The edition as opened (its status is left as it is: a redelivery never reopens it)."""
        await self.conn.execute(
            "INSERT INTO editions (id, region, requires_approval, match_at_deadline, signup_deadline)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET region = $2, requires_approval = $3,"
            " match_at_deadline = $4, signup_deadline = $5",
            edition.id, edition.region, edition.requires_approval, edition.match_at_deadline, edition.signup_deadline,
        )

    async def set_edition_status(self, edition_id: str, status: str) -> None:
        """closed or cancelled: never matched again, so a pending re-match is dropped too."""
        await self.conn.execute(
            "UPDATE editions SET status = $2, dirty_since = NULL WHERE id = $1", edition_id, status
        )

    async def edition(self, edition_id: str, lock: bool | Literal["share"] = False) -> Edition | None:
        """`lock`: serialise with the runs, answers and consumers that change this edition (they lock it too);
        "share": only with those that lock it wholly (a run writing its result), not with each other, so
        that instances adding sign-ups of one edition side by side do not wait for one another."""
        row = await self.conn.fetchrow(
            f"SELECT {_EDITION_COLUMNS} FROM editions WHERE id = $1"
            + {False: "", True: " FOR UPDATE", "share": " FOR SHARE"}[lock],
            edition_id,
        )
        return Edition(**dict(row)) if row else None

    async def has_published_run(self, edition_id: str) -> bool:
        """True once a run of the edition finished: its assignments were published."""
        return await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM match_runs WHERE edition_id = $1 AND status = 'done')", edition_id
        )

    async def mark_for_rematch(self, edition_id: str) -> None:
        await self.conn.execute("UPDATE editions SET dirty_since = coalesce(dirty_since, now()) WHERE id = $1", edition_id)

    async def clear_rematch(self, edition_id: str) -> None:
        await self.conn.execute("UPDATE editions SET dirty_since = NULL WHERE id = $1", edition_id)

    async def editions_to_rematch(self, older_than_seconds: float, regions: Collection[str] | None = None) -> list[str]:
        """Open editions of `regions` marked for re-match at least `older_than_seconds` ago."""
        rows = await self.conn.fetch(
            "SELECT id FROM editions WHERE status = 'open' AND dirty_since < now() - make_interval(secs => $1)"
            " AND ($2::text[] IS NULL OR region = ANY($2)) ORDER BY dirty_since",
            older_than_seconds, _regions(regions),
        )
        return [r["id"] for r in rows]

    async def edition_overview(self, edition_id: str) -> EditionOverview | None:
        row = await self.conn.fetchrow(
            "SELECT e.id, e.region, e.status, e.dirty_since IS NOT NULL AS rematch_pending,"
            " (SELECT count(*) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS offers,"
            " (SELECT coalesce(sum(capacity), 0) FROM offers o WHERE o.edition_id = e.id AND o.status = 'published') AS seats,"
            f" (SELECT count(*) FROM participants p WHERE p.edition_id = e.id AND p.{_MATCHED}) AS participants,"
            " (SELECT count(*) FROM assignments a WHERE a.edition_id = e.id AND a.status = 'active') AS assignments,"
            " (SELECT count(*) FROM assignments a WHERE a.edition_id = e.id AND a.status = 'offered') AS seat_offers_open,"
            " (SELECT count(*) FROM participants p WHERE p.edition_id = e.id AND p.status = 'active'"
            "  AND p.approval = 'pending') AS awaiting_approval, e.match_at_deadline"
            " FROM editions e WHERE e.id = $1",
            edition_id,
        )
        return EditionOverview(**dict(row)) if row else None

    # --- scheduled steps (runtime/scheduler.py), in the use case's transaction ---------------------
    async def schedule(self, kind: str, key: str, due_at: datetime) -> None:
        await scheduler.schedule(self, kind, key, due_at)

    async def cancel_step(self, kind: str, key: str) -> None:
        await scheduler.cancel(self, kind, key)

    # --- offers and participants (matching's copy of registration's data) ---------------------
    async def add_offer(self, edition_id: str, offer: Offer) -> bool:
        """False when the offer is known already."""
        return bool(await self.conn.fetchval(
            "INSERT INTO offers (id, edition_id, host_org, title, date, capacity, max_per_org, format, location, sequence)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO NOTHING RETURNING 1",
            offer.id, edition_id, offer.host_org, offer.title, offer.date, offer.capacity, offer.max_per_org,
            offer.format, offer.location, offer.sequence,
        ))

    async def update_offer(self, offer: Offer) -> None:
        """The offer's new version (OfferChanged): every field of the copy but its status."""
        o = offer
        await self.conn.execute(
            "UPDATE offers SET host_org = $2, title = $3, date = $4, capacity = $5, max_per_org = $6, format = $7,"
            " location = $8, sequence = $9 WHERE id = $1",
            o.id, o.host_org, o.title, o.date, o.capacity, o.max_per_org, o.format, o.location, o.sequence,
        )

    async def offer(self, offer_id: str) -> Offer | None:
        row = await self.conn.fetchrow(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE id = $1", offer_id)
        return Offer(**dict(row)) if row else None

    async def offers_of(self, edition_id: str) -> list[Offer]:
        """All offers, cancelled ones included (the engine gives those no seats but keeps choice ranks)."""
        rows = await self.conn.fetch(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE edition_id = $1", edition_id)
        return [Offer(**dict(r)) for r in rows]

    async def set_offer_status(self, offer_id: str, status: str) -> None:
        await self.conn.execute("UPDATE offers SET status = $2 WHERE id = $1", offer_id, status)

    async def add_participants(self, signups: Sequence[tuple[str, Participant]]) -> set[str]:
        """Stores the sign-ups not known yet (the first of an id given twice); answers their ids."""
        fresh: dict[str, tuple[str, Participant]] = {}
        for edition_id, p in signups:
            fresh.setdefault(p.signup_id, (edition_id, p))
        known = await self.conn.fetch(
            "SELECT signup_id FROM participants WHERE signup_id = ANY($1::text[])", list(fresh))
        for row in known:
            del fresh[row["signup_id"]]
        if fresh:  # executemany: one round trip (array columns rule out unnest)
            await self.conn.executemany(
                "INSERT INTO participants (signup_id, edition_id, org, language, choices, available,"
                " max_visits, signed_up_at, correlation_id, approval) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                " ON CONFLICT (signup_id) DO NOTHING",
                [(p.signup_id, edition_id, p.org, p.language, p.choices, p.available, p.max_visits,
                  p.signed_up_at, p.correlation_id, p.approval) for edition_id, p in fresh.values()],
            )
        return set(fresh)

    async def participant(self, signup_id: str) -> Participant | None:
        row = await self.conn.fetchrow(f"SELECT {_PARTICIPANT_COLUMNS} FROM participants WHERE signup_id = $1", signup_id)
        return Participant(**dict(row)) if row else None

    async def participants_of(self, edition_id: str) -> list[Participant]:
        """The participants a run takes in: active and not waiting for approval (domain.may_be_matched)."""
        rows = await self.conn.fetch(
            f"SELECT {_PARTICIPANT_COLUMNS} FROM participants WHERE edition_id = $1 AND {_MATCHED}", edition_id
        )
        return [Participant(**dict(r)) for r in rows]

    async def set_participant_status(self, signup_id: str, status: str) -> None:
        await self.conn.execute("UPDATE participants SET status = $2 WHERE signup_id = $1", signup_id, status)

    async def set_approval(self, signup_id: str, approval: str) -> None:
        await self.conn.execute("UPDATE participants SET approval = $2 WHERE signup_id = $1", signup_id, approval)

    async def change_participant(
        self, signup_id: str, choices: Sequence[str], available: Sequence[date] | None, max_visits: int
    ) -> None:
        """New choices, dates and visits (SignupChanged)."""
        await self.conn.execute(
            "UPDATE participants SET choices = $2, available = $3, max_visits = $4 WHERE signup_id = $1",
            signup_id, list(choices), None if available is None else list(available), max_visits,
        )

    # --- assignments -------------------------------------------------------------------------
    async def held_assignments(
        self, edition_id: str | None = None, offer_id: str | None = None, signup_id: str | None = None
    ) -> list[Assignment]:
        """Pairs that hold a seat (active assignments and open seat offers) of an edition, an offer
        or a participant."""
        rows = await self.conn.fetch(
            "SELECT signup_id, offer_id, rank, status, run_id, assigned_at FROM assignments"
            " WHERE status IN ('active', 'offered') AND ($1::text IS NULL OR edition_id = $1)"
            " AND ($2::text IS NULL OR offer_id = $2) AND ($3::text IS NULL OR signup_id = $3)",
            edition_id, offer_id, signup_id,
        )
        return [Assignment(**dict(r)) for r in rows]

    async def set_assignment_status(self, pairs: Sequence[Pair], status: str) -> None:
        """Displaced, released: rows that stop holding their seat."""
        await self.conn.executemany(
            "UPDATE assignments SET status = $3 WHERE signup_id = $1 AND offer_id = $2",
            [(s, o, status) for s, o in pairs],
        )

    async def assignments_of(self, edition_id: str) -> list[Assignment]:
        """The active assignments, by offer."""
        rows = await self.conn.fetch(
            "SELECT signup_id, offer_id, rank, status, run_id, assigned_at FROM assignments"
            " WHERE edition_id = $1 AND status = 'active' ORDER BY offer_id, signup_id",
            edition_id,
        )
        return [Assignment(**dict(r)) for r in rows]

    async def declined_pairs(self, edition_id: str) -> set[Pair]:
        """Pairs whose seat offer was declined or expired: never placed again in this edition."""
        return _pairs(await self.conn.fetch(
            "SELECT signup_id, offer_id FROM assignments WHERE edition_id = $1 AND status IN ('declined', 'expired')",
            edition_id,
        ))

    async def displaced_participants(self, edition_id: str) -> set[str]:
        """Active participants whose assignment was displaced by a cancelled offer and who hold no seat now."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT d.signup_id FROM assignments d JOIN participants p USING (signup_id)"
            " WHERE d.edition_id = $1 AND d.status = 'displaced' AND p.status = 'active'"
            " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.signup_id = d.signup_id AND a.status IN ('active', 'offered'))",
            edition_id,
        )
        return {r["signup_id"] for r in rows}

    async def insert_assignments(self, edition_id: str, run_id: uuid.UUID, assignments: Sequence[engine.Assignment]) -> None:
        await self.conn.executemany(
            "INSERT INTO assignments (signup_id, offer_id, edition_id, rank, run_id) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (signup_id, offer_id) DO UPDATE SET status = 'active', rank = $4, run_id = $5, assigned_at = now()",
            [(a.participant, a.offer, edition_id, a.rank, run_id) for a in assignments],
        )

    async def insert_seat_offers(
        self, edition_id: str, run_id: uuid.UUID, seat_offers: Sequence[tuple[engine.Assignment, datetime]], now: datetime
    ) -> None:
        """(assignment, expires_at): the pair holds its seat until it is answered or expires; offered `now`."""
        await self.conn.executemany(
            "INSERT INTO assignments (signup_id, offer_id, edition_id, rank, run_id, status, offered_at, offer_expires_at)"
            " VALUES ($1, $2, $3, $4, $5, 'offered', $7, $6)"
            " ON CONFLICT (signup_id, offer_id) DO UPDATE SET status = 'offered', rank = $4, run_id = $5,"
            " assigned_at = $7, offered_at = $7, offer_expires_at = $6, offer_ended_at = NULL",
            [(a.participant, a.offer, edition_id, a.rank, run_id, expires, now) for a, expires in seat_offers],
        )

    async def still_valid(self, edition_id: str) -> StillValid:
        offers = await self.conn.fetch("SELECT id FROM offers WHERE edition_id = $1 AND status = 'published'", edition_id)
        people = await self.conn.fetch(
            f"SELECT signup_id FROM participants WHERE edition_id = $1 AND {_MATCHED}", edition_id
        )
        open_seat_offers = _pairs(await self.conn.fetch(
            "SELECT signup_id, offer_id FROM assignments WHERE edition_id = $1 AND status = 'offered'", edition_id
        ))
        return StillValid({r["id"] for r in offers}, {r["signup_id"] for r in people}, open_seat_offers)

    # --- outcomes: what each participant was last told ----------------------------------------
    async def outcomes_of(self, edition_id: str) -> dict[str, MatchOutcome]:
        rows = await self.conn.fetch(
            "SELECT signup_id, state, reason_code, position FROM outcomes WHERE edition_id = $1", edition_id
        )
        return {r["signup_id"]: MatchOutcome(**dict(r)) for r in rows}

    async def upsert_outcomes(self, edition_id: str, run_id: uuid.UUID, outcomes: Sequence[MatchOutcome]) -> None:
        await self.conn.executemany(
            "INSERT INTO outcomes (signup_id, edition_id, state, reason_code, position, run_id) VALUES ($1,$2,$3,$4,$5,$6)"
            " ON CONFLICT (signup_id) DO UPDATE SET state = $3, reason_code = $4, position = $5, run_id = $6, updated_at = now()",
            [(o.signup_id, edition_id, o.state, o.reason_code, o.position, run_id) for o in outcomes],
        )

    async def set_outcome(self, signup_id: str, state: str) -> None:
        """After an answer to a seat offer: 'assigned', or back to 'waitlisted' (the next run sets the position)."""
        await self.conn.execute(
            "UPDATE outcomes SET state = $2, reason_code = NULL, position = NULL, updated_at = now() WHERE signup_id = $1",
            signup_id, state,
        )

    async def forget_outcome(self, signup_id: str) -> None:
        await self.conn.execute("DELETE FROM outcomes WHERE signup_id = $1", signup_id)

    async def waiting_list(self, edition_id: str) -> list[MatchOutcome]:
        """Everyone not assigned: the waiting list in order, then the others."""
        rows = await self.conn.fetch(
            "SELECT signup_id, state, reason_code, position FROM outcomes WHERE edition_id = $1 AND state <> 'assigned'"
            " ORDER BY position NULLS LAST, signup_id",
            edition_id,
        )
        return [MatchOutcome(**dict(r)) for r in rows]

    # --- runs --------------------------------------------------------------------------------
    async def start_run(
        self, run_id: uuid.UUID, edition_id: str, kind: str, status: str = "running", correlation_id: uuid.UUID | None = None
    ) -> bool:
        """Record a run, 'running' (attempt 1) or 'queued' (attempt 0). False when another run of this
        edition is queued or running."""
        row = await self.conn.fetchval(
            "INSERT INTO match_runs (id, edition_id, kind, status, stage, attempt, correlation_id)"
            " VALUES ($1, $2, $3, $4, CASE $4 WHEN 'queued' THEN 'queued' ELSE 'loading' END,"
            " CASE $4 WHEN 'queued' THEN 0 ELSE 1 END, $5)"
            " ON CONFLICT (edition_id) WHERE status IN ('queued', 'running') DO NOTHING RETURNING 1",
            run_id, edition_id, kind, status, correlation_id,
        )
        return row is not None

    async def run(self, run_id: uuid.UUID, lock: bool = False) -> MatchRun | None:
        """`lock`: serialise with an instance taking the run over (it locks the row too)."""
        row = await self.conn.fetchrow(
            f"SELECT {_RUN_COLUMNS} FROM match_runs WHERE id = $1" + (" FOR UPDATE" if lock else ""), run_id
        )
        return _run(row) if row else None

    async def runs_of(self, edition_id: str) -> list[MatchRun]:
        rows = await self.conn.fetch(
            f"SELECT {_RUN_COLUMNS} FROM match_runs WHERE edition_id = $1 ORDER BY started_at DESC", edition_id
        )
        return [_run(r) for r in rows]

    async def runs_to_take_over(self, regions: Collection[str] | None = None) -> list[MatchRun]:
        """Queued and running runs of editions of `regions`, oldest first, their rows locked; rows another
        instance is taking over right now are skipped (FOR UPDATE SKIP LOCKED)."""
        rows = await self.conn.fetch(
            f"SELECT {_RUN_COLUMNS} FROM match_runs WHERE status IN ('queued', 'running')"
            " AND ($1::text[] IS NULL OR edition_id IN (SELECT id FROM editions WHERE region = ANY($1)))"
            " ORDER BY started_at FOR UPDATE SKIP LOCKED",
            _regions(regions),
        )
        return [_run(r) for r in rows]

    async def begin_run(self, run_id: uuid.UUID) -> None:
        """A queued run starts, or an interrupted one is resumed, here: from the start, as the next
        attempt. A queued run's `started_at` becomes now."""
        await self.conn.execute(
            "UPDATE match_runs SET status = 'running', stage = 'loading', progress = 0, attempt = attempt + 1,"
            " started_at = CASE WHEN status = 'queued' THEN now() ELSE started_at END WHERE id = $1",
            run_id,
        )

    async def set_progress(self, run_id: uuid.UUID, attempt: int, stage: str, progress: float) -> None:
        await self.conn.execute(
            "UPDATE match_runs SET stage = $3, progress = $4 WHERE id = $1 AND attempt = $2 AND status = 'running'",
            run_id, attempt, stage, progress,
        )

    async def finish_run(self, run_id: uuid.UUID, figures: RunFigures) -> None:
        f = figures
        await self.conn.execute(
            "UPDATE match_runs SET status = 'done', stage = 'done', progress = 1, finished_at = now(),"
            " input_hash = $2, participants = $3, offers = $4, assigned = $5, newly_assigned = $6, waitlisted = $7,"
            " unmatched = $8, rank_cost = $9, duration_ms = $10, newly_offered = $11 WHERE id = $1",
            run_id, f.input_hash, f.participants, f.offers, f.assigned, f.newly_assigned, f.waitlisted, f.unmatched,
            f.rank_cost, f.duration_ms, f.newly_offered,
        )

    async def fail_queued_runs(self, edition_id: str, error: str) -> None:
        """The edition's queued runs fail (it is never matched again)."""
        await self.conn.execute(
            "UPDATE match_runs SET status = 'failed', stage = 'failed', error = $2, finished_at = now()"
            " WHERE edition_id = $1 AND status = 'queued'",
            edition_id, error[:2000],
        )

    async def fail_run(self, run_id: uuid.UUID, error: str, attempt: int | None = None) -> None:
        """Fail a queued or running run (`attempt`: only if that execution still has it)."""
        await self.conn.execute(
            "UPDATE match_runs SET status = 'failed', stage = 'failed', error = $2, finished_at = now()"
            " WHERE id = $1 AND status IN ('queued', 'running') AND ($3::int IS NULL OR attempt = $3)",
            run_id, error[:2000], attempt,
        )

    # --- seat offers -------------------------------------------------------------------------
    async def seat_offer_of(self, edition_id: str, signup_id: str, now: datetime) -> SeatOffer | None:
        """The participant's open seat offer, else their latest one (for saying what became of it), as of `now`."""
        row = await self.conn.fetchrow(
            f"SELECT {_SEAT_OFFER_COLUMNS} FROM assignments WHERE edition_id = $2 AND signup_id = $3"
            " AND offered_at IS NOT NULL ORDER BY status = 'offered' DESC, offered_at DESC LIMIT 1",
            now, edition_id, signup_id,
        )
        return SeatOffer(**dict(row)) if row else None

    async def seat_offers_of(self, edition_id: str, now: datetime, open_only: bool = False) -> list[SeatOffer]:
        """Every seat offer of the edition (or only the open ones), oldest first, as of `now`."""
        rows = await self.conn.fetch(
            f"SELECT {_SEAT_OFFER_COLUMNS} FROM assignments WHERE edition_id = $2 AND offered_at IS NOT NULL"
            " AND (NOT $3 OR status = 'offered') ORDER BY offered_at, signup_id",
            now, edition_id, open_only,
        )
        return [SeatOffer(**dict(r)) for r in rows]

    async def end_seat_offer(self, signup_id: str, offer_id: str, status: str, now: datetime) -> None:
        """Accepted ('active'), declined ('declined') or expired ('expired') at `now`."""
        await self.conn.execute(
            "UPDATE assignments SET status = $3, offer_ended_at = $4"
            " WHERE signup_id = $1 AND offer_id = $2 AND status = 'offered'",
            signup_id, offer_id, status, now,
        )

    async def editions_with_expired_seat_offers(self, now: datetime, regions: Collection[str] | None = None) -> list[str]:
        """Editions of `regions` with open seat offers whose time is up at `now`."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT a.edition_id FROM assignments a JOIN editions e ON e.id = a.edition_id"
            " WHERE a.status = 'offered' AND a.offer_expires_at <= $1 AND ($2::text[] IS NULL OR e.region = ANY($2))"
            " ORDER BY a.edition_id",
            now, _regions(regions),
        )
        return [r["edition_id"] for r in rows]


#: The first key of a run's advisory lock (the second is the run id's hash): runs only.
_RUN_LOCK_SPACE = "matching.match_runs"
_CONNECTION_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class RunLocks:
    """The session advisory locks this instance holds on the runs it executes, on one connection of
    its own (not the pool's: a lock must outlive the transactions of a run). Postgres releases a
    session's locks when the session ends, so a queued or running run whose lock nobody holds has no
    live executor: an instance of its region may take it over (service.take_over_runs). Postgres would
    grant a session its own lock again, so `take` refuses the runs in `held` (this instance's) itself.

    When the connection is lost (the database restarted, a network failure), the locks are taken again
    on a new one; a run whose lock another instance took meanwhile is `lost` (`check`)."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        self._connect = connect
        self._conn: asyncpg.Connection | None = None
        self._mutex = asyncio.Lock()  # one query at a time on the one connection
        self._lost: set[uuid.UUID] = set()
        self.held: set[uuid.UUID] = set()

    async def take(self, run_id: uuid.UUID) -> bool:
        """Lock `run_id` for this instance, without waiting. False when it is held, here or elsewhere."""
        async with self._mutex:
            if run_id in self.held:
                return False
            if not await self._try(await self._session(), run_id):
                return False
            self.held.add(run_id)
            return True

    async def release(self, run_id: uuid.UUID) -> None:
        async with self._mutex:
            if run_id not in self.held:
                return
            self.held.discard(run_id)
            if self._conn is None or self._conn.is_closed():
                return  # the session is gone, and its locks with it
            try:
                await self._conn.fetchval(
                    "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", _RUN_LOCK_SPACE, str(run_id)
                )
            except _CONNECTION_ERRORS:
                await self._drop()

    async def check(self) -> set[uuid.UUID]:
        """Make sure the held locks are still held; return the runs whose lock was lost to another
        instance (their execution here must stop: the other instance runs them now)."""
        async with self._mutex:
            if self.held and self._conn is not None and not self._conn.is_closed():
                try:
                    await self._conn.fetchval("SELECT 1")
                except _CONNECTION_ERRORS:
                    await self._drop()
            if self.held:
                await self._session()
            lost, self._lost = self._lost, set()
            return lost

    async def close(self) -> None:
        async with self._mutex:
            self.held.clear()
            await self._drop()

    async def _session(self) -> asyncpg.Connection:
        """The locks' connection; a new one when it was lost, on which the held locks are taken again."""
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = await self._connect()
        for run_id in sorted(self.held):
            if not await self._try(self._conn, run_id):
                log.warning("lost the lock of a match run to another instance", run_id=str(run_id))
                self.held.discard(run_id)
                self._lost.add(run_id)
        return self._conn

    @staticmethod
    async def _try(conn: asyncpg.Connection, run_id: uuid.UUID) -> bool:
        return bool(await conn.fetchval(
            "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", _RUN_LOCK_SPACE, str(run_id)
        ))

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=2)
            except _CONNECTION_ERRORS + (asyncio.TimeoutError,):
                self._conn.terminate()
        self._conn = None


def _run(row: asyncpg.Record) -> MatchRun:
    fields = dict(row)
    figures = RunFigures(**{name: fields.pop(name) for name in _FIGURES})
    return MatchRun(**fields, figures=figures if fields["status"] == "done" else None)
