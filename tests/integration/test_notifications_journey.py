"""The journey's e-mails (issue 9) from the notifications service as a real process on real Kafka,
PostgreSQL and the mail sink, with a test clock: events are produced with `infra.produce` as
registration and matching publish them; e-mails are read back from the mail sink (their `.ics`
parsed with icalendar), and which message was recorded for whom from the service's database.

One edition walks its whole journey (confirmation, assignment with a calendar entry, an offer
changed, an offer cancelled, a withdrawal, the reminder and the host's visitor list the day before,
the feedback request after the visit) with two graceful restarts (SIGTERM) of notifications in the
middle: every person gets exactly one e-mail of each kind. Another edition is cancelled after the
match: every participant who was placed, waiting or not matched yet, and every host, is told once.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, TypeVar
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from icalendar import Calendar

from estafette.runtime.auth import Links
from estafette.runtime.clock import Clock
from schemas import (
    EditionCancelled,
    EditionOpened,
    HostContact,
    MatchAssigned,
    MatchWaitlisted,
    OfferCancelled,
    OfferChanged,
    OfferPublished,
    OfferSummary,
    ParticipantRegistered,
    SeatOffered,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from tests.support import LINK_SECRET, Infra, ServiceProcess, TestClock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

T = TypeVar("T")
RUN = uuid.uuid4().hex[:8]
REGION = "twente"  # Europe/Amsterdam
AMS = ZoneInfo("Europe/Amsterdam")
REGISTRATION_URL = "https://registration.estafette.test"
#: The journey starts two weeks before its visits (15 and 16 June 2027).
T0 = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)
SERVICE_ENV = {
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
    "NOTIFICATIONS_REGISTRATION_PUBLIC_URL": REGISTRATION_URL,
    "ESTAFETTE_SCHEDULER_POLL_SECONDS": "0.2",
}


# --- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clock() -> TestClock:
    return TestClock(T0)


@pytest.fixture(scope="module")
def notifications(infra: Infra, clock: TestClock) -> Iterator[ServiceProcess]:
    process = ServiceProcess(infra, "notifications", {**clock.env, **SERVICE_ENV})
    try:
        yield process.start()
    finally:
        process.stop()


async def until(check: Callable[[], Awaitable[T]], timeout: float = 45, interval: float = 0.25) -> T:
    """Poll `check()` until it returns a truthy value (returned), else fail with the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def mails_to(infra: Infra, address: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=infra.mail_api, timeout=5) as client:
        response = await client.get("/api/messages", params={"to": address})
    response.raise_for_status()
    return sorted((m for m in response.json() if address in m["to"]), key=lambda m: m["id"])


async def raw_mail(infra: Infra, mail_id: int) -> email.message.EmailMessage:
    async with httpx.AsyncClient(base_url=infra.mail_api, timeout=5) as client:
        response = await client.get(f"/api/messages/{mail_id}/raw")
    response.raise_for_status()
    return email.message_from_bytes(response.content, policy=email.policy.default)  # type: ignore[return-value]


async def invite(infra: Infra, mail: dict[str, Any]) -> tuple[str, Any]:
    """The mail's `invite.ics`: (its content type, its one VEVENT parsed back by icalendar)."""
    message = await raw_mail(infra, mail["id"])
    (part,) = [p for p in message.iter_attachments() if p.get_filename() == "invite.ics"]
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    return f"{part.get_content_type()}; method={part.get_param('method')}", (calendar, event)


async def recorded(infra: Infra, edition: str) -> list[asyncpg.Record]:
    """The messages recorded for the edition: (who: the sign-up id or the host's address, kind, status)."""
    conn = await asyncpg.connect(infra.dsn("notifications"), server_settings={"search_path": "notifications"})
    try:
        return await conn.fetch(
            "SELECT id, coalesce(signup_id, recipient_email) AS who, kind, status FROM notifications"
            " WHERE edition = $1 ORDER BY created_at",
            edition,
        )
    finally:
        await conn.close()


async def mail(infra: Infra, edition: str, to: str, who: str, kind: str) -> dict[str, Any]:
    """The one e-mail of `kind` to `to` (`who`: their sign-up id, or the host's address), found by its
    Message-ID (the notification id); waits for it."""

    async def found() -> dict[str, Any] | None:
        ids = [r["id"] for r in await recorded(infra, edition) if r["who"] == who and r["kind"] == kind]
        assert len(ids) <= 1, ids
        mails = [m for m in await mails_to(infra, to) if ids and m["headers"].get("Message-ID") == f"<{ids[0]}@estafette.local>"]
        return mails[0] if mails else None

    return await until(found)


async def kinds(infra: Infra, edition: str, status: str | None = "sent") -> dict[str, list[str]]:
    """Per person (sign-up id or host address): the kinds of their messages (with `status`)."""
    found: dict[str, list[str]] = {}
    for row in await recorded(infra, edition):
        if status is None or row["status"] == status:
            found.setdefault(row["who"], []).append(row["kind"])
    return {who: sorted(k) for who, k in found.items()}


async def scheduled(infra: Infra, *keys: str) -> list[asyncpg.Record]:
    """The scheduled steps (not done) whose key contains one of `keys`."""
    conn = await asyncpg.connect(infra.dsn("notifications"), server_settings={"search_path": "notifications"})
    try:
        rows = await conn.fetch("SELECT kind, key, due_at, done_at FROM scheduled_steps WHERE done_at IS NULL")
    finally:
        await conn.close()
    return [r for r in rows if any(k in r["key"] for k in keys)]


async def offers_known(infra: Infra, *offers: OfferPublished) -> None:
    """Wait until the service keeps these offers. On the platform an offer is published long before
    anyone is matched to it; produced at once, a match event (another topic) could be read first and
    would show the offer as its summary says it (a whole day)."""

    async def kept() -> bool:
        conn = await asyncpg.connect(infra.dsn("notifications"), server_settings={"search_path": "notifications"})
        try:
            ids = [o.offer_id for o in offers]
            return await conn.fetchval("SELECT count(*) FROM offers WHERE offer_id = ANY($1::text[])", ids) == len(ids)
        finally:
            await conn.close()

    await until(kept)


async def signup_status(infra: Infra, signup_id: str, status: str) -> None:
    """Wait until the service keeps the sign-up with `status` (topics are read apart: see `offers_known`)."""

    async def kept() -> bool:
        conn = await asyncpg.connect(infra.dsn("notifications"), server_settings={"search_path": "notifications"})
        try:
            return await conn.fetchval("SELECT status FROM signups WHERE signup_id = $1", signup_id) == status
        finally:
            await conn.close()

    await until(kept)


def link_token(text: str, path: str) -> str:
    """The token of the first `{REGISTRATION_URL}{path}<token>` link in `text`."""
    start = text.index(f"{REGISTRATION_URL}{path}") + len(f"{REGISTRATION_URL}{path}")
    end = start
    while end < len(text) and (text[end].isalnum() or text[end] in "-_.%"):
        end += 1
    return unquote(text[start:end])


def address(name: str) -> str:
    return f"{name.lower()}-{RUN}-{uuid.uuid4().hex[:6]}@example.org"


def host(name: str, language: str) -> HostContact:
    return HostContact(name=name, email=address(name), language=language)


def person(edition: str, name: str, language: str, org: str, goal: str = "") -> ParticipantRegistered:
    return ParticipantRegistered(
        region=REGION, edition=edition, signup_id=f"s-{name.lower()}-{RUN}", name=name, email=address(name),
        language=language, org=org, learning_goal=goal,
    )


def signup(p: ParticipantRegistered, *choices: str, approval: str = "not_required") -> SignupSubmitted:
    return SignupSubmitted(
        region=REGION, edition=p.edition, signup_id=p.signup_id, org=p.org or "org", language=p.language,
        choices=list(choices), signed_up_at=T0, approval=approval,  # type: ignore[arg-type]
    )


def summary(offer: OfferPublished) -> OfferSummary:
    return OfferSummary(offer_id=offer.offer_id, host_org=offer.host_org, title=offer.title, date=offer.date,
                        location=offer.location)


def assign(p: ParticipantRegistered, offer: OfferPublished) -> MatchAssigned:
    return MatchAssigned(region=REGION, edition=p.edition, signup_id=p.signup_id, run_id=uuid.uuid4(), rank=1,
                         offer=summary(offer))


def edition_opened(edition: str, starts_on: date) -> EditionOpened:
    return EditionOpened(
        region=REGION, edition=edition, name=f"Week van de Uitwisseling {edition}", signup_deadline=T0 + timedelta(days=3),
        starts_on=starts_on, ends_on=starts_on + timedelta(days=4), languages=["nl", "de", "en"],
    )


# --- the journey --------------------------------------------------------------------------------
async def test_the_journey_sends_each_person_each_email_once_across_restarts(
    infra: Infra, notifications: ServiceProcess, clock: TestClock
) -> None:
    edition = f"journey-{RUN}"
    hanna, ruud, carol = host("Hanna", "de"), host("Ruud", "nl"), host("Carl", "en")
    bakery = OfferPublished(  # 15 June 2027, 09:30-12:00 in Enschede; its host contact speaks German
        region=REGION, edition=edition, offer_id=f"o-bakery-{RUN}", host_org="bakkerij-van-dam",
        title="Een dag in de bakkerij", date=date(2027, 6, 15), capacity=5, location="Marktstraat 1, Enschede",
        part_of_day="morning", starts_at=clock_time(9, 30), ends_at=clock_time(12, 0), what_to_bring="Dichte schoenen",
        host_contact=hanna,
    )
    webinar = OfferPublished(  # 16 June, afternoon (13:00-17:00), online
        region=REGION, edition=edition, offer_id=f"o-webinar-{RUN}", host_org="gemeente-hengelo", title="Slimmer werken",
        date=date(2027, 6, 16), capacity=5, format="webinar", attendance="online", part_of_day="afternoon",
        join_url="https://meet.example.org/slimmer", host_contact=ruud,
    )
    garage = OfferPublished(  # cancelled later
        region=REGION, edition=edition, offer_id=f"o-garage-{RUN}", host_org="garage-oost", title="Garage",
        date=date(2027, 6, 15), capacity=2, location="Oostweg 2", host_contact=carol,
    )
    p1 = person(edition, "Anna", "nl", "gemeente-enschede", "Hoe een bakkerij plant")
    p2 = person(edition, "Ben", "en", "saxion", "Lean werken")
    p3 = person(edition, "Clara", "de", "roc-twente")
    p4 = person(edition, "Daan", "nl", "provincie")  # withdraws
    p5 = person(edition, "Eva", "en", "ut")  # placed on the garage, which is cancelled
    p6 = person(edition, "Fenna", "nl", "waterschap")  # holds a seat offer on the garage
    people = [p1, p2, p3, p4, p5, p6]
    seat = SeatOffered(region=REGION, edition=edition, signup_id=p6.signup_id, run_id=uuid.uuid4(), rank=1,
                       offer=summary(garage), expires_at=T0 + timedelta(days=2))
    infra.produce([
        edition_opened(edition, date(2027, 6, 14)), bakery, webinar, garage, *people,
        *(signup(p, bakery.offer_id, webinar.offer_id) for p in people),
    ])
    await offers_known(infra, bakery, webinar, garage)
    infra.produce([
        assign(p1, bakery), assign(p2, bakery), assign(p3, webinar), assign(p4, bakery), assign(p5, garage), seat,
    ])

    # 1. Confirmation (with a working "my sign-up" link) and the result with its calendar entry.
    links = Links(LINK_SECRET, Clock(file=clock.path))  # tokens are issued on the test clock
    for p in people:
        await until(lambda p=p: _has(infra, str(p.email), 2))
    confirmation = await mail(infra, edition, str(p1.email), p1.signup_id, "signup_confirmed")
    assigned = await mail(infra, edition, str(p1.email), p1.signup_id, "assigned")
    token = link_token(confirmation["text"], "/links/signup/")
    claims = links.read(token, "signup", 3600)
    assert (claims.signup_id, claims.edition_id) == (p1.signup_id, edition)
    assert confirmation["attachments"] == []
    assert [a["filename"] for a in assigned["attachments"]] == ["invite.ics"]
    assert (confirmation["headers"]["X-Estafette-Kind"], assigned["headers"]["X-Estafette-Kind"]) == ("signup_confirmed", "assigned")
    content_type, (calendar, event) = await invite(infra, assigned)
    assert content_type == "text/calendar; method=REQUEST" and str(calendar["METHOD"]) == "REQUEST"
    assert event.decoded("DTSTART") == datetime(2027, 6, 15, 9, 30, tzinfo=AMS)
    assert event.decoded("DTEND") == datetime(2027, 6, 15, 12, 0, tzinfo=AMS)
    assert event["DTSTART"].params["TZID"] == "Europe/Amsterdam"
    assert (str(event["UID"]), int(event["SEQUENCE"]), str(event["LOCATION"])) == (
        f"{p1.signup_id}.{bakery.offer_id}@estafette", 0, "Marktstraat 1, Enschede")
    assert link_token(assigned["text"], "/links/signup/")  # "my sign-up" in the result too

    # 2. Changes, with a graceful restart right after they were published (mid-way).
    change = OfferChanged(**{**webinar.model_dump(exclude={"event_id", "event_type", "occurred_at", "correlation_id"}),
                             "starts_at": clock_time(14, 0), "sequence": 1, "changed": ["starts_at"]})
    infra.produce([change, OfferCancelled(region=REGION, edition=edition, offer_id=garage.offer_id, reason="De garage is verbouwd"),
                   SignupWithdrawn(region=REGION, edition=edition, signup_id=p4.signup_id)])
    assert notifications.terminate()[0] == 0
    notifications.start()
    changed = await mail(infra, edition, str(p3.email), p3.signup_id, "offer_changed")
    off_placed = await mail(infra, edition, str(p5.email), p5.signup_id, "offer_cancelled")
    off_held = await mail(infra, edition, str(p6.email), p6.signup_id, "offer_cancelled")
    withdrew = await mail(infra, edition, hanna.email, hanna.email, "visitor_withdrew")
    _, (_, event) = await invite(infra, changed)
    assert (str(event["UID"]), int(event["SEQUENCE"])) == (f"{p3.signup_id}.{webinar.offer_id}@estafette", 1)
    assert event.decoded("DTSTART") == datetime(2027, 6, 16, 14, 0, tzinfo=AMS)
    assert str(event["URL"]) == "https://meet.example.org/slimmer"
    content_type, (calendar, event) = await invite(infra, off_placed)
    assert content_type == "text/calendar; method=CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert off_held["attachments"] == []  # a seat offer had no calendar entry
    assert "De garage is verbouwd" in off_held["text"]
    assert withdrew["headers"]["Content-Language"] == "de" and "Daan" in withdrew["text"]

    # 3. The day before the bakery visit, 09:00 in Enschede: reminders and the host's visitor list,
    #    with another graceful restart as soon as the first of them is out.
    clock.move_to(datetime(2027, 6, 14, 9, 0, 5, tzinfo=AMS))
    await until(lambda: _has(infra, str(p1.email), 3))
    assert notifications.terminate()[0] == 0
    notifications.start()
    reminder = await mail(infra, edition, str(p1.email), p1.signup_id, "reminder")
    await mail(infra, edition, str(p2.email), p2.signup_id, "reminder")
    assert [a["filename"] for a in reminder["attachments"]] == ["invite.ics"]
    listing = await mail(infra, edition, hanna.email, hanna.email, "visitor_list")
    assert listing["headers"]["Content-Language"] == "de"  # in the host contact's language
    for name, org, goal in (("Anna", "gemeente-enschede", "Hoe een bakkerij plant"), ("Ben", "saxion", "Lean werken")):
        assert name in listing["text"] and org in listing["text"] and goal in listing["text"]
    assert "Daan" not in listing["text"]  # withdrew
    _, (_, event) = await invite(infra, listing)
    assert str(event["UID"]) == f"host.{bakery.offer_id}@estafette"

    # The day before the webinar: its reminder and list (in Dutch, the host's language).
    clock.move_to(datetime(2027, 6, 15, 9, 0, 5, tzinfo=AMS))
    await mail(infra, edition, str(p3.email), p3.signup_id, "reminder")
    assert (await mail(infra, edition, ruud.email, ruud.email, "visitor_list"))["headers"]["Content-Language"] == "nl"

    # 4. After the visits: the feedback requests, with a signed feedback link for the visit.
    clock.move_to(datetime(2027, 6, 16, 17, 0, 5, tzinfo=AMS))
    for p in (p1, p3):
        await mail(infra, edition, str(p.email), p.signup_id, "feedback_request")
    feedback = await mail(infra, edition, str(p2.email), p2.signup_id, "feedback_request")
    claims = links.read(link_token(feedback["text"], "/links/feedback/"), "feedback", 3600)
    assert (claims.signup_id, claims.edition_id, claims.ref) == (p2.signup_id, edition, bakery.offer_id)

    # Exactly one e-mail of each kind per person, after everything settled.
    expected = {
        p1.signup_id: ["assigned", "feedback_request", "reminder", "signup_confirmed"],
        p2.signup_id: ["assigned", "feedback_request", "reminder", "signup_confirmed"],
        p3.signup_id: ["assigned", "feedback_request", "offer_changed", "reminder", "signup_confirmed"],
        p4.signup_id: ["assigned", "signup_confirmed"],
        p5.signup_id: ["assigned", "offer_cancelled", "signup_confirmed"],
        p6.signup_id: ["offer_cancelled", "seat_offered", "signup_confirmed"],
        hanna.email: ["visitor_list", "visitor_withdrew"],
        ruud.email: ["visitor_list"],
    }
    assert await kinds(infra, edition, status=None) == expected  # recorded, every one sent
    assert await kinds(infra, edition) == expected
    for p in people:
        assert len(await mails_to(infra, str(p.email))) == len(expected[p.signup_id]), p.name
    for h in (hanna, ruud):
        assert len(await mails_to(infra, h.email)) == len(expected[h.email])
    assert await mails_to(infra, carol.email) == []  # the garage was cancelled: no list
    ids = [p.signup_id for p in people] + [bakery.offer_id, webinar.offer_id, garage.offer_id]
    assert await scheduled(infra, *ids) == []  # every step ran or was cancelled


async def _has(infra: Infra, address: str, count: int) -> bool:
    """At least `count` e-mails to `address` (more is caught by the exact counts at the end)."""
    return len(await mails_to(infra, address)) >= count


# --- an edition cancelled after the match ------------------------------------------------------------
async def test_an_edition_cancelled_after_the_match_tells_every_participant_and_host_once(
    infra: Infra, notifications: ServiceProcess, clock: TestClock
) -> None:
    edition = f"cancelled-{RUN}"
    hosts = {"a": host("Arend", "en"), "b": host("Berta", "de")}
    offers = [
        OfferPublished(region=REGION, edition=edition, offer_id=f"o-{k}-cx-{RUN}", host_org=f"host-{k}", title=f"Offer {k}",
                       date=date(2027, 7, 1), capacity=3, location="Enschede", host_contact=h)
        for k, h in hosts.items()
    ]
    placed, waiting, unmatched = person(edition, "Gerrit", "de", "x"), person(edition, "Hilde", "en", "y"), person(edition, "Ivo", "nl", "z")
    withdrawn, refused = person(edition, "Jan", "nl", "x"), person(edition, "Kim", "nl", "y")
    people = [placed, waiting, unmatched, withdrawn, refused]
    cancel = EditionCancelled(region=REGION, edition=edition, reason="Corona")
    infra.produce([
        edition_opened(edition, date(2027, 6, 28)), *offers, *people,
        *(signup(p, offers[0].offer_id, approval="pending" if p is refused else "not_required") for p in people),
    ])
    await offers_known(infra, *offers)
    infra.produce([
        assign(placed, offers[0]),
        MatchWaitlisted(region=REGION, edition=edition, signup_id=waiting.signup_id, run_id=uuid.uuid4(), position=1,
                        reason_code="all_full"),
        SignupWithdrawn(region=REGION, edition=edition, signup_id=withdrawn.signup_id),
        SignupRefused(region=REGION, edition=edition, signup_id=refused.signup_id, reason="Niet nu"),
    ])
    await mail(infra, edition, str(placed.email), placed.signup_id, "assigned")
    await mail(infra, edition, str(waiting.email), waiting.signup_id, "waitlisted")
    await mail(infra, edition, str(refused.email), refused.signup_id, "approval_refused")
    await mail(infra, edition, str(unmatched.email), unmatched.signup_id, "signup_confirmed")
    await signup_status(infra, withdrawn.signup_id, "withdrawn")  # before the cancellation, as on the platform
    assert await scheduled(infra, placed.signup_id)  # the placed person's reminder and feedback request

    infra.produce([cancel, cancel])  # delivered twice
    told = {p.signup_id: await mail(infra, edition, str(p.email), p.signup_id, "edition_cancelled")
            for p in (placed, waiting, unmatched)}
    for h in hosts.values():
        await mail(infra, edition, h.email, h.email, "host_edition_cancelled")

    expected = {
        placed.signup_id: ["assigned", "edition_cancelled", "signup_confirmed"],
        waiting.signup_id: ["edition_cancelled", "signup_confirmed", "waitlisted"],
        unmatched.signup_id: ["edition_cancelled", "signup_confirmed"],
        withdrawn.signup_id: ["signup_confirmed"],
        refused.signup_id: ["approval_refused", "signup_confirmed"],
        hosts["a"].email: ["host_edition_cancelled"],
        hosts["b"].email: ["host_edition_cancelled"],
    }
    assert await kinds(infra, edition, status=None) == expected
    assert await kinds(infra, edition) == expected
    for p in people:
        assert len(await mails_to(infra, str(p.email))) == len(expected[p.signup_id]), p.name
    languages = {key: [m["headers"]["Content-Language"] for m in await mails_to(infra, h.email)] for key, h in hosts.items()}
    assert languages == {"a": ["en"], "b": ["de"]}  # each host in their contact's language
    cancelled = told[placed.signup_id]
    assert "Corona" in cancelled["text"] and cancelled["headers"]["Content-Language"] == "de"
    content_type, (_, event) = await invite(infra, cancelled)
    assert content_type == "text/calendar; method=CANCEL"
    assert str(event["UID"]) == f"{placed.signup_id}.{offers[0].offer_id}@estafette"
    assert told[waiting.signup_id]["attachments"] == [] and "Corona" in told[waiting.signup_id]["text"]
    assert await scheduled(infra, placed.signup_id, offers[0].offer_id, offers[1].offer_id) == []  # every step ended
