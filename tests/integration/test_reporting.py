"""Reporting on the real broker and database: a week's events in, exact figures out.

1. The events (contract v2: no names, e-mail addresses or recipients) go to their regions' topics (one
   of them twice, one match outcome out of date); the reporting service runs as a process. Its two
   regions are added to the registry while it runs: they show up in /reports/regions as rows of zeros
   at once, and with their figures once their events arrive (reporting subscribes by pattern: no
   restart). Once its consumer group has committed every offset, the figures must be exact:
   withdrawals, a cancelled offer with a re-assignment, a notification retried after a failure.
   Regions and editions carry a per-run suffix, because other tests of the session publish events too.
2. The same events handled in other orders (as across topics and partitions) give the same figures.
3. The journey (issue 9) in a region of its own: an edition that needs approval (pending, approved,
   refused, withdrawn), an edited offer (capacity and date), a changed sign-up (ignored), feedback (one
   item shareable, one delivered twice), e-mails of several templates, then EditionCancelled (and a late
   EditionClosed): the report says `cancelled` with the reason, the approval figures add up to the
   sign-ups, the feedback figures are exact, in every order of arrival too.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from estafette.runtime.access import Principal
from estafette.runtime.db import create_pool, migrate
from estafette.runtime.consumer import dispatch
from estafette.runtime.uow import UnitOfWork
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    Event,
    FeedbackSubmitted,
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationFailed,
    NotificationSent,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    OfferSummary,
    RelayLegHandedOver,
    RelayLegStarted,
    SeatOfferEnded,
    SeatOffered,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
    topic_for,
)
from services.reporting import handlers, service
from services.reporting.api import EditionReportOut, RegionsReportOut
from services.reporting.repository import Repository
from tests import support
from tests.support import Infra, eventually, region, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

#: The kinds of topic reporting reads, in every region (and the national relay).
CONSUMED = tuple(handlers.SUBSCRIPTIONS)
RUN = uuid.uuid4().hex[:6]
TWENTE, ACHTERHOEK, SALLAND = f"twente-{RUN}", f"achterhoek-{RUN}", f"salland-{RUN}"
ED_T, ED_A, ED_S = f"wvdu-2027-{TWENTE}", f"wvdu-2027-{ACHTERHOEK}", f"wvdu-2027-{SALLAND}"
NOW = datetime.now(UTC)
T0, T1, T2, T3 = (NOW + timedelta(minutes=m) for m in (0, 1, 2, 3))
RUN_0, RUN_1, RUN_2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def opened(region: str, edition: str, name: str, starts: date) -> EditionOpened:
    return EditionOpened(
        region=region, edition=edition, name=name, signup_deadline=datetime(2027, 5, 20, tzinfo=UTC),
        starts_on=starts, ends_on=starts + timedelta(days=4), languages=["nl", "de"],
    )


def offer(region: str, edition: str, offer_id: str, day: date, capacity: int) -> OfferPublished:
    return OfferPublished(
        region=region, edition=edition, offer_id=f"{offer_id}-{RUN}", host_org=f"host-{offer_id}",
        title=f"Een dag bij {offer_id}", date=day, capacity=capacity,
    )


def signup(region: str, edition: str, signup_id: str, org: str, at: str, choices: list[OfferPublished]) -> SignupSubmitted:
    sid = f"{signup_id}-{RUN}"
    return SignupSubmitted(
        region=region, edition=edition, signup_id=sid, org=org, choices=[c.offer_id for c in choices],
        signed_up_at=datetime.fromisoformat(at),
    )


def assigned(s: SignupSubmitted, o: OfferPublished, rank: int, at: datetime, run: uuid.UUID = RUN_1) -> MatchAssigned:
    summary = OfferSummary(offer_id=o.offer_id, host_org=o.host_org, title=o.title, date=o.date)
    return MatchAssigned(
        region=s.region, edition=s.edition, occurred_at=at, signup_id=s.signup_id, run_id=run, rank=rank,
        offer=summary,
    )


def waitlisted(s: SignupSubmitted, at: datetime) -> MatchWaitlisted:
    return MatchWaitlisted(region=s.region, edition=s.edition, occurred_at=at, signup_id=s.signup_id, run_id=RUN_1,
                           position=2, reason_code="all_full")


def offered(s: SignupSubmitted, o: OfferPublished, at: datetime) -> SeatOffered:
    summary = OfferSummary(offer_id=o.offer_id, host_org=o.host_org, title=o.title, date=o.date)
    return SeatOffered(region=s.region, edition=s.edition, occurred_at=at, signup_id=s.signup_id, run_id=RUN_2, rank=1,
                       offer=summary, expires_at=at + timedelta(days=2))


def sent(s: SignupSubmitted, at: datetime, notification_id: uuid.UUID | None = None) -> NotificationSent:
    return NotificationSent(
        region=s.region, edition=s.edition, occurred_at=at, notification_id=notification_id or uuid.uuid4(),
        template="match_assigned", signup_id=s.signup_id,
    )


def failed(s: SignupSubmitted, at: datetime, notification_id: uuid.UUID, permanent: bool) -> NotificationFailed:
    return NotificationFailed(
        region=s.region, edition=s.edition, occurred_at=at, notification_id=notification_id,
        template="match_assigned", signup_id=s.signup_id, permanent=permanent, error="550 mailbox unavailable",
    )


def feedback(s: SignupSubmitted, o: OfferPublished, feedback_id: str, rating: int) -> FeedbackSubmitted:
    return FeedbackSubmitted(
        region=s.region, edition=s.edition, feedback_id=f"{feedback_id}-{RUN}", signup_id=s.signup_id,
        offer_id=o.offer_id, rating=rating, learned="Veel geleerd over hybride werken.",
    )


def week() -> list[Event]:
    """The events of two regional editions, in the order the platform would publish them."""
    o1 = offer(TWENTE, ED_T, "o1", date(2027, 6, 8), 5)
    o2 = offer(TWENTE, ED_T, "o2", date(2027, 6, 9), 3)
    o3 = offer(TWENTE, ED_T, "o3", date(2027, 6, 9), 2)
    o9 = offer(ACHTERHOEK, ED_A, "o9", date(2027, 6, 15), 4)
    # 22:30 UTC on 3 May is 00:30 on 4 May in Amsterdam: the sign-up counts for 4 May.
    s1 = signup(TWENTE, ED_T, "s1", "org-a", "2027-05-03T22:30:00+00:00", [o1])
    s2 = signup(TWENTE, ED_T, "s2", "org-b", "2027-05-04T08:00:00+00:00", [o3, o2])
    s3 = signup(TWENTE, ED_T, "s3", "org-a", "2027-05-05T10:00:00+00:00", [o1, o2])
    s4 = signup(TWENTE, ED_T, "s4", "org-c", "2027-05-05T11:00:00+00:00", [o1])
    s5 = signup(TWENTE, ED_T, "s5", "org-d", "2027-05-06T09:00:00+02:00", [o1])
    s6 = signup(TWENTE, ED_T, "s6", "org-b", "2027-05-06T12:00:00+00:00", [o2, o1, o3])
    s7 = signup(TWENTE, ED_T, "s7", "org-e", "2027-05-06T13:00:00+00:00", [o1])
    s9 = signup(ACHTERHOEK, ED_A, "s9", "org-z", "2027-05-10T12:00:00+00:00", [o9])
    n4 = uuid.uuid4()
    f1 = feedback(s1, o1, "f1", 5)
    return [
        opened(TWENTE, ED_T, "Week van de Uitwisseling Twente & Salland <2027>", date(2027, 6, 7)),
        opened(ACHTERHOEK, ED_A, "Uitwisselingsweek Achterhoek", date(2027, 6, 14)),
        o1, o2, o3, o9,
        s1, s2, s3, s4, s5, s6, s7, s9,
        SignupWithdrawn(region=TWENTE, edition=ED_T, signup_id=s4.signup_id),
        assigned(s1, o1, 1, T1), assigned(s2, o3, 1, T1), assigned(s3, o2, 2, T1), assigned(s4, o1, 1, T1),
        assigned(s6, o3, 3, T1), assigned(s9, o9, 1, T1),
        MatchWaitlisted(region=TWENTE, edition=ED_T, occurred_at=T1, signup_id=s5.signup_id, run_id=RUN_1, position=1,
                        reason_code="all_full"),
        # An outcome of an earlier run, delivered late: older than the stored one, so ignored.
        MatchUnmatched(region=TWENTE, edition=ED_T, occurred_at=T0, signup_id=s5.signup_id, run_id=RUN_0,
                       reason_code="all_full", reason="all chosen offers are full"),
        # A seat freed after publication: s5 declines the offer (back to waiting), s7's offer is open.
        waitlisted(s7, T1), offered(s5, o1, T2), offered(s7, o1, T2),
        SeatOfferEnded(region=TWENTE, edition=ED_T, occurred_at=T3, signup_id=s5.signup_id, run_id=RUN_2,
                       offer_id=o1.offer_id, reason="declined"),
        sent(s1, T2), sent(s2, T2), failed(s3, T2, uuid.uuid4(), permanent=True),
        failed(s6, T2, n4, permanent=False), sent(s6, T3, n4), sent(s9, T2),
        OfferCancelled(region=TWENTE, edition=ED_T, offer_id=o3.offer_id, reason="host ill"),
        # s2 is re-matched to its second choice; s6 is still waiting for its re-match.
        assigned(s2, o2, 2, T3, RUN_2), sent(s2, T3),
        f1, f1, feedback(s3, o2, "f2", 4),
        RelayLegStarted(region=TWENTE, edition=ED_T, leg_id=f"leg-{TWENTE}", starts_on=date(2027, 6, 7)),
        RelayLegHandedOver(region=TWENTE, edition=ED_T, leg_id=f"leg-{TWENTE}", to_region=ACHTERHOEK),
        EditionClosed(region=TWENTE, edition=ED_T, reason="week over"),
    ]


EXPECTED_TWENTE = {
    "edition": ED_T, "region": TWENTE, "name": "Week van de Uitwisseling Twente & Salland <2027>",
    "status": "closed", "cancellation_reason": None, "cancelled_at": None,
    "starts_on": "2027-06-07", "ends_on": "2027-06-11",
    "offers": 2, "seats": 8, "offers_cancelled": 1,
    "signups": 6, "withdrawn": 1, "organisations": 4,
    "approval": {"not_required": 6, "pending": 0, "approved": 0, "refused": 0},
    "assigned": 3, "waitlisted": 1, "unmatched": 0, "awaiting_rematch": 1, "seat_offers_open": 1,
    "first_choice_share": 0.333,
    "emails_sent": 4, "emails_failed": 1,
    "emails_by_template": {"match_assigned": {"sent": 4, "failed": 1}},
    "feedback": {"count": 2, "average_rating": 4.5, "shareable": 0},
    "by_day": [
        {"date": "2027-05-04", "signups": 2, "offers": 0, "seats": 0, "assigned": 0},
        {"date": "2027-05-05", "signups": 1, "offers": 0, "seats": 0, "assigned": 0},
        {"date": "2027-05-06", "signups": 3, "offers": 0, "seats": 0, "assigned": 0},
        {"date": "2027-06-08", "signups": 0, "offers": 1, "seats": 5, "assigned": 1},
        {"date": "2027-06-09", "signups": 0, "offers": 1, "seats": 3, "assigned": 2},
    ],
}
NO_FEEDBACK = {"count": 0, "average_rating": None, "shareable": 0}


def approvals(not_required: int = 0, pending: int = 0, approved: int = 0, refused: int = 0) -> dict[str, int]:
    return {"not_required": not_required, "pending": pending, "approved": approved, "refused": refused}


EXPECTED_REGIONS = {
    TWENTE: {"region": TWENTE, "editions": 1, "offers": 2, "signups": 6, "withdrawn": 1, "assigned": 3,
             "emails_sent": 4, "approval": approvals(not_required=6),
             "feedback": {"count": 2, "average_rating": 4.5, "shareable": 0}},
    ACHTERHOEK: {"region": ACHTERHOEK, "editions": 1, "offers": 1, "signups": 1, "withdrawn": 0, "assigned": 1,
                 "emails_sent": 1, "approval": approvals(not_required=1), "feedback": NO_FEEDBACK},
}


def wait_caught_up(infra: Infra) -> None:
    support.wait_caught_up(infra.kafka, "reporting", CONSUMED)


def metric(url: str, name: str, labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_reports_are_exact_after_a_week_of_events(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}  # the reports' policy is Figures; the dashboard is public
    with services(infra, "reporting", extra_env={"REPORTING_GAUGE_REFRESH_SECONDS": "0.3"}) as running:
        url = running["reporting"].url
        wait_caught_up(infra)  # whatever earlier tests of the session published
        duplicates_before = metric(url, "events_duplicate_total", 'consumer="reporting.feedback"')

        def new_rows() -> dict[str, dict] | None:
            """The rows of this test's regions in /reports/regions, once both are there."""
            body = httpx.get(f"{url}/reports/regions", headers=admin, timeout=5).json()
            found = {r["region"]: r for r in body["regions"] if r["region"] in (TWENTE, ACHTERHOEK)}
            return found if len(found) == 2 else None

        assert new_rows() is None
        infra.add_regions(region(TWENTE), region(ACHTERHOEK))  # `estafette regions apply` while reporting runs
        zeros = {"editions": 0, "offers": 0, "signups": 0, "withdrawn": 0, "assigned": 0, "emails_sent": 0,
                 "approval": approvals(), "feedback": NO_FEEDBACK}
        assert eventually(new_rows, timeout=30) == {  # registered, no events yet: rows of zeros
            TWENTE: {"region": TWENTE, **zeros}, ACHTERHOEK: {"region": ACHTERHOEK, **zeros}}

        infra.produce(week())  # the new regions' topics: reporting's pattern subscription picks them up
        wait_caught_up(infra)

        assert metric(url, "events_duplicate_total", 'consumer="reporting.feedback"') == duplicates_before + 1
        twente = httpx.get(f"{url}/reports/editions/{ED_T}", headers=admin, timeout=5)
        assert twente.status_code == 200
        assert twente.json() == EXPECTED_TWENTE
        achterhoek = httpx.get(f"{url}/reports/editions/{ED_A}", headers=admin, timeout=5).json()
        assert {k: achterhoek[k] for k in ("status", "offers", "seats", "signups", "assigned", "first_choice_share", "emails_sent")} == {
            "status": "open", "offers": 1, "seats": 4, "signups": 1, "assigned": 1, "first_choice_share": 1.0, "emails_sent": 1,
        }
        assert achterhoek["feedback"] == NO_FEEDBACK

        unknown = httpx.get(f"{url}/reports/editions/no-such-edition-{RUN}", headers=admin, timeout=5)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_edition"

        regions = httpx.get(f"{url}/reports/regions", headers=admin, timeout=5).json()
        mine = {r["region"]: r for r in regions["regions"] if r["region"] in (TWENTE, ACHTERHOEK)}
        assert mine == EXPECTED_REGIONS
        national = regions["national"]
        assert national["regions"] == len(regions["regions"])
        for figure in ("editions", "offers", "signups", "assigned", "emails_sent"):
            assert national[figure] == sum(r[figure] for r in regions["regions"])
        (leg,) = [r for r in regions["relay"] if r["leg"] == f"leg-{TWENTE}"]
        assert (leg["region"], leg["starts_on"], leg["handed_over_to"]) == (TWENTE, "2027-06-07", ACHTERHOEK)

        page = httpx.get(f"{url}/dashboard", params={"lang": "de"}, timeout=5)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["content-language"] == "de"
        html = page.text
        assert '<html lang="de">' in html
        for label in ("Landesweit", "Anmeldungen", "Zugeteilt", "Warteliste", "E-Mails versendet", "Etappen der Staffel"):
            assert label in html
        assert "Aanmeldingen" not in html and "Sign-ups" not in html
        assert "Week van de Uitwisseling Twente &amp; Salland &lt;2027&gt;" in html
        assert "<2027>" not in html

        detail = httpx.get(f"{url}/dashboard", params={"edition": ED_T}, headers={"Accept-Language": "de-DE,en;q=0.5"}, timeout=5)
        assert detail.status_code == 200
        assert "Pro Tag" in detail.text and "08.06.2027" in detail.text
        # the public page suppresses counts below 5 (issue 10): the share of a few assignments is not shown
        assert "33,3\u00a0%" not in detail.text and "&lt; 5" in detail.text
        english = httpx.get(f"{url}/dashboard", headers={"Accept-Language": "en-GB"}, timeout=5).text
        assert "Sign-ups" in english and "Anmeldungen" not in english

        eventually(lambda: metric(url, "reporting_editions", 'status="closed"') >= 1, timeout=5)



#: The consumer's dispatch table of each topic, as `handlers.register` subscribes them.
HANDLERS = {topic: dispatch(table) for topic, (_, table) in handlers.SUBSCRIPTIONS.items()}
SCRATCH = f"reporting_order_{RUN}"
ADMIN = Principal("admin")
MIGRATIONS = Path(handlers.__file__).parent / "migrations"


async def reports_after(uow: UnitOfWork, events: list[Event], edition_id: str = ED_T) -> tuple[dict, dict]:
    """Handle `events` in this order, one transaction each, as the consumers would; return the reports
    (of `edition_id`, and the regions)."""
    async with uow.transaction() as tx:
        await tx.conn.execute("TRUNCATE editions, offers, signups, matches, notifications, feedback, relay_legs, inbox")
    for event in events:
        topic = topic_for(event)
        async with uow.transaction() as tx:
            for fresh in await tx.claim(f"reporting.{handlers.SUBSCRIPTIONS[topic][0]}", [event]):
                await HANDLERS[topic](tx, fresh)
    edition = EditionReportOut.of(await service.edition_report(uow, ADMIN, edition_id, "Europe/Amsterdam"))
    regions = RegionsReportOut.of(await service.overview(uow, ADMIN))
    return edition.model_dump(mode="json"), regions.model_dump(mode="json")


async def reports_in_orders(orders: list[list[Event]], edition_id: str = ED_T) -> list[tuple[dict, dict]]:
    """Run the reporting schema in a scratch schema of the test database, once per order."""
    admin = await asyncpg.connect(Infra.admin_dsn())
    await admin.execute(f"CREATE SCHEMA {SCRATCH}")
    uow = UnitOfWork(SCRATCH, Repository)
    uow.pool = await create_pool(Infra.admin_dsn(), SCRATCH)
    try:
        await migrate(uow.pool, SCRATCH, MIGRATIONS)
        return [await reports_after(uow, order, edition_id) for order in orders]
    finally:
        await uow.pool.close()
        await admin.execute(f"DROP SCHEMA {SCRATCH} CASCADE")
        await admin.close()


def test_figures_do_not_depend_on_the_order_of_arrival(infra: Infra) -> None:
    events = week()
    shuffled = [random.Random(seed).sample(events, len(events)) for seed in range(3)]
    for edition, regions in asyncio.run(reports_in_orders([events, events[::-1], *shuffled])):
        assert edition == EXPECTED_TWENTE
        assert {r["region"]: r for r in regions["regions"]} == EXPECTED_REGIONS
        assert regions["national"] == {
            "regions": 2, "editions": 2, "offers": 3, "signups": 7, "withdrawn": 1, "assigned": 4, "emails_sent": 5,
            "approval": approvals(not_required=7), "feedback": {"count": 2, "average_rating": 4.5, "shareable": 0}}


# --- the journey (issue 9) in a region of its own ---------------------------------------------------
def journey() -> list[Event]:
    """An edition that needs approval, from its offer and sign-ups to its cancellation after the match."""
    edition = dict(region=SALLAND, edition=ED_S)
    o1 = OfferPublished(**edition, offer_id=f"j1-{RUN}", host_org="host-j1", title="Digitaal werken", date=date(2027, 6, 8),
                        capacity=3)
    moved = OfferChanged(**{**o1.model_dump(exclude={"event_id", "occurred_at", "event_type"}), "date": date(2027, 6, 9),
                            "capacity": 5, "sequence": 1, "changed": ["date", "capacity"]})
    s1, s2, s3, s4, s5 = (
        SignupSubmitted(**edition, signup_id=f"j{n}-{RUN}", org=f"org-{n}", choices=[o1.offer_id],
                        signed_up_at=datetime(2027, 5, 4, 8, n, tzinfo=UTC), approval="pending")
        for n in range(1, 6)
    )
    summary = OfferSummary(offer_id=o1.offer_id, host_org=o1.host_org, title=o1.title, date=o1.date)  # the old date

    def mail(s: SignupSubmitted, template: str, ok: bool = True) -> Event:
        common = dict(**edition, notification_id=uuid.uuid4(), template=template, signup_id=s.signup_id, occurred_at=T2)
        return NotificationSent(**common) if ok else NotificationFailed(**common, permanent=True, error="550 unknown")

    f1 = FeedbackSubmitted(**edition, feedback_id=f"jf1-{RUN}", signup_id=s1.signup_id, offer_id=o1.offer_id, rating=5,
                           learned="Veel over digitaal werken.", share_publicly=True, language="nl", submitted_at=T2)
    f2 = FeedbackSubmitted(**edition, feedback_id=f"jf2-{RUN}", signup_id=s2.signup_id, offer_id=o1.offer_id, rating=2,
                           learned="Niet veel.", language="de", submitted_at=T2)
    return [
        EditionOpened(**edition, name="Week van de Uitwisseling Salland", signup_deadline=datetime(2027, 5, 20, tzinfo=UTC),
                      starts_on=date(2027, 6, 7), ends_on=date(2027, 6, 11), requires_approval=True),
        o1, s1, s2, s3, s4, s5,
        SignupApproved(**edition, signup_id=s1.signup_id), SignupApproved(**edition, signup_id=s2.signup_id),
        SignupApproved(**edition, signup_id=s3.signup_id), SignupRefused(**edition, signup_id=s4.signup_id, reason="nee"),
        SignupChanged(**edition, signup_id=s2.signup_id, choices=[o1.offer_id], max_visits=1),
        SignupWithdrawn(**edition, signup_id=s3.signup_id),
        mail(s1, "signup_confirmed"), mail(s2, "signup_confirmed"),
        MatchAssigned(**edition, occurred_at=T1, signup_id=s1.signup_id, run_id=RUN_1, rank=1, offer=summary),
        MatchAssigned(**edition, occurred_at=T1, signup_id=s2.signup_id, run_id=RUN_1, rank=1, offer=summary),
        mail(s1, "assigned"), mail(s2, "assigned", ok=False),
        moved,
        f1, f1, f2,
        EditionCancelled(**edition, occurred_at=T3, reason="Storm: geen bezoeken"),
        mail(s1, "edition_cancelled"), mail(s2, "edition_cancelled"), mail(s5, "edition_cancelled"),
        EditionClosed(**edition, reason="late"),
    ]


EXPECTED_SALLAND = {
    "edition": ED_S, "region": SALLAND, "name": "Week van de Uitwisseling Salland",
    "status": "cancelled", "cancellation_reason": "Storm: geen bezoeken",
    "cancelled_at": T3.isoformat().replace("+00:00", "Z"),
    "starts_on": "2027-06-07", "ends_on": "2027-06-11",
    "offers": 1, "seats": 5, "offers_cancelled": 0,
    # j1, j2 approved, j5 pending; j3 withdrawn (after its approval); j4 refused
    "signups": 3, "withdrawn": 1, "organisations": 3,
    "approval": approvals(pending=1, approved=2, refused=1),
    "assigned": 2, "waitlisted": 0, "unmatched": 0, "awaiting_rematch": 0, "seat_offers_open": 0,
    "first_choice_share": 1.0,
    "emails_sent": 6, "emails_failed": 1,
    "emails_by_template": {"assigned": {"sent": 1, "failed": 1}, "edition_cancelled": {"sent": 3, "failed": 0},
                           "signup_confirmed": {"sent": 2, "failed": 0}},
    "feedback": {"count": 2, "average_rating": 3.5, "shareable": 1},
    "by_day": [
        {"date": "2027-05-04", "signups": 3, "offers": 0, "seats": 0, "assigned": 0},
        # the offer moved to 9 June (OfferChanged): its seats and the visits of those placed there with it
        {"date": "2027-06-09", "signups": 0, "offers": 1, "seats": 5, "assigned": 2},
    ],
}
EXPECTED_SALLAND_ROW = {
    "region": SALLAND, "editions": 1, "offers": 1, "signups": 3, "withdrawn": 1, "assigned": 2, "emails_sent": 6,
    "approval": approvals(pending=1, approved=2, refused=1), "feedback": {"count": 2, "average_rating": 3.5, "shareable": 1},
}


def test_a_cancelled_edition_shows_cancelled_and_its_approval_and_feedback_figures_add_up(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    infra.add_regions(region(SALLAND))
    with services(infra, "reporting", extra_env={"REPORTING_GAUGE_REFRESH_SECONDS": "0.3"}) as running:
        url = running["reporting"].url
        infra.produce(journey())
        wait_caught_up(infra)  # every event consumed (none dead-lettered: see below)

        body = httpx.get(f"{url}/reports/editions/{ED_S}", headers=admin, timeout=5).json()
        assert body == EXPECTED_SALLAND
        approval = body["approval"]
        assert approval["not_required"] + approval["pending"] + approval["approved"] == body["signups"]
        row = [r for r in httpx.get(f"{url}/reports/regions", headers=admin, timeout=5).json()["regions"]
               if r["region"] == SALLAND]
        assert row == [EXPECTED_SALLAND_ROW]

        pages = {lang: httpx.get(f"{url}/dashboard", params={"lang": lang, "edition": ED_S}, timeout=5).text
                 for lang in ("nl", "de", "en")}
        assert "geannuleerd" in pages["nl"] and "abgesagt" in pages["de"] and "cancelled" in pages["en"]
        assert "Storm: geen bezoeken" in pages["en"] and "Editie geannuleerd" in pages["nl"]
        eventually(lambda: metric(url, "reporting_editions", 'status="cancelled"') >= 1, timeout=5)
        for consumer in ("editions", "offers", "signups"):
            assert metric(url, "dead_letters_total", f'consumer="reporting.{consumer}"') == 0


def test_journey_figures_do_not_depend_on_the_order_of_arrival(infra: Infra) -> None:
    events = journey()
    shuffled = [random.Random(seed).sample(events, len(events)) for seed in range(3)]
    for edition, regions in asyncio.run(reports_in_orders([events, events[::-1], *shuffled], ED_S)):
        assert edition == EXPECTED_SALLAND
        assert regions["regions"] == [EXPECTED_SALLAND_ROW]
