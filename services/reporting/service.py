"""Reporting use cases, the only door: record what an event says (inside the consumer's transaction,
`tx`), and read reports (`uow`, one snapshot each).

Each recording use case reads the stored state through `tx.repo`, lets a domain rule decide the new
state, and stores it. No personal data comes in: sign-up and match events carry ids (contract v2;
names and e-mail addresses travel only on the regions' participants topics, which reporting does not
read), and the handlers pass only ids, the organisation, the moment, the offer and the rank (and, of
the journey's events, an edition's cancellation reason, a sign-up's approval, a feedback's rating and
whether it may be shared, an e-mail's template: never a refusal's reason or what someone learned).
"""

from __future__ import annotations

import asyncio

import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime

import structlog

from estafette.runtime.access import Principal
from estafette.runtime.errors import NotFound
from estafette.runtime.uow import Tx, Uow
from services.reporting import domain
from services.reporting.domain import ApprovalState, MatchOutcome, NotificationOutcome, Placement, Version
from services.reporting.public import PublicFigures, public_figures
from services.reporting.relay import RelayView, relay_view
from services.reporting.repository import Repository
from schemas.dashboard import DashboardRecord
from schemas.topics import DASHBOARD

log = structlog.get_logger(__name__)
ReportingTx = Tx[Repository]


async def _known(tx: ReportingTx, edition_id: str, region: str) -> None:
    """Every event names an edition: it is known from the first one (domain.edition_named)."""
    await tx.repo.add_edition(domain.edition_named(edition_id, region))


# --- editions, offers, sign-ups -----------------------------------------------------------------
async def edition_opened(
    tx: ReportingTx, region: str, edition_id: str, name: str, starts_on: date, ends_on: date
) -> None:
    stored = await tx.repo.edition(edition_id)
    await tx.repo.save_edition(domain.edition_opened(stored, edition_id, region, name, starts_on, ends_on))


async def edition_closed(tx: ReportingTx, region: str, edition_id: str) -> None:
    await tx.repo.save_edition(domain.edition_closed(await tx.repo.edition(edition_id), edition_id, region))


async def edition_cancelled(tx: ReportingTx, region: str, edition_id: str, reason: str, at: datetime) -> None:
    """The edition is called off: status `cancelled` with the reason; its figures stay as they are."""
    stored = await tx.repo.edition(edition_id)
    await tx.repo.save_edition(domain.edition_cancelled(stored, edition_id, region, reason, at))


async def offer_published(
    tx: ReportingTx, region: str, edition_id: str, offer_id: str, day: date, capacity: int, sequence: int = 0
) -> None:
    await _known(tx, edition_id, region)
    stored = await tx.repo.offer(offer_id)
    await tx.repo.save_offer(domain.offer_published(stored, offer_id, edition_id, day, capacity, sequence))


async def offer_changed(
    tx: ReportingTx, region: str, edition_id: str, offer_id: str, day: date, capacity: int, sequence: int
) -> None:
    """An edited offer: its date and capacity as they are now (the seats and the days follow)."""
    await _known(tx, edition_id, region)
    stored = await tx.repo.offer(offer_id)
    await tx.repo.save_offer(domain.offer_changed(stored, offer_id, edition_id, day, capacity, sequence))


async def offer_cancelled(tx: ReportingTx, region: str, edition_id: str, offer_id: str) -> None:
    await _known(tx, edition_id, region)
    await tx.repo.save_offer(domain.offer_cancelled(await tx.repo.offer(offer_id), offer_id, edition_id))


async def signup_submitted(
    tx: ReportingTx, region: str, edition_id: str, signup_id: str, org: str, signed_up_at: datetime,
    approval: ApprovalState = "not_required",
) -> None:
    await signups_submitted(tx, [domain.SubmittedSignup(region, edition_id, signup_id, org, signed_up_at, approval)])


async def signups_submitted(tx: ReportingTx, submitted: list[domain.SubmittedSignup]) -> None:
    """`signup_submitted` of each, in order, in a constant number of statements (a consumer batch's
    run of SignupSubmitted): the editions made known once each, the stored sign-ups read (locked, in
    id order) at once, each decision taken on the one before it (the same sign-up twice), written at once."""
    for edition_id, region in sorted({(s.edition_id, s.region) for s in submitted}):
        await _known(tx, edition_id, region)
    signups = await tx.repo.signups_by_id(sorted({s.signup_id for s in submitted}))
    changed: dict[str, domain.Signup] = {}
    for s in submitted:
        changed[s.signup_id] = signups[s.signup_id] = domain.signup_submitted(
            signups.get(s.signup_id), s.signup_id, s.edition_id, s.org, s.signed_up_at, s.approval
        )
    await tx.repo.save_signups(list(changed.values()))


async def signup_approved(tx: ReportingTx, region: str, edition_id: str, signup_id: str) -> None:
    await _known(tx, edition_id, region)
    await tx.repo.save_signup(domain.signup_approved(await tx.repo.signup(signup_id), signup_id, edition_id))


async def signup_refused(tx: ReportingTx, region: str, edition_id: str, signup_id: str) -> None:
    await _known(tx, edition_id, region)
    await tx.repo.save_signup(domain.signup_refused(await tx.repo.signup(signup_id), signup_id, edition_id))


async def signup_withdrawn(tx: ReportingTx, region: str, edition_id: str, signup_id: str) -> None:
    await _known(tx, edition_id, region)
    await tx.repo.save_signup(domain.signup_withdrawn(await tx.repo.signup(signup_id), signup_id, edition_id))


# --- match outcomes: the latest wins ----------------------------------------------------------
async def _match_outcome(tx: ReportingTx, region: str, outcome: MatchOutcome) -> None:
    """Keep the latest outcome per sign-up; an outcome older than the stored one is ignored."""
    await _known(tx, outcome.edition_id, region)
    if domain.supersedes(outcome.version, await tx.repo.match_version(outcome.signup_id)):
        await tx.repo.save_match(outcome)
    else:
        log.info("older match outcome ignored", signup_id=outcome.signup_id, outcome=outcome.outcome)


async def match_assigned(
    tx: ReportingTx, region: str, edition_id: str, signup_id: str, version: Version, placement: Placement
) -> None:
    await _match_outcome(tx, region, domain.assigned(signup_id, edition_id, version, placement))


async def seat_offered(
    tx: ReportingTx, region: str, edition_id: str, signup_id: str, version: Version, placement: Placement
) -> None:
    await _match_outcome(tx, region, domain.seat_offered(signup_id, edition_id, version, placement))


async def seat_offer_ended(tx: ReportingTx, region: str, edition_id: str, signup_id: str, version: Version) -> None:
    await _match_outcome(tx, region, domain.seat_offer_ended(signup_id, edition_id, version))


async def match_waitlisted(tx: ReportingTx, region: str, edition_id: str, signup_id: str, version: Version) -> None:
    await _match_outcome(tx, region, domain.waitlisted(signup_id, edition_id, version))


async def match_unmatched(tx: ReportingTx, region: str, edition_id: str, signup_id: str, version: Version) -> None:
    await _match_outcome(tx, region, domain.unmatched(signup_id, edition_id, version))


# --- notifications: the latest wins ---------------------------------------------------------
async def _notification_outcome(tx: ReportingTx, region: str, outcome: NotificationOutcome) -> None:
    await notification_outcomes(tx, [(region, outcome)])


async def notification_outcomes(tx: ReportingTx, outcomes: list[tuple[str, NotificationOutcome]]) -> None:
    """Keep the latest outcome per notification (a failure retried with success counts as sent); an
    outcome older than the stored one is ignored. Each outcome (region, outcome) in order, in a constant
    number of statements: editions made known once each, stored versions read (locked) at once, the
    outcomes kept written at once."""
    for edition_id, region in sorted({(o.edition_id, r) for r, o in outcomes}):
        await _known(tx, edition_id, region)
    versions = await tx.repo.notification_versions(sorted({o.notification_id for _, o in outcomes}))
    kept: dict[uuid.UUID, NotificationOutcome] = {}
    for _, outcome in outcomes:
        if domain.supersedes(outcome.version, versions.get(outcome.notification_id)):
            kept[outcome.notification_id], versions[outcome.notification_id] = outcome, outcome.version
        else:
            log.info("older notification outcome ignored", notification_id=str(outcome.notification_id))
    await tx.repo.save_notifications(list(kept.values()))


async def notification_sent(
    tx: ReportingTx, region: str, edition_id: str, notification_id: uuid.UUID, version: Version,
    template: str | None = None,
) -> None:
    outcome = NotificationOutcome(notification_id, edition_id, "sent", version, template)
    await _notification_outcome(tx, region, outcome)


async def notification_failed(
    tx: ReportingTx, region: str, edition_id: str, notification_id: uuid.UUID, version: Version,
    template: str | None = None,
) -> None:
    outcome = NotificationOutcome(notification_id, edition_id, "failed", version, template)
    await _notification_outcome(tx, region, outcome)


# --- feedback and the relay ---------------------------------------------------------------------
async def feedback_submitted(
    tx: ReportingTx, region: str, edition_id: str, feedback_id: str, rating: int, share_publicly: bool = False,
    submitted_at: datetime | None = None,
) -> None:
    """Once per feedback id: the rating, whether it may be shared and when it was given (its day on the
    dashboard) — never what was learned (only an approved knowledge item's text is kept)."""
    await _known(tx, edition_id, region)
    await tx.repo.add_feedback(domain.Feedback(feedback_id, edition_id, rating, share_publicly), submitted_at)


async def knowledge_item_decided(tx: ReportingTx, item: domain.KnowledgeItem) -> None:
    """KnowledgeItemApproved / KnowledgeItemRejected: the latest moderation decision wins; only an approved
    item is ever shown (with its leg), a rejected one keeps no text."""
    await _known(tx, item.edition_id, item.region)
    stored = await tx.repo.knowledge_item(item.feedback_id)
    await tx.repo.save_knowledge_item(domain.knowledge_decided(stored, item))


async def relay_leg_planned(
    tx: ReportingTx, region: str, edition_id: str, leg_id: str, version: Version, position: int,
    first_day: date, last_day: date, activity: str,
) -> None:
    await _known(tx, edition_id, region)
    stored = await tx.repo.relay_leg(leg_id)
    await tx.repo.save_relay_leg(domain.relay_leg_planned(
        stored, leg_id, region, edition_id, version, position, first_day, last_day, activity))


async def relay_leg_started(tx: ReportingTx, region: str, edition_id: str, leg_id: str, starts_on: date) -> None:
    await _known(tx, edition_id, region)
    stored = await tx.repo.relay_leg(leg_id)
    await tx.repo.save_relay_leg(domain.relay_leg_started(stored, leg_id, region, edition_id, starts_on))


async def relay_leg_handed_over(
    tx: ReportingTx, region: str, edition_id: str, leg_id: str, to_region: str, at: datetime,
    to_leg_id: str | None = None, early: bool = False, knowledge_items: tuple[str, ...] = (),
) -> None:
    await _known(tx, edition_id, region)
    stored = await tx.repo.relay_leg(leg_id)
    await tx.repo.save_relay_leg(domain.relay_leg_handed_over(
        stored, leg_id, region, edition_id, to_region, at, to_leg_id, early, knowledge_items))


# --- reading (one snapshot per report) ----------------------------------------------------------
def _everyone(region: str) -> bool:
    """The public dashboard's reader: aggregate figures of every region (no personal data)."""
    return True


async def _edition_report(
    uow: Uow[Repository], edition_id: str, timezone: str, sees: Callable[[str], bool]
) -> domain.EditionReport:
    async with uow.transaction() as tx:
        await tx.repo.read_snapshot()
        figures = await tx.repo.edition_figures(edition_id)
        if figures is None or not sees(figures.region):
            raise NotFound("unknown_edition", f"edition {edition_id} is not known to reporting", "edition_id")
        return domain.EditionReport(
            figures, await tx.repo.day_figures(edition_id, timezone), await tx.repo.template_figures(edition_id)
        )


async def edition_report(
    uow: Uow[Repository], principal: Principal, edition_id: str, timezone: str
) -> domain.EditionReport:
    """One edition's figures and its days (`timezone`: the calendar of sign-ups per day); NotFound
    `unknown_edition` when no event named it, or when it is of a region the caller does not see
    (`Principal.sees`: the same answer, so other regions' ids cannot be probed)."""
    return await _edition_report(uow, edition_id, timezone, principal.sees)


async def overview(uow: Uow[Repository], principal: Principal, registered: Iterable[str] = ()) -> domain.Overview:
    """The figures of every edition and relay leg the caller sees, from one snapshot: an organiser's own
    region only (with national totals of what they see), every region for the national role and admins.
    `registered` (the region registry's ids) adds a row of zeros for a region without editions yet."""
    return replace(await _overview(uow), registered=tuple(registered)).seen_by(principal.sees)


async def dashboard_overview(uow: Uow[Repository]) -> domain.Overview:
    """The public dashboard: every edition's aggregate figures and the relay legs, from one snapshot."""
    return await _overview(uow)


async def dashboard_edition(uow: Uow[Repository], edition_id: str, timezone: str) -> domain.EditionReport:
    """The public dashboard's page of one edition (aggregate figures); NotFound `unknown_edition`."""
    return await _edition_report(uow, edition_id, timezone, _everyone)


async def _overview(uow: Uow[Repository]) -> domain.Overview:
    async with uow.transaction() as tx:
        await tx.repo.read_snapshot()
        return domain.Overview(await tx.repo.all_edition_figures(), await tx.repo.relay_legs())


async def editions_by_status(uow: Uow[Repository]) -> dict[str, int]:
    async with uow.transaction() as tx:
        return await tx.repo.editions_by_status()


# --- public figures, the relay and the dashboard feed (issue 10) ---------------------------------
async def _public(tx: ReportingTx, timezone: str, threshold: int) -> PublicFigures:
    """Suppression is CPU work that grows with the figures: done in a worker thread, so the service's
    event loop (consumers' heartbeats, other requests) keeps running meanwhile."""
    editions, cells = await tx.repo.all_edition_figures(), await tx.repo.day_cells(timezone)
    templates = await tx.repo.all_template_figures()
    return await asyncio.to_thread(public_figures, editions, cells, templates, threshold)


async def public_dashboard(
    uow: Uow[Repository], timezone: str, threshold: int, edition_id: str | None = None,
) -> tuple[PublicFigures, domain.Overview, domain.EditionReport | None]:
    """The public dashboard's figures (suppressed: `public.py`), the overview and, with `edition_id`,
    that edition's report (its offers and seats per day; its people counts come from the figures), from
    one snapshot; NotFound `unknown_edition`."""
    async with uow.transaction() as tx:
        await tx.repo.read_snapshot()
        figures = await _public(tx, timezone, threshold)
        overview = domain.Overview(figures.editions, await tx.repo.relay_legs())
        report = None
        if edition_id is not None:
            e = next((f for f in figures.editions if f.edition_id == edition_id), None)
            if e is None:
                raise NotFound("unknown_edition", f"edition {edition_id} is not known to reporting", "edition_id")
            report = domain.EditionReport(
                e, await tx.repo.day_figures(edition_id, timezone), await tx.repo.template_figures(edition_id))
        return figures, overview, report


async def relay(uow: Uow[Repository], now: datetime, timezone: str, threshold: int) -> RelayView:
    """The relay as the public follows it on `now` (the platform clock): route, holder, days, items."""
    async with uow.transaction() as tx:
        await tx.repo.read_snapshot()
        figures = await _public(tx, timezone, threshold)
        return relay_view(await tx.repo.relay_legs(), await tx.repo.knowledge_items(), figures, now, timezone)


#: The stored fingerprint of every public figure (not a record: never published).
PAGE_KEY = "*page"


async def refresh_dashboard_feed(uow: Uow[Repository], now: datetime, timezone: str, threshold: int) -> int:
    """Publish every DashboardRecord that changed since it was last published (through the outbox, on the
    compacted national topic; keyed `<region>:<edition>:<day>`) and bump the feed's generation when any
    did. One refresh at a time (an advisory lock). Returns the number of records published."""
    async with uow.transaction() as tx:
        await tx.repo.lock_dashboard()
        figures = await _public(tx, timezone, threshold)
        stored = await tx.repo.dashboard_records()
        changed: list[tuple[str, dict[str, object]]] = []
        for fields in figures.records(now):
            record = DashboardRecord.model_validate(fields)
            comparable = record.model_dump(mode="json", exclude={"updated_at"})
            if stored.get(record.key) != comparable:
                changed.append((record.key, comparable))
                tx.publish_raw(DASHBOARD.name, record.key, "DashboardRecord", record.model_dump_json())
        published = len(changed)
        page = {"shown": figures.fingerprint()}  # every public figure: a change of any moves the live pages
        if stored.get(PAGE_KEY) != page:
            changed.append((PAGE_KEY, page))
        if changed:
            await tx.repo.save_dashboard_records(changed, now)
            await tx.repo.bump_dashboard_generation()
        return published


async def dashboard_generation(uow: Uow[Repository]) -> int:
    async with uow.transaction() as tx:
        return await tx.repo.dashboard_generation()
