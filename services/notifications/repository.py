"""SQL for the notifications schema, on one transaction's connection. Returns domain types only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from estafette.runtime import scheduler
from schemas.topics import PARTICIPANTS
from services.notifications.domain import (
    ApprovalState,
    Backlog,
    Claimed,
    Contact,
    Due,
    Edition,
    EditionStatus,
    Ended,
    HostContact,
    NewNotification,
    NotificationView,
    Offer,
    Planned,
    Recording,
    Signup,
    SignupStatus,
    Status,
    Visit,
    Visitor,
    last_plans,
    offer_from_data,
)
from services.notifications.webhook_store import WebhookRepository

#: NOTIFY channel that wakes the sender when a message was queued (delivered at commit).
PENDING_CHANNEL = "notifications_pending"
#: The participants topic of every region (dead letters of those records may hold personal data).
PARTICIPANTS_TOPICS = PARTICIPANTS.pattern.join(("^", "$"))

#: What the HTTP API shows: status and tracing, no personal data, no body.
_VIEW_COLUMNS = (
    "id, kind, template, region, edition, signup_id, language, status, attempts, last_error,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
    " created_at, sent_at, failed_at, source_event_id, correlation_id"
)


class Repository(WebhookRepository):  # + the webhooks' SQL (issue 11, webhook_store.py)
    """One per transaction (the unit of work makes it on the transaction's connection): what it
    remembers (locks held, the sender already woken, editions and offers read) lasts until that
    transaction ends, and a consumer's batch of events shares one transaction, so a batch (e.g. a match
    run's placements) pays each edition lock, each edition and offer read and the wake-up once. An
    edition or offer read is kept as first read: under the edition's lock (the journey's use cases take
    it first) nobody else changes its status or its offers meanwhile, and this transaction's own writes
    forget what they change."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._locked_editions: set[str] = set()
        self._sender_woken = False
        self._editions: dict[str, Edition | None] = {}
        self._offers: dict[str, Offer | None] = {}

    async def insert(self, n: NewNotification, status: Status, language: str | None, error: str | None = None) -> bool:
        """False when a message with this id (or from this source event) exists already. A message
        inserted as `failed` gets `error` and its failure time."""
        return n.id in await self.insert_all([(n, status, language, error)])

    async def insert_all(self, rows: list[tuple[NewNotification, Status, str | None, str | None]]) -> set[uuid.UUID]:
        """`insert` for each (message, status, language, error), in one statement; the ids inserted (a
        message whose id or source event exists already is not)."""
        if not rows:
            return set()
        inserted = await self.conn.fetch(
            "INSERT INTO notifications (id, source_event_id, kind, template, region, edition, signup_id,"
            " correlation_id, recipient_name, recipient_email, language, data, status, last_error, failed_at)"
            " SELECT u.id, u.source_event_id, u.kind, u.template, u.region, u.edition, u.signup_id,"
            " u.correlation_id, u.name, u.email, u.language, u.data::jsonb, u.status, u.error,"
            " CASE WHEN u.status = 'failed' THEN clock_timestamp() END"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
            " $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])"
            " WITH ORDINALITY AS u(id, source_event_id, kind, template, region, edition, signup_id,"
            " correlation_id, name, email, language, data, status, error, n) ORDER BY u.n"
            " ON CONFLICT DO NOTHING RETURNING id",
            [n.id for n, *_ in rows], [n.source_event_id for n, *_ in rows], [n.kind for n, *_ in rows],
            [n.template for n, *_ in rows], [n.region for n, *_ in rows], [n.edition for n, *_ in rows],
            [n.signup_id for n, *_ in rows], [n.correlation_id for n, *_ in rows], [n.name for n, *_ in rows],
            [n.email for n, *_ in rows], [language for _, _, language, _ in rows],
            [json.dumps(n.data) for n, *_ in rows], [status for _, status, _, _ in rows],
            [error for *_, error in rows],
        )
        return {r["id"] for r in inserted}

    # --- participants' contact details -----------------------------------------------------------
    async def lock_participant(self, signup_id: str) -> None:
        """Serialise, until the transaction ends, everything that concerns this participant's contact
        (a message recorded for them, their contact arriving, its erasure): each then sees what the
        other committed, so a message cannot be left waiting for a contact that has already arrived."""
        await self.lock_participants([signup_id])

    async def lock_participants(self, signup_ids: list[str]) -> None:
        """`lock_participant` for each, in one statement, in the order given (callers sort the ids, so
        two transactions take common locks in the same order)."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('notifications.participant:' || s.id, 0))"
            " FROM unnest($1::text[]) WITH ORDINALITY AS s(id, n) ORDER BY s.n",
            signup_ids,
        )

    async def contacts_of(self, signup_ids: list[str]) -> dict[str, Contact]:
        """The known contacts of these sign-ups, by sign-up id."""
        rows = await self.conn.fetch(
            "SELECT signup_id, region, edition, name, email, language, org, learning_goal FROM contacts"
            " WHERE signup_id = ANY($1::text[])",
            signup_ids,
        )
        return {r["signup_id"]: Contact(**dict(r)) for r in rows}

    async def erased_among(self, signup_ids: list[str]) -> set[str]:
        """Those of these sign-ups whose participant was erased."""
        if not signup_ids:
            return set()
        rows = await self.conn.fetch(
            "SELECT signup_id FROM erased_participants WHERE signup_id = ANY($1::text[])", signup_ids
        )
        return {r["signup_id"] for r in rows}

    async def contact(self, signup_id: str) -> Contact | None:
        row = await self.conn.fetchrow(
            "SELECT signup_id, region, edition, name, email, language, org, learning_goal FROM contacts"
            " WHERE signup_id = $1",
            signup_id,
        )
        return Contact(**dict(row)) if row else None

    async def erased(self, signup_id: str) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM erased_participants WHERE signup_id = $1", signup_id))

    async def save_contact(self, contact: Contact) -> None:
        """Keep (or replace) a participant's contact details; a sign-up registered again after an
        erasure is no longer erased."""
        await self.conn.execute(
            "INSERT INTO contacts (signup_id, region, edition, name, email, language, org, learning_goal)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
            " ON CONFLICT (signup_id) DO UPDATE SET region = excluded.region, edition = excluded.edition,"
            " name = excluded.name, email = excluded.email, language = excluded.language, org = excluded.org,"
            " learning_goal = excluded.learning_goal, registered_at = clock_timestamp()",
            contact.signup_id, contact.region, contact.edition, contact.name, contact.email, contact.language,
            contact.org, contact.learning_goal,
        )
        await self.conn.execute("DELETE FROM erased_participants WHERE signup_id = $1", contact.signup_id)

    async def save_contacts(self, contacts: list[Contact]) -> None:
        """`save_contact` of each (one per sign-up id), in two statements."""
        c = contacts
        await self.conn.execute(
            "INSERT INTO contacts (signup_id, region, edition, name, email, language, org, learning_goal)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
            " $7::text[], $8::text[])"
            " ON CONFLICT (signup_id) DO UPDATE SET region = excluded.region, edition = excluded.edition,"
            " name = excluded.name, email = excluded.email, language = excluded.language, org = excluded.org,"
            " learning_goal = excluded.learning_goal, registered_at = clock_timestamp()",
            [x.signup_id for x in c], [x.region for x in c], [x.edition for x in c], [x.name for x in c],
            [x.email for x in c], [x.language for x in c], [x.org for x in c], [x.learning_goal for x in c],
        )
        await self.conn.execute(
            "DELETE FROM erased_participants WHERE signup_id = ANY($1::text[])", [x.signup_id for x in c]
        )

    async def release_awaiting(self, signup_id: str, language: str) -> int:
        """Queue the participant's messages that awaited their contact; how many."""
        return await self.release_awaiting_all({signup_id: language})

    async def release_awaiting_all(self, languages: dict[str, str]) -> int:
        """`release_awaiting` for each sign-up id (with the language given for it), in one statement."""
        result = await self.conn.execute(
            "UPDATE notifications n SET status = 'pending', language = c.language, next_attempt_at = clock_timestamp()"
            " FROM unnest($1::text[], $2::text[]) AS c(signup_id, language)"
            " WHERE n.signup_id = c.signup_id AND n.status = 'awaiting_contact'",
            list(languages), list(languages.values()),
        )
        return int(result.split()[-1])

    async def erase_contact(self, signup_id: str) -> None:
        """Delete the participant's contact details and remember (by id only) that they were erased."""
        await self.conn.execute("DELETE FROM contacts WHERE signup_id = $1", signup_id)
        await self.conn.execute(
            "INSERT INTO erased_participants (signup_id) VALUES ($1) ON CONFLICT DO NOTHING", signup_id
        )

    async def end_unsent(self, signup_id: str, error: str) -> list[Ended]:
        """Fail the participant's messages that were not sent yet (awaiting their contact, or queued);
        a message being sent right now is waited for (its row lock) and then left as it ends."""
        rows = await self.conn.fetch(
            "UPDATE notifications SET status = 'failed', last_error = $2, failed_at = clock_timestamp()"
            " WHERE signup_id = $1 AND status IN ('awaiting_contact', 'pending')"
            " RETURNING id, template, region, edition, signup_id, correlation_id",
            signup_id, error,
        )
        return sorted((Ended(**dict(r)) for r in rows), key=lambda e: str(e.id))

    async def clear_recipients(self, signup_id: str) -> None:
        """Remove every copy of the participant's name and address from their messages (rows recorded
        before contract v2 carried them)."""
        await self.conn.execute(
            "UPDATE notifications SET recipient_name = NULL, recipient_email = NULL"
            " WHERE signup_id = $1 AND (recipient_name IS NOT NULL OR recipient_email IS NOT NULL)",
            signup_id,
        )

    async def forget_dead_letters(self, signup_id: str) -> int:
        """Delete the dead-lettered participants records of this sign-up (their raw value may hold the
        name and address); how many."""
        result = await self.conn.execute(
            "DELETE FROM dead_letters WHERE topic ~ $1 AND value IS NOT NULL"
            " AND position(convert_to($2, 'UTF8') IN value) > 0",
            PARTICIPANTS_TOPICS, json.dumps(signup_id),
        )
        return int(result.split()[-1])

    async def wake_sender(self) -> None:
        """Wake the sender when this transaction commits (once per transaction: Postgres delivers one
        notification per channel and payload at commit anyway)."""
        if not self._sender_woken:
            await self.conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)
            self._sender_woken = True

    async def claim_due(self, regions: tuple[str, ...] | None = None) -> Due | None:
        """Lock the oldest due pending message of `regions` (None: every region) that no other sender
        holds, with its recipient: the participant's contact as it is now, else the message's own."""
        row = await self.conn.fetchrow(
            "SELECT n.id, n.source_event_id, n.kind, n.template, n.region, n.edition, n.signup_id,"
            " n.correlation_id, coalesce(c.name, n.recipient_name) AS name,"
            " coalesce(c.email, n.recipient_email) AS email, coalesce(c.language, n.language) AS language,"
            " n.data::text AS data, n.attempts"
            " FROM notifications n LEFT JOIN contacts c ON c.signup_id = n.signup_id"
            " WHERE n.status = 'pending' AND n.next_attempt_at <= clock_timestamp()"
            " AND ($1::text[] IS NULL OR n.region = ANY($1::text[]))"
            " ORDER BY n.next_attempt_at, n.created_at LIMIT 1 FOR UPDATE OF n SKIP LOCKED",
            list(regions) if regions is not None else None,
        )
        return Due(**{**dict(row), "data": json.loads(row["data"])}) if row else None

    async def mark_sent(self, notification_id: uuid.UUID, language: str | None) -> None:
        """Sent, in `language` (the participant's language when it was sent)."""
        await self.conn.execute(
            "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = clock_timestamp(),"
            " language = coalesce($2, language) WHERE id = $1",
            notification_id, language,
        )

    async def mark_retry(self, notification_id: uuid.UUID, error: str, retry_in: float) -> None:
        await self.conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = $2,"
            " next_attempt_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1",
            notification_id, error, retry_in,
        )

    async def mark_failed(self, notification_id: uuid.UUID, error: str) -> None:
        await self.conn.execute(
            "UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = $2,"
            " failed_at = clock_timestamp() WHERE id = $1",
            notification_id, error,
        )

    # --- sending in batches (issue 13) ---------------------------------------------------------
    async def claim_batch(
        self, lease: uuid.UUID, limit: int, lease_seconds: float, regions: tuple[str, ...] | None = None
    ) -> list[Claimed]:
        """Take up to `limit` due messages of `regions` (None: every region) that no other sender
        holds: pending ones whose time has come and `sending` ones whose lease ran out (their sender
        died). They become `sending` under `lease` for `lease_seconds` (their `next_attempt_at`), with
        their recipient as it is now: the participant's contact, else the message's own."""
        rows = await self.conn.fetch(
            "WITH due AS (SELECT id FROM notifications"
            " WHERE status IN ('pending', 'sending') AND next_attempt_at <= clock_timestamp()"
            " AND ($1::text[] IS NULL OR region = ANY($1::text[]))"
            " ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
            " leased AS (UPDATE notifications n SET status = 'sending', lease = $3,"
            " next_attempt_at = clock_timestamp() + make_interval(secs => $4) FROM due WHERE n.id = due.id"
            " RETURNING n.*)"
            " SELECT l.id, l.source_event_id, l.kind, l.template, l.region, l.edition, l.signup_id,"
            " l.correlation_id, coalesce(c.name, l.recipient_name) AS name,"
            " coalesce(c.email, l.recipient_email) AS email, coalesce(c.language, l.language) AS language,"
            " l.data::text AS data, l.attempts,"
            " (l.signup_id IS NOT NULL AND c.signup_id IS NULL AND l.recipient_email IS NULL AND EXISTS"
            "  (SELECT 1 FROM erased_participants e WHERE e.signup_id = l.signup_id)) AS erased"
            " FROM leased l LEFT JOIN contacts c ON c.signup_id = l.signup_id ORDER BY l.created_at, l.id",
            list(regions) if regions is not None else None, limit, lease, lease_seconds,
        )
        claimed = []
        for row in rows:
            fields = dict(row)
            erased = fields.pop("erased")
            claimed.append(Claimed(Due(**{**fields, "data": json.loads(fields["data"])}), erased))
        return claimed

    async def record_outcomes(self, recordings: list[Recording]) -> set[uuid.UUID]:
        """Record each outcome (one statement for the batch), but only on a message still `sending`
        under the lease it was sent with; the ids recorded (a message whose lease ran out and which
        another sender took is left to that sender)."""
        rows = await self.conn.fetch(
            "UPDATE notifications n SET status = u.status, attempts = n.attempts + 1,"
            " sent_at = CASE WHEN u.status = 'sent' THEN clock_timestamp() ELSE n.sent_at END,"
            " failed_at = CASE WHEN u.status = 'failed' THEN clock_timestamp() ELSE n.failed_at END,"
            " language = coalesce(u.language, n.language), last_error = coalesce(u.error, n.last_error),"
            " next_attempt_at = CASE WHEN u.status = 'pending'"
            "  THEN clock_timestamp() + make_interval(secs => u.retry_in) ELSE n.next_attempt_at END,"
            " lease = NULL"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::float8[])"
            "  AS u(id, lease, status, language, error, retry_in)"
            " WHERE n.id = u.id AND n.status = 'sending' AND n.lease = u.lease RETURNING n.id",
            [r.id for r in recordings], [r.lease for r in recordings], [r.status for r in recordings],
            [r.language for r in recordings], [r.error for r in recordings],
            [r.retry_in for r in recordings],
        )
        return {r["id"] for r in rows}

    async def release(self, lease: uuid.UUID, ids: list[uuid.UUID]) -> int:
        """Hand back claimed messages that were not sent (a sender stopping): pending and due now."""
        result = await self.conn.execute(
            "UPDATE notifications SET status = 'pending', lease = NULL, next_attempt_at = clock_timestamp()"
            " WHERE id = ANY($2::uuid[]) AND status = 'sending' AND lease = $1",
            lease, ids,
        )
        return int(result.split()[-1])

    async def get(self, notification_id: uuid.UUID) -> NotificationView | None:
        row = await self.conn.fetchrow(f"SELECT {_VIEW_COLUMNS} FROM notifications WHERE id = $1", notification_id)
        return NotificationView(**dict(row)) if row else None

    async def search(
        self,
        *,
        region: str | None,
        edition: str | None,
        signup_id: str | None,
        status: Status | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[NotificationView]:
        """Oldest first, of `region` only (None: every region); `after` continues after that message
        (keyset on created_at, id)."""
        rows = await self.conn.fetch(
            f"SELECT {_VIEW_COLUMNS} FROM notifications n"
            " WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR edition = $2)"
            " AND ($3::text IS NULL OR signup_id = $3) AND ($4::text IS NULL OR status = $4)"
            " AND ($5::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM notifications WHERE id = $5))"
            " ORDER BY created_at, id LIMIT $6",
            region, edition, signup_id, status, after, limit,
        )
        return [NotificationView(**dict(r)) for r in rows]

    async def backlog(self, regions: tuple[str, ...] | None = None) -> Backlog:
        """How many messages of `regions` (None: every region) are pending (being sent included), the
        age of the oldest one, and how many await a participant's contact."""
        row = await self.conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')) AS pending,"
            " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)"
            " FILTER (WHERE status IN ('pending', 'sending'))), 0) AS age,"
            " count(*) FILTER (WHERE status = 'awaiting_contact') AS awaiting"
            " FROM notifications WHERE status IN ('pending', 'sending', 'awaiting_contact')"
            " AND ($1::text[] IS NULL OR region = ANY($1::text[]))",
            list(regions) if regions is not None else None,
        )
        return Backlog(row["pending"], float(row["age"]), row["awaiting"])


    # --- the journey: editions, offers, sign-ups and visits as this service keeps them --------------
    async def lock_edition(self, edition: str) -> None:
        """Serialise, until the transaction ends, what concerns one edition's journey (its offers,
        sign-ups, visits and steps): an edition cancelled while someone is being placed on one of its
        offers either sees that visit or is seen by it. Taken once per transaction (held to its end)."""
        if edition in self._locked_editions:
            return
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('notifications.edition:' || $1, 0))", edition
        )
        self._locked_editions.add(edition)

    async def save_edition(self, edition: Edition) -> None:
        """Keep an opened edition (again: its details; a status it reached stays)."""
        self._editions.pop(edition.edition, None)
        await self.conn.execute(
            "INSERT INTO editions (edition, region, name, starts_on, ends_on, signup_deadline, languages)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb) ON CONFLICT (edition) DO UPDATE SET region = excluded.region,"
            " name = excluded.name, starts_on = excluded.starts_on, ends_on = excluded.ends_on,"
            " signup_deadline = excluded.signup_deadline, languages = excluded.languages",
            edition.edition, edition.region, edition.name, edition.starts_on, edition.ends_on,
            edition.signup_deadline, json.dumps(list(edition.languages)),
        )

    async def set_edition_status(self, edition: str, region: str, status: EditionStatus, reason: str = "") -> None:
        """Closed or cancelled (an edition not seen yet is kept by its id); cancelled stays cancelled."""
        self._editions.pop(edition, None)
        await self.conn.execute(
            "INSERT INTO editions (edition, region, name, status, reason) VALUES ($1,$2,$1,$3,$4)"
            " ON CONFLICT (edition) DO UPDATE SET status = CASE WHEN editions.status = 'cancelled'"
            " THEN editions.status ELSE excluded.status END, reason = CASE WHEN editions.status = 'cancelled'"
            " THEN editions.reason ELSE excluded.reason END",
            edition, region, status, reason,
        )

    async def edition(self, edition: str) -> Edition | None:
        if edition in self._editions:
            return self._editions[edition]
        row = await self.conn.fetchrow(
            "SELECT edition, region, name, starts_on, ends_on, signup_deadline, languages::text AS languages,"
            " status, reason FROM editions WHERE edition = $1",
            edition,
        )
        found = None if row is None else Edition(**{**dict(row), "languages": tuple(json.loads(row["languages"]))})
        self._editions[edition] = found
        return found

    async def save_offer(self, offer: Offer) -> None:
        """Keep an offer as published or changed (a cancelled offer stays cancelled)."""
        self._offers.pop(offer.offer_id, None)
        host = offer.host_contact
        await self.conn.execute(
            "INSERT INTO offers (offer_id, region, edition, details, host_contact, sequence)"
            " VALUES ($1,$2,$3,$4::jsonb,$5::jsonb,$6) ON CONFLICT (offer_id) DO UPDATE SET"
            " region = excluded.region, edition = excluded.edition, details = excluded.details,"
            " host_contact = excluded.host_contact, sequence = excluded.sequence",
            offer.offer_id, offer.region, offer.edition, json.dumps(offer.data()),
            json.dumps({"name": host.name, "email": host.email, "language": host.language}) if host else None,
            offer.sequence,
        )

    async def cancel_offer(self, offer_id: str, reason: str) -> bool:
        """Mark a kept offer cancelled; False when it is unknown or was cancelled already."""
        self._offers.pop(offer_id, None)
        result = await self.conn.execute(
            "UPDATE offers SET status = 'cancelled', reason = $2 WHERE offer_id = $1 AND status <> 'cancelled'",
            offer_id, reason,
        )
        return result != "UPDATE 0"

    async def offer(self, offer_id: str) -> Offer | None:
        if offer_id in self._offers:
            return self._offers[offer_id]
        row = await self.conn.fetchrow(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE offer_id = $1", offer_id)
        self._offers[offer_id] = found = _offer(row) if row else None
        return found

    async def offers_by_id(self, offer_ids: list[str]) -> dict[str, Offer | None]:
        """`offer` for each id (None: unknown), those not read yet in one statement."""
        missing = sorted({o for o in offer_ids if o not in self._offers})
        if missing:
            rows = await self.conn.fetch(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE offer_id = ANY($1::text[])", missing)
            found = {r["offer_id"]: _offer(r) for r in rows}
            for offer_id in missing:
                self._offers[offer_id] = found.get(offer_id)
        return {o: self._offers[o] for o in offer_ids}

    async def offers_of(self, edition: str) -> list[Offer]:
        rows = await self.conn.fetch(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE edition = $1 ORDER BY offer_id", edition)
        return [_offer(r) for r in rows]

    async def save_signup(self, signup: Signup) -> None:
        """Keep a submitted sign-up (again: its details; a status it reached stays)."""
        await self.conn.execute(
            "INSERT INTO signups (signup_id, region, edition, org, language, choices, approval)"
            " VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7) ON CONFLICT (signup_id) DO UPDATE SET org = excluded.org,"
            " language = excluded.language, choices = excluded.choices",
            signup.signup_id, signup.region, signup.edition, signup.org, signup.language,
            json.dumps(list(signup.choices)), signup.approval,
        )

    async def save_signups(self, signups: list[Signup]) -> None:
        """`save_signup` of each, in order, in one statement: a sign-up given twice is kept as the two
        calls would keep it (the first one's region, edition and approval; the last one's details)."""
        kept: dict[str, Signup] = {}
        for s in signups:
            known = kept.get(s.signup_id)
            kept[s.signup_id] = replace(known, org=s.org, language=s.language, choices=s.choices) if known else s
        rows = list(kept.values())
        await self.conn.execute(
            "INSERT INTO signups (signup_id, region, edition, org, language, choices, approval)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[])"
            " ON CONFLICT (signup_id) DO UPDATE SET org = excluded.org,"
            " language = excluded.language, choices = excluded.choices",
            [r.signup_id for r in rows], [r.region for r in rows], [r.edition for r in rows], [r.org for r in rows],
            [r.language for r in rows], [json.dumps(list(r.choices)) for r in rows], [r.approval for r in rows],
        )

    async def signup(self, signup_id: str) -> Signup | None:
        row = await self.conn.fetchrow(f"SELECT {_SIGNUP_COLUMNS} FROM signups WHERE signup_id = $1", signup_id)
        return _signup(row) if row else None

    async def signups_by_id(self, signup_ids: list[str]) -> dict[str, Signup]:
        """The kept sign-ups among these ids, by id."""
        rows = await self.conn.fetch(
            f"SELECT {_SIGNUP_COLUMNS} FROM signups WHERE signup_id = ANY($1::text[])", signup_ids
        )
        return {r["signup_id"]: _signup(r) for r in rows}

    async def signups_of(self, edition: str) -> list[Signup]:
        rows = await self.conn.fetch(
            f"SELECT {_SIGNUP_COLUMNS} FROM signups WHERE edition = $1 ORDER BY signup_id", edition
        )
        return [_signup(r) for r in rows]

    async def change_signup(
        self, signup_id: str, *, choices: list[str] | None = None, status: SignupStatus | None = None,
        approval: ApprovalState | None = None,
    ) -> None:
        await self.conn.execute(
            "UPDATE signups SET choices = coalesce($2::jsonb, choices), status = coalesce($3, status),"
            " approval = coalesce($4, approval) WHERE signup_id = $1",
            signup_id, json.dumps(choices) if choices is not None else None, status, approval,
        )

    async def save_visit(self, visit: Visit) -> None:
        """A visit starts (or a seat offer opens) for (sign-up, offer); it replaces what was there."""
        await self.conn.execute(
            "INSERT INTO visits (signup_id, offer_id, region, edition, status, expires_at, correlation_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (signup_id, offer_id) DO UPDATE SET"
            " status = excluded.status, expires_at = excluded.expires_at, correlation_id = excluded.correlation_id",
            visit.signup_id, visit.offer_id, visit.region, visit.edition, visit.status, visit.expires_at,
            visit.correlation_id,
        )

    async def save_visits(self, visits: list[Visit]) -> None:
        """`save_visit` for each, in order, in one round trip."""
        if not visits:
            return
        await self.conn.executemany(
            "INSERT INTO visits (signup_id, offer_id, region, edition, status, expires_at, correlation_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (signup_id, offer_id) DO UPDATE SET"
            " status = excluded.status, expires_at = excluded.expires_at, correlation_id = excluded.correlation_id",
            [(v.signup_id, v.offer_id, v.region, v.edition, v.status, v.expires_at, v.correlation_id) for v in visits],
        )

    async def end_visit(self, signup_id: str, offer_id: str, only: str | None = None) -> None:
        """The visit (or seat offer) ends; `only`: only if it has that status."""
        await self.conn.execute(
            "UPDATE visits SET status = 'ended' WHERE signup_id = $1 AND offer_id = $2"
            " AND status <> 'ended' AND ($3::text IS NULL OR status = $3)",
            signup_id, offer_id, only,
        )

    async def visits(
        self, *, signup_id: str | None = None, offer_id: str | None = None, edition: str | None = None
    ) -> list[Visit]:
        """The visits and open seat offers (not ended) of a sign-up, an offer or an edition."""
        rows = await self.conn.fetch(
            "SELECT signup_id, offer_id, region, edition, status, expires_at, correlation_id FROM visits"
            " WHERE status <> 'ended' AND ($1::text IS NULL OR signup_id = $1)"
            " AND ($2::text IS NULL OR offer_id = $2) AND ($3::text IS NULL OR edition = $3)"
            " ORDER BY signup_id, offer_id",
            signup_id, offer_id, edition,
        )
        return [Visit(**dict(r)) for r in rows]

    async def visitors(self, signup_ids: list[str]) -> dict[str, Visitor]:
        """What a host's message shows of these participants (those whose contact is known)."""
        rows = await self.conn.fetch(
            "SELECT signup_id, name, org, learning_goal FROM contacts WHERE signup_id = ANY($1::text[])", signup_ids
        )
        return {r["signup_id"]: Visitor(**dict(r)) for r in rows}

    # --- scheduled steps (runtime/scheduler.py, table scheduled_steps) ---------------------------
    async def plan(self, step: Planned) -> None:
        """Schedule the step at its due time (or move it there), or cancel it when it has none."""
        if step.due_at is None:
            await scheduler.cancel(self, step.kind, step.key)
        else:
            await scheduler.schedule(self, step.kind, step.key, step.due_at, step.payload)

    async def plan_all(self, steps: Iterable[Planned]) -> None:
        """`plan` for each step, in order: what that leaves (`last_plans`), the schedules in one
        round trip and the cancellations in one statement."""
        last = last_plans(list(steps))
        await scheduler.schedule_many(self, [(s.kind, s.key, s.due_at, s.payload) for s in last if s.due_at is not None])
        await scheduler.cancel_many(self, [(s.kind, s.key) for s in last if s.due_at is None])


_OFFER_COLUMNS = "offer_id, region, edition, details::text AS details, host_contact::text AS host_contact, status, reason"
_SIGNUP_COLUMNS = "signup_id, region, edition, org, language, choices::text AS choices, status, approval"


def _offer(row: Any) -> Offer:
    host = json.loads(row["host_contact"]) if row["host_contact"] else None
    return offer_from_data(
        json.loads(row["details"]), region=row["region"], edition=row["edition"],
        host_contact=HostContact(**host) if host else None, status=row["status"], reason=row["reason"],
    )


def _signup(row: Any) -> Signup:
    return Signup(**{**dict(row), "choices": tuple(json.loads(row["choices"]))})
